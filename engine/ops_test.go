package engine

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/plumbhq/plumb/internal/testkit"
)

func runMany(t *testing.T, r *Runner, n, concurrency int) []*Result {
	t.Helper()
	leads := make([]map[string]any, n)
	for i := range leads {
		leads[i] = map[string]any{"email": fmt.Sprintf("l%d@b.co", i)}
	}
	var out []*Result
	for _, res := range r.RunAll(context.Background(), Leads(leads), RunAllOptions{Concurrency: concurrency}) {
		out = append(out, res)
	}
	return out
}

func bindSrc(t *testing.T, src, base string, opts ...Option) *Runner {
	t.Helper()
	return bindCfg(t, src, Config{Values: map[string]any{"base_url": base}}, opts...)
}

// bindCfg loads src and binds it with cfg; the runner is closed when the
// test ends (after the test's own deferred calls).
func bindCfg(t *testing.T, src string, cfg Config, opts ...Option) *Runner {
	t.Helper()
	p, err := Parse("ops.yaml", []byte(src), opts...)
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Bind(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

// TestRateLimitHolds: with rate: 50/s the partner never sees more than the
// token bucket allows in any two-second window. It runs in a
// testing/synctest bubble with an in-memory partner, so the clock is the
// bubble's: the count is exact whatever the machine's load.
func TestRateLimitHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var at []time.Time
		partner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			at = append(at, time.Now())
			mu.Unlock()
			io.WriteString(w, `{}`)
		})
		src := "version: 1\nname: ops\nsettings: { base_url: {} }\nlimits: { rate: 50/s }\nsteps:\n  - name: s\n    request: { url: \"{{settings.base_url}}/x\" }\n"
		r := bindSrc(t, src, "http://partner.test", WithHTTPClient(&http.Client{Transport: testkit.Transport{Handler: partner}}))
		res := runMany(t, r, 150, 32)
		for _, x := range res {
			if x.Outcome != Success {
				t.Fatalf("%s %q", x.Outcome, x.Reason)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
		worst := 0
		for i := range at {
			j := i
			for j < len(at) && at[j].Sub(at[i]) < 2*time.Second {
				j++
			}
			worst = max(worst, j-i)
		}
		// 50 tokens a second for 2 s plus the burst of 1
		if worst > 101 {
			t.Fatalf("%d requests within two seconds, want at most 101", worst)
		}
		// 150 requests at 50/s after a burst of 1 take 149/50 s
		if span := at[len(at)-1].Sub(at[0]); span < 2980*time.Millisecond {
			t.Fatalf("150 requests went out within %s, want at least 2.98s", span)
		}
		var waited time.Duration
		for _, x := range res {
			waited += time.Duration(x.Steps[0].Waited)
		}
		if waited == 0 {
			t.Fatalf("no lead reports waiting for the limiter")
		}
	})
}

// TestMaxInFlightHolds: max_in_flight: 2 on a step; the partner (which
// answers after 20 ms, like a slow partner) never sees a third request at
// once.
func TestMaxInFlightHolds(t *testing.T) {
	var cur, peak atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond) // the partner's latency, not synchronisation
		cur.Add(-1)
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	src := "version: 1\nname: ops\nsettings: { base_url: {} }\nsteps:\n  - name: s\n    limits: { max_in_flight: 2 }\n    request: { url: \"{{settings.base_url}}/x\" }\n"
	r := bindSrc(t, src, srv.URL)
	for _, x := range runMany(t, r, 30, 10) {
		if x.Outcome != Success {
			t.Fatalf("%s %q", x.Outcome, x.Reason)
		}
	}
	switch p := peak.Load(); {
	case p > 2:
		t.Fatalf("peak in flight at the partner %d, want at most 2", p)
	case p < 2:
		t.Logf("peak in flight %d: this machine never overlapped two requests", p)
	}
}

// TestBreakerOpensAndCloses: a dead partner opens the breaker after 3
// errors; the leads after that reach their fallback without a request;
// after the cool-down one probe goes and, the partner back, closes it.
func TestBreakerOpensAndCloses(t *testing.T) {
	var hits atomic.Int32
	var down atomic.Bool
	down.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if down.Load() {
			w.WriteHeader(500)
			return
		}
		io.WriteString(w, `{"score": 7}`)
	}))
	defer srv.Close()
	rec := &recorder{tag: "b"}
	src := `version: 1
name: ops
settings: { base_url: {} }
steps:
  - name: s
    request: { url: "{{settings.base_url}}/x" }
    max_attempts: 1
    breaker: { failures: 3, cooldown: 200ms }
    capture: { score: { json: score } }
    fallback: [ { defaults: { score: 0 } } ]
`
	r := bindSrc(t, src, srv.URL, WithEvents(rec))
	for i := range 10 {
		res := r.Run(context.Background(), map[string]any{"email": "a@b.co"})
		if res.Outcome != Success || res.Steps[0].Fallback != "defaults" {
			t.Fatalf("lead %d: %s %q", i, res.Outcome, res.Reason)
		}
		if i >= 3 && !strings.Contains(res.Steps[0].Tried[0], "circuit breaker open") {
			t.Fatalf("lead %d: tried %q", i, res.Steps[0].Tried)
		}
	}
	if hits.Load() != 3 {
		t.Fatalf("the dead partner got %d requests, want 3 (then the breaker is open)", hits.Load())
	}
	if got := rec.breaker(); got != "open" {
		t.Fatalf("breaker state %v, want open", got)
	}
	down.Store(false)
	cb := r.breakers[r.plan.steps[0]]
	deadline := time.Now().Add(10 * time.Second)
	for cb.State() != gobreaker.StateHalfOpen { // the cool-down passing is the signal
		if time.Now().After(deadline) {
			t.Fatal("the breaker never became half-open")
		}
		time.Sleep(5 * time.Millisecond)
	}
	res := r.Run(context.Background(), map[string]any{"email": "a@b.co"})
	if res.Outcome != Success || res.Steps[0].Fallback != "" || res.Steps[0].Captured["score"] != 7.0 || cb.State() != gobreaker.StateClosed {
		t.Fatalf("probe: %s %+v, state %s", res.Outcome, res.Steps[0], cb.State())
	}
	if got := rec.count("BreakerChange {Integration:ops Step:s From:half-open To:closed}"); got != 1 {
		t.Fatalf("transitions to closed %v", got)
	}
}

// countingLimiter is a RateLimiter a test controls: every Wait is counted
// and lets the request go.
type countingLimiter struct {
	name  string
	waits atomic.Int32
}

func (c *countingLimiter) Wait(context.Context) error { c.waits.Add(1); return nil }

// TestSharedRateLimiter: Config.RateLimiter supplies the rate budgets, by
// name, so a cluster can share one.
func TestSharedRateLimiter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{}`) }))
	defer srv.Close()
	src := "version: 1\nname: ops\nsettings: { base_url: {} }\nlimits: { rate: 5/s }\nsteps:\n  - name: s\n    limits: { rate: 600/m, burst: 3 }\n    request: { url: \"{{settings.base_url}}/x\" }\n"
	p, err := Parse("ops.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	made := map[string]*countingLimiter{}
	var mu sync.Mutex
	r, err := p.Bind(Config{Values: map[string]any{"base_url": srv.URL}, RateLimiter: func(name string, perSecond float64, burst int) RateLimiter {
		mu.Lock()
		defer mu.Unlock()
		l := &countingLimiter{name: fmt.Sprintf("%s %.0f/s burst %d", name, perSecond, burst)}
		made[name] = l
		return l
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	runMany(t, r, 7, 3)
	if len(made) != 2 || made["ops"].waits.Load() != 7 || made["ops/s"].waits.Load() != 7 ||
		made["ops"].name != "ops 5/s burst 1" || made["ops/s"].name != "ops/s 10/s burst 3" {
		t.Fatalf("limiters %v", made)
	}
}
