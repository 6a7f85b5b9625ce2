package engine

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// budgetPartner counts the requests it receives.
func budgetPartner(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

// Issue 25: a template whose work lead data drives past the render budget
// gives the lead an error outcome naming the budget, at once, and nothing
// is sent.
func TestRenderBudgetIsAnErrorOutcome(t *testing.T) {
	srv, got := budgetPartner(t)
	src := "version: 1\nname: budget\nsettings: { base_url: {} }\nsteps:\n  - name: call\n    request:\n" +
		"      url: \"{{settings.base_url}}/x\"\n" +
		"      body: { text: \"{{range until (int lead.n)}}{{$h := sha256sum lead.long}}{{end}}\" }\n"
	p, err := Parse("budget.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Bind(Config{Values: map[string]any{"base_url": srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	res := r.Run(context.Background(), map[string]any{"n": 10000, "long": strings.Repeat("x", 1<<20)})
	if res.Outcome != Error || res.Class != ClassTemplate || !strings.Contains(res.Reason, "budget.yaml:8:") ||
		!strings.Contains(res.Reason, "render budget exceeded") {
		t.Fatalf("%s %s %q, want a template error naming the budget", res.Outcome, res.Class, res.Reason)
	}
	if n := got.Load(); n != 0 {
		t.Fatalf("the partner received %d requests", n)
	}
}

// A lead's context reaches the templates of its vars and its request: a
// cancel in the middle of a render stops it at the next step (counted by a
// function that cancels at its 1000th call), and nothing is sent.
func TestCancelStopsARender(t *testing.T) {
	srv, got := budgetPartner(t)
	var calls atomic.Int64
	var stop context.CancelFunc
	work := WithFuncs(map[string]any{"work": func() string {
		if calls.Add(1) == 1000 {
			stop()
		}
		return ""
	}})
	loop := "{{range until 100}}{{range until 100}}{{work}}{{end}}{{end}}"
	for _, where := range []string{
		"vars: { v: \"" + loop + "\" }\nsteps:\n  - name: call\n    request: { url: \"{{settings.base_url}}/x\" }\n",
		"steps:\n  - name: call\n    request: { url: \"{{settings.base_url}}/x\", body: { text: \"" + loop + "\" } }\n",
		"steps:\n  - name: call\n    request: { url: \"{{settings.base_url}}/x\", headers: { X-A: \"" + loop + "\" } }\n",
		"steps:\n  - name: call\n    request: { url: \"{{settings.base_url}}/x\", body: { json: { a: \"" + loop + "\" } } }\n",
	} {
		p, err := Parse("cancel.yaml", []byte("version: 1\nname: cancel\nsettings: { base_url: {} }\n"+where), work)
		if err != nil {
			t.Fatal(err)
		}
		r, err := p.Bind(Config{Values: map[string]any{"base_url": srv.URL}})
		if err != nil {
			t.Fatal(err)
		}
		calls.Store(0)
		ctx, cancel := context.WithCancel(context.Background())
		stop = cancel
		res := r.Run(ctx, map[string]any{})
		cancel()
		r.Close(context.Background())
		if res.Outcome != Error || !strings.Contains(res.Reason, "context canceled") {
			t.Errorf("%s: %s %q, want an error saying the context was cancelled", where, res.Outcome, res.Reason)
		}
		if n := calls.Load(); n != 1000 {
			t.Errorf("%s: %d calls, want 1000 (none after the cancel)", where, n)
		}
	}
	if n := got.Load(); n != 0 {
		t.Fatalf("the partner received %d requests", n)
	}
}
