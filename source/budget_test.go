package source_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/sandbox"
	"github.com/plumbhq/plumb/source"
)

// budgets stands for a cluster's rate budgets (engine.Config.RateLimiter):
// one budget per name, whichever runner asks, counting its waits.
type budgets struct {
	mu    sync.Mutex
	asked map[string]budgetSpec
	waits map[string]int
	err   error // what every wait returns (nil: go at once)
}

type budgetSpec struct {
	perSecond float64
	burst     int
}

func (b *budgets) limiter(name string, perSecond float64, burst int) engine.RateLimiter {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.asked == nil {
		b.asked, b.waits = map[string]budgetSpec{}, map[string]int{}
	}
	b.asked[name] = budgetSpec{perSecond, burst}
	return budget{b, name}
}

func (b *budgets) waited(name string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waits[name]
}

type budget struct {
	b    *budgets
	name string
}

func (l budget) Wait(ctx context.Context) error {
	l.b.mu.Lock()
	l.b.waits[l.name]++
	err := l.b.err
	l.b.mu.Unlock()
	if err != nil {
		return err
	}
	return ctx.Err()
}

// syncWith binds the harness's integration with the rate budgets b and
// syncs it into the state file state.
func (h *harness) syncWith(b *budgets, state string) *source.Report {
	h.t.Helper()
	plan, err := engine.Load(h.file, engine.WithHTTPClient(h.srv.Client()))
	if err != nil {
		h.t.Fatal(err)
	}
	r, err := plan.Bind(engine.Config{RateLimiter: b.limiter,
		Values: map[string]any{"api_key": sandbox.APIKey, "crm_key": sandbox.APIKey, "base_url": h.url}})
	if err != nil {
		h.t.Fatal(err)
	}
	defer r.Close(context.Background())
	spec, err := source.Compile(plan)
	if err != nil {
		h.t.Fatal(err)
	}
	st, err := source.OpenStore(state)
	if err != nil {
		h.t.Fatal(err)
	}
	defer st.Close()
	rep, err := source.Sync(context.Background(), r, spec, st, source.Options{}, func(source.Record, *engine.Result) error { return nil })
	if err != nil {
		h.t.Fatal(err)
	}
	return rep
}

// TestPageBudgetShared: the source's rate: is a budget the runner makes
// as it makes the steps' (engine.Config.RateLimiter), named
// integration/source/pages, and every page request waits for it: runners
// given the same budgets (a cluster's) share it.
func TestPageBudgetShared(t *testing.T) {
	h := newHarness(t)
	b := &budgets{}
	const name = "actuallycare-sync/source/pages"
	for i, state := range []string{h.state, filepath.Join(t.TempDir(), "other.db")} {
		rep := h.syncWith(b, state)
		if rep.Ended != "complete" || rep.Pages != 6 {
			t.Fatalf("sync %d: %+v", i+1, rep)
		}
		if got, want := b.waited(name), 6*(i+1); got != want {
			t.Errorf("after sync %d: %d waits for the page budget, want %d (one a page, both runners on the one budget)", i+1, got, want)
		}
	}
	if got := b.asked[name]; got != (budgetSpec{perSecond: 20, burst: 1}) {
		t.Errorf("page budget %+v, want rate: 20/s, a bucket of one (asked: %v)", got, b.asked)
	}
	if h.pageRequests() != 12 {
		t.Errorf("%d page requests, want 12", h.pageRequests())
	}
}

// TestPageBudgetRefused: a page whose budget cannot be had (the cluster
// does not answer) is not sent; the sync ends in error at that page.
func TestPageBudgetRefused(t *testing.T) {
	h := newHarness(t)
	b := &budgets{err: errors.New("budget store unreachable")}
	rep := h.syncWith(b, h.state)
	if rep.Ended != "error" || rep.Err == nil || !strings.Contains(rep.Err.Error(), "page 1: waiting for the source's rate: budget: budget store unreachable") {
		t.Fatalf("%+v (%v)", rep, rep.Err)
	}
	if h.pageRequests() != 0 || rep.Pages != 0 || rep.Committed != 0 {
		t.Errorf("%d page requests, %+v", h.pageRequests(), rep)
	}
}

// TestSyncNeedsCompiledSpec: a spec not made by Compile, no plan, a
// runner of another plan or no emit is an error, not a panic.
func TestSyncNeedsCompiledSpec(t *testing.T) {
	h := newHarness(t)
	r, _ := h.bind()
	st, err := source.OpenStore(h.state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	none := func(source.Record, *engine.Result) error { return nil }
	if _, err := source.Sync(context.Background(), r, &source.Spec{}, st, source.Options{}, none); err == nil || !strings.Contains(err.Error(), "source.Compile") {
		t.Errorf("zero spec: %v", err)
	}
	if _, err := source.Compile(nil); err == nil {
		t.Error("Compile(nil): no error")
	}
	// the same file loaded again is another plan: its runner is refused
	// too (load once, compile and bind from that plan)
	r2, spec := h.bind()
	if _, err := source.Sync(context.Background(), r, spec, st, source.Options{}, none); err == nil || !strings.Contains(err.Error(), "not bound from the plan the source was compiled from") {
		t.Errorf("another plan of the same file: %v", err)
	}
	if _, err := source.Sync(context.Background(), r2, spec, st, source.Options{}, nil); err == nil || !strings.Contains(err.Error(), "emit") {
		t.Errorf("no emit: %v", err)
	}
	if h.pageRequests() != 0 {
		t.Errorf("%d page requests", h.pageRequests())
	}
}
