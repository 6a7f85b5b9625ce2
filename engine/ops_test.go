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

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sony/gobreaker/v2"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

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
	p, err := Parse("ops.yaml", []byte(src), opts...)
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Bind(Config{Values: map[string]any{"base_url": base}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
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
	m := NewMetrics()
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
	r := bindSrc(t, src, srv.URL, WithMetrics(m))
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
	if got := testutil.ToFloat64(m.breaker.WithLabelValues("ops", "s")); got != 2 {
		t.Fatalf("breaker gauge %v, want 2 (open)", got)
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
	if got := testutil.ToFloat64(m.transitions.WithLabelValues("ops", "s", "closed")); got != 1 {
		t.Fatalf("transitions to closed %v", got)
	}
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
	m := NewMetrics()
	src := "version: 1\nname: ops\nsettings: { base_url: {} }\nsteps:\n  - name: s\n    request: { url: \"{{settings.base_url}}/x?e={{lead.email}}\" }\n    retry: [ { on: [503], action: retry, backoff: { initial: 1ms, max: 1ms } } ]\n"
	r := bindSrc(t, src, srv.URL, WithMetrics(m))
	var failures, successes, tries, fives int
	for i := range 20 {
		email := fmt.Sprintf("l%d@b.co", i)
		if i%5 == 0 {
			email = "bad" + email
		}
		res := r.Run(context.Background(), map[string]any{"email": email})
		switch res.Outcome {
		case Failure:
			failures++
		case Success:
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

// TestSpansHaveTheRightShape: one lead span, a step span under it, a try
// span under that; with propagation the partner receives the traceparent
// of the try.
func TestSpansHaveTheRightShape(t *testing.T) {
	var parents sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parents.Store(r.Header.Get("Traceparent"), true)
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	src := "version: 1\nname: ops\nsettings: { base_url: {} }\nsteps:\n  - name: a\n    request: { url: \"{{settings.base_url}}/a\" }\n  - name: b\n    request: { url: \"{{settings.base_url}}/b\" }\n"
	r := bindSrc(t, src, srv.URL, WithTracing(tp, true))
	if res := r.Run(context.Background(), map[string]any{}); res.Outcome != Success {
		t.Fatal(res.Reason)
	}
	spans := rec.Ended()
	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byName[s.Name()] = append(byName[s.Name()], s)
	}
	if len(byName["plumb.lead"]) != 1 || len(byName["plumb.step"]) != 2 || len(byName["plumb.try"]) != 2 {
		t.Fatalf("spans %v", byName)
	}
	lead := byName["plumb.lead"][0]
	steps := map[[8]byte]bool{}
	for _, s := range byName["plumb.step"] {
		if s.Parent().SpanID() != lead.SpanContext().SpanID() {
			t.Fatalf("step span not under the lead")
		}
		steps[s.SpanContext().SpanID()] = true
	}
	for _, s := range byName["plumb.try"] {
		if !steps[s.Parent().SpanID()] {
			t.Fatalf("try span not under a step")
		}
		tp := fmt.Sprintf("00-%s-%s-01", s.SpanContext().TraceID(), s.SpanContext().SpanID())
		if _, ok := parents.Load(tp); !ok {
			t.Fatalf("the partner did not receive traceparent %s", tp)
		}
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
	defer r.Close()
	runMany(t, r, 7, 3)
	if len(made) != 2 || made["ops"].waits.Load() != 7 || made["ops/s"].waits.Load() != 7 ||
		made["ops"].name != "ops 5/s burst 1" || made["ops/s"].name != "ops/s 10/s burst 3" {
		t.Fatalf("limiters %v", made)
	}
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
	var seen []*Exchange
	m := NewMetrics()
	src := `version: 1
name: ops
settings: { base_url: {}, secret: { secret: true } }
auth: { type: oauth2, token_url: "{{settings.base_url}}/token", client_id: cid, client_secret: "{{settings.secret}}", auth_style: body }
steps:
  - name: s
    request: { url: "{{settings.base_url}}/api" }
`
	p, err := Parse("ops.yaml", []byte(src), WithMetrics(m), WithObserver(func(_ context.Context, ex *Exchange) {
		mu.Lock()
		seen = append(seen, ex)
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Bind(Config{Values: map[string]any{"base_url": srv.URL, "secret": "cs-very-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if res := r.Run(context.Background(), nil); res.Outcome != Success {
		t.Fatal(res.Reason)
	}
	mu.Lock()
	defer mu.Unlock()
	var token *Exchange
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
