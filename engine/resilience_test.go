package engine

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/plumbhq/plumb/store"
)

// fakeClock never really waits: Sleep records the wait and moves time on.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// faults is a fault-injection server: request n gets script[n] (the last
// entry repeats), so tests say exactly how the partner misbehaves.
type faults struct {
	*httptest.Server
	hits atomic.Int32
}

func newFaults(t *testing.T, script ...http.HandlerFunc) *faults {
	t.Helper()
	f := &faults{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(f.hits.Add(1)) - 1
		script[min(n, len(script)-1)](w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func status(code int, headers ...string) http.HandlerFunc {
	return reply(code, "application/json", fmt.Sprintf(`{"code": %d}`, code), headers...)
}

func ok(body string) http.HandlerFunc { return reply(200, "application/json", body) }

// hang never answers. It reads the body first: the server notices a client
// that gave up only once the request body is consumed.
func hang(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
}

// reset closes the connection with a TCP RST before any answer.
func reset(w http.ResponseWriter, r *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
}

func garbage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, "<html>502 from a proxy</html>")
}

// slowBody sends headers and half a body, then stalls.
func slowBody(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	io.WriteString(w, `{"score":`)
	w.(http.Flusher).Flush()
	<-r.Context().Done()
}

func oneStep(extra string) string {
	return "version: 1\nname: r\nsettings: { base_url: {}, backup_url: { default: \"http://127.0.0.1:1\" } }\nsteps:\n  - name: s\n    request: { url: \"{{settings.base_url}}/x\", body: { json: { email: \"{{lead.email}}\" } } }\n    capture: { score: { json: score } }\n" + extra
}

func runWith(t *testing.T, src string, clock Clock, base string, opts ...Option) *Result {
	t.Helper()
	p := plan(t, src, append([]Option{WithClock(clock)}, opts...)...)
	return run(t, p, map[string]any{"email": "a@b.co"}, map[string]any{"base_url": base})
}

func sameDurations(got, want []time.Duration) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

func TestRetryCountsAndWaits(t *testing.T) {
	rules := `    retry:
      - on: [5xx]
        action: retry
        max_attempts: 4
        backoff: { initial: 100ms, max: 250ms, jitter: false }
`
	t.Run("recovers", func(t *testing.T) {
		clock := newFakeClock()
		srv := newFaults(t, status(500), status(502), ok(`{"score": 7}`))
		r := runWith(t, oneStep(rules), clock, srv.URL)
		wantOutcome(t, r, Success)
		if r.Steps[0].Attempts != 3 || srv.hits.Load() != 3 || r.Steps[0].Captured["score"] != 7.0 {
			t.Fatalf("attempts %d hits %d", r.Steps[0].Attempts, srv.hits.Load())
		}
		if s := clock.Sleeps(); !sameDurations(s, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}) {
			t.Fatalf("waits %v", s)
		}
	})
	t.Run("gives up", func(t *testing.T) {
		clock := newFakeClock()
		srv := newFaults(t, status(503))
		r := runWith(t, oneStep(rules), clock, srv.URL)
		wantOutcome(t, r, Error)
		if r.Steps[0].Attempts != 4 || srv.hits.Load() != 4 || !strings.Contains(r.Reason, "HTTP 503") || !strings.Contains(r.Reason, "gave up after 4 attempts") {
			t.Fatalf("attempts %d hits %d reason %q", r.Steps[0].Attempts, srv.hits.Load(), r.Reason)
		}
		if s := clock.Sleeps(); !sameDurations(s, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 250 * time.Millisecond}) {
			t.Fatalf("waits %v (capped at max)", s)
		}
	})
}

func TestRetryAfter(t *testing.T) {
	rules := `    retry:
      - on: [429]
        action: retry
        max_attempts: 2
        backoff: { initial: 1s, max: 30s, jitter: false }
`
	clock := newFakeClock()
	httpDate := clock.Now().Add(7 * time.Second).Format(http.TimeFormat)
	cases := []struct {
		name, header string
		want         time.Duration
	}{
		{"seconds", "3", 3 * time.Second},
		{"beyond backoff.max", "45", 45 * time.Second},
		{"http date", httpDate, 7 * time.Second},
		{"unreadable falls back to backoff", "soon", time.Second},
		{"negative falls back to backoff", "-5", time.Second},
		{"zero is now", "0", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := newFakeClock()
			srv := newFaults(t, status(429, "Retry-After", c.header), ok(`{"score": 1}`))
			r := runWith(t, oneStep(rules), clock, srv.URL)
			wantOutcome(t, r, Success)
			if s := clock.Sleeps(); !sameDurations(s, []time.Duration{c.want}) {
				t.Fatalf("waits %v, want [%s]", s, c.want)
			}
		})
	}
	t.Run("ignore", func(t *testing.T) {
		clock := newFakeClock()
		srv := newFaults(t, status(429, "Retry-After", "9"), ok(`{}`))
		r := runWith(t, oneStep(strings.Replace(rules, "max_attempts: 2", "max_attempts: 2\n        retry_after: ignore", 1)), clock, srv.URL)
		wantOutcome(t, r, Success)
		if s := clock.Sleeps(); !sameDurations(s, []time.Duration{time.Second}) {
			t.Fatalf("waits %v", s)
		}
	})
}

func TestJitterStaysInRange(t *testing.T) {
	b := backoff{initial: 100 * time.Millisecond, max: time.Second, mult: 2, jitter: true}
	for n := 1; n <= 6; n++ {
		full := min(100*time.Millisecond<<(n-1), time.Second)
		for range 50 {
			if w := b.wait(n); w < full/2 || w > full {
				t.Fatalf("retry %d waited %s, want within [%s, %s]", n, w, full/2, full)
			}
		}
	}
}

func TestTransportFaults(t *testing.T) {
	rules := `    timeout: 80ms
    retry:
      - on: [timeout, connection]
        action: retry
        max_attempts: 2
`
	cases := []struct {
		name    string
		fault   http.HandlerFunc
		reason  string
		retried bool
	}{
		{"hang", hang, "timeout after 80ms", true},
		{"slow body", slowBody, "timeout after 80ms", true},
		{"reset", reset, "POST", true},
		{"garbage", garbage, "response body is not valid JSON", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := newFaults(t, c.fault)
			r := runWith(t, oneStep(rules), newFakeClock(), srv.URL)
			wantOutcome(t, r, Error)
			if !strings.Contains(r.Reason, c.reason) {
				t.Fatalf("reason %q, want %q", r.Reason, c.reason)
			}
			// counted by the engine: on a busy machine a try can time out
			// before the partner's handler has even counted it
			want := 1
			if c.retried {
				want = 2
			}
			if got := r.Steps[0].Attempts; got != want {
				t.Fatalf("%d tries, want %d", got, want)
			}
			if srv.hits.Load() == 0 || int(srv.hits.Load()) > want {
				t.Fatalf("the partner saw %d tries, want 1 to %d", srv.hits.Load(), want)
			}
		})
	}
}

func TestDefaultRules(t *testing.T) {
	cases := []struct {
		name    string
		script  []http.HandlerFunc
		outcome Outcome
		tries   int32
	}{
		{"5xx retried", []http.HandlerFunc{status(502), ok(`{}`)}, Success, 2},
		{"429 retried 3 times", []http.HandlerFunc{status(429)}, Error, 3},
		{"connection class via 408", []http.HandlerFunc{status(408), ok(`{}`)}, Success, 2},
		{"404 is a failure", []http.HandlerFunc{status(404)}, Failure, 1},
		{"401 without renewable credentials", []http.HandlerFunc{status(401)}, Error, 1},
		{"403 is a failure", []http.HandlerFunc{status(403)}, Failure, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := newFakeClock()
			srv := newFaults(t, c.script...)
			r := runWith(t, oneStep(""), clock, srv.URL)
			wantOutcome(t, r, c.outcome)
			if srv.hits.Load() != c.tries {
				t.Fatalf("%d tries, want %d", srv.hits.Load(), c.tries)
			}
		})
	}
}

func TestRuleActions(t *testing.T) {
	cases := []struct {
		name, rules string
		script      []http.HandlerFunc
		outcome     Outcome
		tries       int32
		reason      string
	}{
		{"fail with reason from body", "    capture: { err: { json: error } }\n    outcome: { reason: \"{{captured.err}}\" }\n    retry:\n      - { on: [500], action: fail }\n",
			[]http.HandlerFunc{reply(500, "application/json", `{"error":"duplicate lead"}`)}, Failure, 1, "duplicate lead"},
		{"ignore", "    retry:\n      - { on: [404], action: ignore }\n", []http.HandlerFunc{status(404)}, Success, 1, ""},
		{"first matching rule wins", "    retry:\n      - { on: [503], action: fail }\n      - { on: [5xx], action: retry }\n", []http.HandlerFunc{status(503)}, Failure, 1, "HTTP 503"},
		{"body says error, retried", "    capture: { state: { json: state } }\n    outcome: { error_when: 'captured.state == \"busy\"' }\n    retry:\n      - { on: [error_when], action: retry, max_attempts: 3 }\n",
			[]http.HandlerFunc{ok(`{"state":"busy"}`), ok(`{"state":"done"}`)}, Success, 2, ""},
		{"body says error, no rule", "    capture: { state: { json: state } }\n    outcome: { error_when: 'captured.state == \"busy\"' }\n",
			[]http.HandlerFunc{ok(`{"state":"busy"}`)}, Error, 1, "error_when holds"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := newFaults(t, c.script...)
			src := strings.Replace(oneStep(c.rules), "    capture: { score: { json: score } }\n", "", 1)
			if !strings.Contains(c.rules, "capture:") {
				src = oneStep(c.rules)
			}
			r := runWith(t, src, newFakeClock(), srv.URL)
			wantOutcome(t, r, c.outcome)
			if srv.hits.Load() != c.tries || !strings.Contains(r.Reason, c.reason) {
				t.Fatalf("tries %d (want %d), reason %q (want %q)", srv.hits.Load(), c.tries, r.Reason, c.reason)
			}
		})
	}
}

const chain = `    retry:
      - { on: [503], action: fallback }
    fallback:
      - request: { url: "{{settings.backup_url}}/backup", timeout: 1s }
      - cache: { max_age: 24h }
      - defaults: { score: 50 }
        flag: manual_review
    append: { risk: "{{captured.score}}" }
`

// TestFallbackChain walks every link in order: secondary request, cache
// (fresh and stale), defaults with a flag, and skip.
func TestFallbackChain(t *testing.T) {
	clock := newFakeClock()
	var primaryDown, backupDown atomic.Bool
	primary := newFaults(t, func(w http.ResponseWriter, r *http.Request) {
		if primaryDown.Load() {
			status(503)(w, r)
			return
		}
		ok(`{"score": 85}`)(w, r)
	})
	backup := newFaults(t, func(w http.ResponseWriter, r *http.Request) {
		if backupDown.Load() || r.URL.Path != "/backup" {
			status(500)(w, r)
			return
		}
		ok(`{"score": 70}`)(w, r)
	})
	p := plan(t, oneStep(chain), WithClock(clock))
	s, err := p.Bind(Config{Values: map[string]any{"base_url": primary.URL, "backup_url": backup.URL}, Store: store.NewMemory()})
	if err != nil {
		t.Fatal(err)
	}
	lead := map[string]any{"email": "a@b.co"}
	runLead := func() *Result { return p.Run(context.Background(), lead, s) }

	r := runLead() // primary answers, and its answer is remembered
	wantOutcome(t, r, Success)
	if r.Steps[0].Fallback != "" || r.Lead["risk"] != 85.0 {
		t.Fatalf("%+v", r.Steps[0])
	}

	primaryDown.Store(true)
	r = runLead()
	wantOutcome(t, r, Success)
	if r.Steps[0].Fallback != "request" || r.Lead["risk"] != 70.0 || len(r.Steps[0].Tried) != 1 || !strings.Contains(r.Steps[0].Tried[0], "primary: HTTP 503") {
		t.Fatalf("secondary: %+v", r.Steps[0])
	}
	if primary.hits.Load() != 2 {
		t.Fatalf("fallback action retried the primary: %d hits", primary.hits.Load())
	}

	backupDown.Store(true)
	clock.Advance(23 * time.Hour)
	r = runLead()
	wantOutcome(t, r, Success)
	if r.Steps[0].Fallback != "cache" || r.Lead["risk"] != 70.0 {
		t.Fatalf("cache: %+v", r.Steps[0])
	}
	if tried := r.Steps[0].Tried; len(tried) != 2 || !strings.HasPrefix(tried[1], "request: ") {
		t.Fatalf("tried %q", tried)
	}

	clock.Advance(2 * time.Hour) // the secondary's answer is now 25h old
	r = runLead()
	wantOutcome(t, r, Success)
	sr := r.Steps[0]
	if sr.Fallback != "defaults" || r.Lead["risk"] != 50 || r.Lead["manual_review"] != true || sr.Appended["manual_review"] != true || sr.Status != 0 {
		t.Fatalf("defaults: %+v lead %+v", sr, r.Lead)
	}
	if len(sr.Tried) != 3 || !strings.Contains(sr.Tried[2], "cache: last answer is 25h0m0s old (max_age 24h0m0s)") {
		t.Fatalf("tried %q", sr.Tried)
	}

	other := p.Run(context.Background(), map[string]any{"email": "new@b.co"}, s)
	if !strings.Contains(strings.Join(other.Steps[0].Tried, "|"), "cache: no earlier answer") {
		t.Fatalf("cache key must depend on the lead: %q", other.Steps[0].Tried)
	}
}

func TestFallbackSkipAndOnError(t *testing.T) {
	srv := newFaults(t, status(500))
	good := newFaults(t, ok(`{"v": 1}`))
	src := `version: 1
name: f
settings: { base_url: {}, good_url: {} }
steps:
  - name: enrich
    request: { url: "{{settings.base_url}}/enrich" }
    retry: [ { on: [5xx], action: fallback } ]
    fallback:
      - skip: { note: "enrichment unavailable for {{lead.email}}" }
  - name: score
    on_error: continue
    request: { url: "{{settings.base_url}}/score" }
    retry: [ { on: [5xx], action: fail } , { on: [timeout], action: retry } ]
    outcome: {}
  - name: broken
    on_error: continue
    request: { url: "{{settings.base_url}}/broken" }
  - name: deliver
    request: { url: "{{settings.good_url}}/deliver" }
`
	p := plan(t, src, WithClock(newFakeClock()))
	r := run(t, p, map[string]any{"email": "a@b.co"}, map[string]any{"base_url": srv.URL, "good_url": good.URL})
	if r.Steps[0].Outcome != Skip || r.Steps[0].Fallback != "skip" || r.Steps[0].Reason != "enrichment unavailable for a@b.co" {
		t.Fatalf("skip link: %+v", r.Steps[0])
	}
	if r.Steps[1].Outcome != Failure || r.Outcome != Failure || len(r.Steps) != 2 {
		t.Fatalf("a failure stops the flow even with on_error: continue: %+v", r)
	}
	src = strings.Replace(src, "action: fail }", "action: retry, max_attempts: 1 }", 1)
	p = plan(t, src, WithClock(newFakeClock()))
	r = run(t, p, map[string]any{"email": "a@b.co"}, map[string]any{"base_url": srv.URL, "good_url": good.URL})
	if len(r.Steps) != 4 || r.Steps[1].Outcome != Error || r.Steps[2].Outcome != Error || r.Steps[3].Outcome != Success {
		t.Fatalf("on_error continue: %+v", r.Steps)
	}
	wantOutcome(t, r, Success)
}

func TestDeadlines(t *testing.T) {
	t.Run("step deadline bounds all tries", func(t *testing.T) {
		srv := newFaults(t, hang)
		start := time.Now()
		r := runWith(t, oneStep("    timeout: 5s\n    deadline: 150ms\n"), realClock{}, srv.URL)
		wantOutcome(t, r, Error)
		if !strings.Contains(r.Reason, "step deadline 150ms exceeded") || time.Since(start) > 4*time.Second {
			t.Fatalf("reason %q after %s", r.Reason, time.Since(start))
		}
	})
	t.Run("no retry wait past the deadline", func(t *testing.T) {
		srv := newFaults(t, status(503, "Retry-After", "60"))
		r := runWith(t, oneStep("    deadline: 2s\n    retry: [ { on: [503], action: retry, backoff: { max: 2m } } ]\n"), newFakeClock(), srv.URL)
		wantOutcome(t, r, Error)
		if srv.hits.Load() != 1 || !strings.Contains(r.Reason, "would pass the deadline") {
			t.Fatalf("hits %d reason %q", srv.hits.Load(), r.Reason)
		}
	})
	t.Run("flow deadline", func(t *testing.T) {
		srv := newFaults(t, hang)
		src := strings.Replace(oneStep("    timeout: 5s\n"), "name: r\n", "name: r\ndeadline: 100ms\n", 1)
		r := runWith(t, src, realClock{}, srv.URL)
		wantOutcome(t, r, Error)
		if !strings.Contains(r.Reason, "flow deadline 100ms exceeded") {
			t.Fatalf("reason %q", r.Reason)
		}
	})
	t.Run("caller context wins", func(t *testing.T) {
		srv := newFaults(t, hang)
		p := plan(t, oneStep("    timeout: 5s\n"))
		s, _ := p.Settings(map[string]any{"base_url": srv.URL}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		r := p.Run(ctx, map[string]any{"email": "x"}, s)
		wantOutcome(t, r, Error)
		if srv.hits.Load() != 1 {
			t.Fatalf("retried after the caller gave up: %d", srv.hits.Load())
		}
	})
}

// TestEveryLeadEndsAndNothingLeaks runs many leads through every kind of
// fault at once: each ends with a terminal outcome and no goroutine is left.
func TestEveryLeadEndsAndNothingLeaks(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	faultsByLead := []http.HandlerFunc{ok(`{"score":1}`), status(500), status(429, "Retry-After", "1"), hang, reset, garbage, slowBody, status(404), status(503)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscanf(r.URL.Query().Get("n"), "%d", &n)
		faultsByLead[n%len(faultsByLead)](w, r)
	}))
	client := &http.Client{Transport: &http.Transport{}}
	src := "version: 1\nname: r\nsettings: { base_url: {} }\nsteps:\n  - name: s\n    request: { url: \"{{settings.base_url}}/x\", query: { n: \"{{lead.n}}\" } }\n    timeout: 1s\n    capture: { score: { json: score } }\n" + chain
	src = strings.Replace(src, "{{settings.backup_url}}", "{{settings.base_url}}", 1)
	p := plan(t, src, WithClock(newFakeClock()), WithHTTPClient(client))
	s, _ := p.Settings(map[string]any{"base_url": srv.URL}, nil)
	var wg sync.WaitGroup
	results := make([]*Result, 90)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = p.Run(context.Background(), map[string]any{"n": i}, s)
		}()
	}
	wg.Wait()
	// every fault but the 404 (an answer: failure) ends in the fallback
	// chain, whose request link (/backup, no n: the ok handler) answers.
	// The 1s timeout is for the hanging faults only: an answering partner
	// must never be taken for a hanging one, even on a loaded machine.
	for i, r := range results {
		want, fallback, score := Success, "request", 1.0
		switch i % len(faultsByLead) {
		case 0:
			fallback = ""
		case 7:
			want, fallback = Failure, ""
		}
		if len(r.Steps) != 1 || r.Outcome != want || r.Steps[0].Outcome != want || r.Steps[0].Fallback != fallback {
			t.Errorf("lead %d (fault %d): want outcome %q, fallback %q: %+v", i, i%len(faultsByLead), want, fallback, r)
			continue
		}
		if want == Success && r.Lead["risk"] != score {
			t.Errorf("lead %d: risk %v, want %v", i, r.Lead["risk"], score)
		}
	}
	srv.CloseClientConnections()
	srv.Close()
	client.CloseIdleConnections()
}

// TestReasonSpeaksOnlyForThePartner: the author's reason replaces the
// default for a 4xx, but a 5xx keeps its HTTP reason.
func TestReasonSpeaksOnlyForThePartner(t *testing.T) {
	rules := "    outcome: { reason: \"no buyer for {{lead.email}}\" }\n    retry: [ { on: [5xx], action: fail } ]\n"
	for code, want := range map[int]string{422: "no buyer for a@b.co", 503: "HTTP 503 Service Unavailable"} {
		srv := newFaults(t, status(code))
		r := runWith(t, oneStep(rules), newFakeClock(), srv.URL)
		wantOutcome(t, r, Failure)
		if !strings.HasPrefix(r.Reason, want) {
			t.Fatalf("%d: reason %q, want %q", code, r.Reason, want)
		}
	}
}

// TestLeadWithoutCacheKeySkipsTheCacheLink: a key template that cannot be
// rendered for a lead disables only the cache link for that lead.
func TestLeadWithoutCacheKeySkipsTheCacheLink(t *testing.T) {
	srv := newFaults(t, status(503))
	src := oneStep("    retry: [ { on: [503], action: fallback } ]\n    fallback:\n      - cache: { max_age: 1h, key: \"{{lead.domain}}\" }\n      - defaults: { score: 1 }\n")
	r := runWith(t, src, newFakeClock(), srv.URL)
	wantOutcome(t, r, Success)
	if sr := r.Steps[0]; sr.Fallback != "defaults" || len(sr.Tried) != 2 || sr.Tried[1] != "cache: no cache key for this lead" {
		t.Fatalf("%+v", sr)
	}
	healthy := newFaults(t, ok(`{"score": 9}`))
	if r := runWith(t, src, newFakeClock(), healthy.URL); r.Outcome != Success || r.Steps[0].Captured["score"] != 9.0 {
		t.Fatalf("a healthy partner must still answer: %+v", r)
	}
}

// TestRetryAfterMax (issue 14.1): Retry-After has its own cap, not
// backoff.max: with max 500ms a Retry-After of 2 waits 2s; beyond
// retry_after_max the step gives up instead of retrying early.
func TestRetryAfterMax(t *testing.T) {
	rules := `    retry:
      - on: [429]
        action: retry
        backoff: { initial: 100ms, max: 500ms }
        retry_after_max: 5s
`
	for header, want := range map[string]time.Duration{"2": 2 * time.Second, "5": 5 * time.Second, "6": -1,
		"9999999999999": -1, "99999999999999999999": -1} { // more seconds than a Duration holds, more than an int64
		clock := newFakeClock()
		srv := newFaults(t, status(429, "Retry-After", header), ok(`{"score": 1}`))
		r := runWith(t, oneStep(rules), clock, srv.URL)
		if want < 0 {
			wantOutcome(t, r, Error)
			if len(clock.Sleeps()) != 0 || srv.hits.Load() != 1 || !strings.Contains(r.Reason, "retry_after_max 5s") {
				t.Fatalf("Retry-After %s: waits %v hits %d reason %q", header, clock.Sleeps(), srv.hits.Load(), r.Reason)
			}
			continue
		}
		wantOutcome(t, r, Success)
		if s := clock.Sleeps(); !sameDurations(s, []time.Duration{want}) {
			t.Fatalf("Retry-After %s: waits %v, want [%s]", header, s, want)
		}
	}
}

// TestStepMaxAttemptsAndStop (issue 14.2): max_attempts: 1 sends once
// whatever the rules (a timeout is not retried, a 401 not re-authed), and
// action: stop ends the step without retry or fallback.
func TestStepMaxAttemptsAndStop(t *testing.T) {
	for _, code := range []int{500, 503, 429} {
		clock := newFakeClock()
		srv := newFaults(t, status(code), ok(`{"score": 1}`))
		r := runWith(t, oneStep("    max_attempts: 1\n"), clock, srv.URL)
		wantOutcome(t, r, Error)
		if srv.hits.Load() != 1 || r.Steps[0].Attempts != 1 || len(clock.Sleeps()) != 0 {
			t.Fatalf("%d: hits %d attempts %d sleeps %v", code, srv.hits.Load(), r.Steps[0].Attempts, clock.Sleeps())
		}
	}
	clock := newFakeClock()
	srv := newFaults(t, status(503), ok(`{"score": 1}`))
	r := runWith(t, oneStep("    max_attempts: 2\n"), clock, srv.URL)
	wantOutcome(t, r, Success)
	if srv.hits.Load() != 2 {
		t.Fatalf("max_attempts 2: hits %d", srv.hits.Load())
	}
	clock = newFakeClock()
	srv = newFaults(t, status(500), ok(`{"score": 1}`))
	r = runWith(t, oneStep("    retry: [ { on: [5xx], action: stop } ]\n    fallback: [ { defaults: { score: 0 } } ]\n"), clock, srv.URL)
	wantOutcome(t, r, Error)
	if srv.hits.Load() != 1 || r.Steps[0].Fallback != "" || !strings.HasPrefix(r.Steps[0].Rule, "stop (rule at") {
		t.Fatalf("stop: hits %d fallback %q rule %q", srv.hits.Load(), r.Steps[0].Fallback, r.Steps[0].Rule)
	}
}

// TestReasonForFaultsAndVariants (issue 14.3, 14.4): a reason that reads
// the answer speaks for a 5xx too (a SOAP fault); variants set method,
// query and body.
func TestReasonForFaultsAndVariants(t *testing.T) {
	soap := newFaults(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(500)
		io.WriteString(w, `<Envelope><Body><Fault><faultstring>Invalid ZIP 999</faultstring></Fault></Body></Envelope>`)
	})
	src0 := strings.Replace(oneStep("    outcome: { reason: \"{{captured.fault}}\" }\n    max_attempts: 1\n"), "capture: { score: { json: score } }", "capture: { fault: { xpath: //faultstring } }", 1)
	r := runWith(t, src0, newFakeClock(), soap.URL)
	if r.Outcome != Error || r.Reason != "Invalid ZIP 999 (HTTP 500 Internal Server Error)" || soap.hits.Load() != 1 {
		t.Fatalf("fault: %s %q hits %d", r.Outcome, r.Reason, soap.hits.Load())
	}
	var got []string
	var mu sync.Mutex
	srv := newFaults(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.RawQuery+" "+string(b))
		mu.Unlock()
		io.WriteString(w, `{"score": 1}`)
	})
	src := `version: 1
name: v
settings: { base_url: {} }
steps:
  - name: s
    request:
      url: "{{settings.base_url}}/x"
      query: { tier: standard, email: "{{lead.email}}" }
    variants:
      - when: lead.value > 100
        method: POST
        query: { tier: premium }
        body: { json: { email: "{{lead.email}}" } }
      - timeout: 2s
`
	p, err := Parse("v.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	rn, err := p.Bind(Config{Values: map[string]any{"base_url": srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer rn.Close(context.Background())
	a := rn.Run(context.Background(), map[string]any{"email": "a@b.co", "value": 150})
	b := rn.Run(context.Background(), map[string]any{"email": "c@d.co", "value": 5})
	if a.Outcome != Success || b.Outcome != Success {
		t.Fatalf("%s %s / %s %s", a.Outcome, a.Reason, b.Outcome, b.Reason)
	}
	want := []string{`POST email=a%40b.co&tier=premium {"email":"a@b.co"}`, `GET tier=standard&email=c%40d.co `}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("requests %q, want %q", got, want)
	}
	if a.Steps[0].Variant != 1 || b.Steps[0].Variant != 2 || time.Duration(b.Steps[0].Timeout) != 2*time.Second || time.Duration(a.Steps[0].Timeout) != DefaultTimeout {
		t.Fatalf("variant/timeout: %d %s / %d %s", a.Steps[0].Variant, a.Steps[0].Timeout, b.Steps[0].Variant, b.Steps[0].Timeout)
	}
}

// TestDeclaredFormatMustParse (issue 14.13): a truncated JSON 200 for a step
// that declares response.format: json is an error, with or without
// captures, not a success.
func TestDeclaredFormatMustParse(t *testing.T) {
	srv := newFaults(t, ok(`{"score": 1, "ok": tr`))
	src := strings.Replace(oneStep("    response: { format: json }\n    max_attempts: 1\n"), "    capture: { score: { json: score } }\n", "", 1)
	r := runWith(t, src, newFakeClock(), srv.URL)
	if r.Outcome != Error || r.Class != ClassCapture || !strings.Contains(r.Reason, "not valid JSON") {
		t.Fatalf("%s %s %q", r.Outcome, r.Class, r.Reason)
	}
	srv = newFaults(t, ok(`{"score": 1}`))
	if r := runWith(t, src, newFakeClock(), srv.URL); r.Outcome != Success {
		t.Fatalf("valid JSON: %s %q", r.Outcome, r.Reason)
	}
}

// TestIntegrationRetryRules: retry: at the top applies to every step,
// after the step's own rules and before the defaults.
func TestIntegrationRetryRules(t *testing.T) {
	src := strings.Replace(oneStep(""), "steps:\n", "retry: [ { on: [503], action: fail } ]\nsteps:\n", 1)
	srv := newFaults(t, status(503), ok(`{"score": 1}`))
	r := runWith(t, src, newFakeClock(), srv.URL)
	if r.Outcome != Failure || srv.hits.Load() != 1 || !strings.Contains(r.Steps[0].Rule, "rule at test.yaml:4") {
		t.Fatalf("%s hits %d rule %q", r.Outcome, srv.hits.Load(), r.Steps[0].Rule)
	}
	own := strings.Replace(src, "    capture:", "    retry: [ { on: [503], action: ignore } ]\n    capture:", 1)
	srv = newFaults(t, status(503))
	if r := runWith(t, own, newFakeClock(), srv.URL); r.Outcome != Success {
		t.Fatalf("the step's own rule comes first: %s %q", r.Outcome, r.Reason)
	}
}

// A partner that keeps redirecting, or answers a body its Content-Encoding
// does not decode, answered: the step is an error of class status or
// capture, tried once — not a connection fault retried by the default rule.
func TestAnswersThatAreNoConnectionFault(t *testing.T) {
	loop := func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/x", http.StatusFound) }
	corrupt := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		io.WriteString(w, "not gzip at all")
	}
	badCRC := func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(`{"score": 1}`))
		zw.Close()
		z := b.Bytes()
		z[len(z)-8] ^= 0xff // the CRC-32 at the end
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(z)
	}
	for name, c := range map[string]struct {
		h      http.HandlerFunc
		class  Class
		reason string
	}{
		"redirect loop": {loop, ClassStatus, "stopped after 10 redirects"},
		"not gzip":      {corrupt, ClassCapture, "gzip: invalid header"},
		"bad checksum":  {badCRC, ClassCapture, "gzip: invalid checksum"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := newFaults(t, c.h)
			r := runWith(t, oneStep(""), newFakeClock(), srv.URL)
			wantOutcome(t, r, Error)
			if r.Class != c.class || !strings.Contains(r.Reason, c.reason) || r.Steps[0].Attempts != 1 {
				t.Fatalf("class %s (want %s), reason %q, %d tries (want 1)", r.Class, c.class, r.Reason, r.Steps[0].Attempts)
			}
		})
	}
}
