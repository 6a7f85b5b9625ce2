package prommetrics

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/engine/observe"
)

func bindSrc(t *testing.T, src, base string, opts ...engine.Option) *engine.Runner {
	t.Helper()
	p, err := engine.Parse("ops.yaml", []byte(src), opts...)
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Bind(engine.Config{Values: map[string]any{"base_url": base}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

// TestMetricsMatchTheRun: the counters scraped after a run match what the
// run did, per outcome, status class, retry action and fallback link.
func TestMetricsMatchTheRun(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.RawQuery, "bad"):
			w.WriteHeader(422)
		case n.Add(1)%3 == 0:
			w.WriteHeader(503) // retried by the default rule, then fine
		default:
			io.WriteString(w, `{}`)
		}
	}))
	defer srv.Close()
	m := New()
	src := "version: 1\nname: ops\nsettings: { base_url: {} }\nsteps:\n  - name: s\n    request: { url: \"{{settings.base_url}}/x?e={{lead.email}}\" }\n    retry: [ { on: [503], action: retry, backoff: { initial: 1ms, max: 1ms } } ]\n"
	r := bindSrc(t, src, srv.URL, engine.WithEvents(m))
	var failures, successes, tries, fives int
	for i := range 20 {
		email := fmt.Sprintf("l%d@b.co", i)
		if i%5 == 0 {
			email = "bad" + email
		}
		res := r.Run(context.Background(), map[string]any{"email": email})
		switch res.Outcome {
		case engine.Failure:
			failures++
		case engine.Success:
			successes++
		}
		tries += res.Steps[0].Attempts
		fives += res.Steps[0].Attempts - 1
	}
	if got := testutil.ToFloat64(m.leads.WithLabelValues("ops", "success", "")); int(got) != successes {
		t.Errorf("success leads %v, want %d", got, successes)
	}
	if got := testutil.ToFloat64(m.leads.WithLabelValues("ops", "failure", "status")); int(got) != failures || failures != 4 {
		t.Errorf("failure leads %v, want %d (4)", got, failures)
	}
	if got := testutil.ToFloat64(m.tries.WithLabelValues("ops", "s", "5xx")); int(got) != fives || fives == 0 {
		t.Errorf("5xx tries %v, want %d", got, fives)
	}
	if got := testutil.ToFloat64(m.retries.WithLabelValues("ops", "s", "retry")); int(got) != fives {
		t.Errorf("retries %v, want %d", got, fives)
	}
	if got := testutil.CollectAndCount(m, "plumb_step_duration_seconds"); got != 1 {
		t.Errorf("step histograms %d", got)
	}
	if err := testutil.CollectAndCompare(m, strings.NewReader(""), "plumb_timeouts_total"); err != nil {
		t.Errorf("no timeouts expected: %v", err)
	}
	_ = tries
}

// TestTokenFetchesAreVisible: an OAuth2 token fetch reaches the observer
// (as step auth:token) and the metrics, with the client secret and the
// token masked.
func TestTokenFetchesAreVisible(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"tok-live-123456","token_type":"bearer","expires_in":3600}`)
	})
	mux.HandleFunc("/api", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{}`) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var mu sync.Mutex
	var seen []*engine.Exchange
	m := New()
	src := `version: 1
name: ops
settings: { base_url: {}, secret: { secret: true } }
auth: { type: oauth2, token_url: "{{settings.base_url}}/token", client_id: cid, client_secret: "{{settings.secret}}", auth_style: body }
steps:
  - name: s
    request: { url: "{{settings.base_url}}/api" }
`
	p, err := engine.Parse("ops.yaml", []byte(src), engine.WithEvents(m), engine.WithEvents(observe.New(func(_ context.Context, ex *engine.Exchange) {
		mu.Lock()
		seen = append(seen, ex)
		mu.Unlock()
	})))
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Bind(engine.Config{Values: map[string]any{"base_url": srv.URL, "secret": "cs-very-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if res := r.Run(context.Background(), nil); res.Outcome != engine.Success {
		t.Fatal(res.Reason)
	}
	mu.Lock()
	defer mu.Unlock()
	var token *engine.Exchange
	for _, ex := range seen {
		if ex.Step == "auth:token" {
			token = ex
		}
	}
	if token == nil || token.Status != 200 || !strings.HasSuffix(token.URL, "/token") {
		t.Fatalf("no token exchange observed: %+v", seen)
	}
	all := fmt.Sprintf("%+v", seen)
	if strings.Contains(all, "cs-very-secret") || strings.Contains(all, "tok-live-123456") {
		t.Fatalf("a secret shows in the exchanges: %s", all)
	}
	if got := testutil.ToFloat64(m.tokens.WithLabelValues("ops", "2xx")); got != 1 {
		t.Fatalf("token fetches counted %v", got)
	}
}

func TestStatusClass(t *testing.T) {
	for status, want := range map[int]string{0: "error", -1: "error", 99: "0xx", 100: "1xx", 204: "2xx", 302: "3xx", 429: "4xx", 599: "5xx", 600: "6xx", 999: "9xx"} {
		if got := statusClass(status); got != want {
			t.Errorf("statusClass(%d) = %q, want %q", status, got, want)
		}
	}
}

// TestBreakerMetrics: a dead partner opens the breaker after 3 errors (the
// gauge says 2), the leads after that are answered by their fallback (and
// counted so); after the cool-down a probe closes it again (gauge 0, one
// transition to each state).
func TestBreakerMetrics(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(500)
			return
		}
		io.WriteString(w, `{"score": 7}`)
	}))
	defer srv.Close()
	m := New()
	src := `version: 1
name: ops
settings: { base_url: {} }
steps:
  - name: s
    request: { url: "{{settings.base_url}}/x" }
    max_attempts: 1
    breaker: { failures: 3, cooldown: 100ms }
    capture: { score: { json: score } }
    fallback: [ { defaults: { score: 0 } } ]
`
	r := bindSrc(t, src, srv.URL, engine.WithEvents(m))
	for range 10 {
		if res := r.Run(context.Background(), nil); res.Steps[0].Fallback != "defaults" {
			t.Fatalf("%s %q", res.Outcome, res.Reason)
		}
	}
	if got := testutil.ToFloat64(m.breaker.WithLabelValues("ops", "s")); got != 2 {
		t.Fatalf("breaker gauge %v, want 2 (open)", got)
	}
	if got := testutil.ToFloat64(m.fallbacks.WithLabelValues("ops", "s", "defaults")); got != 10 {
		t.Fatalf("fallbacks %v, want 10", got)
	}
	if got := testutil.ToFloat64(m.tries.WithLabelValues("ops", "s", "5xx")); got != 3 {
		t.Fatalf("5xx tries %v, want 3 (then the breaker is open)", got)
	}
	down.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for r.Run(context.Background(), nil).Steps[0].Fallback != "" { // the cool-down passing is the signal
		if time.Now().After(deadline) {
			t.Fatal("the breaker never let a probe through")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := testutil.ToFloat64(m.breaker.WithLabelValues("ops", "s")); got != 0 {
		t.Fatalf("breaker gauge %v, want 0 (closed)", got)
	}
	for _, state := range []string{"open", "half-open", "closed"} {
		if got := testutil.ToFloat64(m.transitions.WithLabelValues("ops", "s", state)); got != 1 {
			t.Fatalf("transitions to %s: %v, want 1", state, got)
		}
	}
}

// TestFallbackTriesAreNotPartnerTries: a fallback request link's try is
// not counted in plumb_http_requests_total (as before the events), the
// link that answered is.
func TestFallbackTriesAreNotPartnerTries(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/x" {
			w.WriteHeader(500)
			return
		}
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	m := New()
	src := `version: 1
name: ops
settings: { base_url: {} }
steps:
  - name: s
    request: { url: "{{settings.base_url}}/x" }
    max_attempts: 1
    fallback: [ { request: { url: "{{settings.base_url}}/y" } } ]
`
	r := bindSrc(t, src, srv.URL, engine.WithEvents(m))
	if res := r.Run(context.Background(), nil); res.Outcome != engine.Success || res.Steps[0].Fallback != "request" {
		t.Fatalf("%s %q %+v", res.Outcome, res.Reason, res.Steps[0])
	}
	if got := testutil.CollectAndCount(m, "plumb_http_requests_total"); got != 1 {
		t.Fatalf("%d request series, want 1 (5xx)", got)
	}
	if got := testutil.ToFloat64(m.tries.WithLabelValues("ops", "s", "5xx")); got != 1 {
		t.Fatalf("5xx tries %v", got)
	}
	if got := testutil.ToFloat64(m.fallbacks.WithLabelValues("ops", "s", "request")); got != 1 {
		t.Fatalf("fallbacks %v", got)
	}
}

// TestLimiterWaitAndTimeouts: a try that waits for its limits: slot is
// observed in plumb_limiter_wait_seconds, and a try that times out counts
// in plumb_timeouts_total.
func TestLimiterWaitAndTimeouts(t *testing.T) {
	m := New()
	ctx := context.Background()
	m.LimiterWait(ctx, engine.LimiterWait{Integration: "ops", Step: "s", Wait: 20 * time.Millisecond})
	m.TryEnd(ctx, engine.TryEnd{Integration: "ops", Step: "s", Class: engine.ClassTimeout})
	m.TryEnd(ctx, engine.TryEnd{Integration: "ops", Step: "s", Status: 401, Class: engine.ClassAuth})
	if got := testutil.CollectAndCount(m, "plumb_limiter_wait_seconds"); got != 1 {
		t.Fatalf("limiter wait series %d", got)
	}
	if got := testutil.ToFloat64(m.timeouts.WithLabelValues("ops", "s")); got != 1 {
		t.Fatalf("timeouts %v", got)
	}
	if got := testutil.ToFloat64(m.refusals.WithLabelValues("ops", "s")); got != 1 {
		t.Fatalf("refusals %v", got)
	}
	if got := testutil.ToFloat64(m.tries.WithLabelValues("ops", "s", "error")); got != 1 {
		t.Fatalf("error tries %v", got)
	}
}
