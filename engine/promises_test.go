package engine

// Tests that pin down documented behaviour the older tests let slip: each
// one kills a mutant of scripts/mutants (named in its comment).

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plumbhq/plumb/store"
)

// bindFor binds p to the given settings and a store shared by the
// runner's leads; the runner is closed when the test ends.
func bindFor(t *testing.T, p *Plan, given map[string]any) *Runner {
	t.Helper()
	r, err := p.Bind(Config{Values: given, Store: store.NewMemory()})
	if err != nil {
		t.Fatalf("settings: %v", err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

// runLeadOnce runs one lead through a runner of its own.
func runLeadOnce(t *testing.T, p *Plan, lead, given map[string]any) *Result {
	t.Helper()
	return bindFor(t, p, given).Run(context.Background(), lead)
}

const defaultsChain = `    fallback:
      - defaults: { score: 50 }
        flag: manual_review
`

// TestExhaustedRetriesFallBack: a retry rule that gives up on an error
// hands the step to the fallback chain (mutant exhausted-retries-fallback).
func TestExhaustedRetriesFallBack(t *testing.T) {
	cases := []struct {
		name, rules string
		script      []http.HandlerFunc
		tries       int32
		tried       string
	}{
		{"own rule", "    retry: [ { on: [5xx], action: retry, max_attempts: 2 } ]\n", []http.HandlerFunc{status(500)}, 2, "primary: HTTP 500 Internal Server Error"},
		{"default rule", "", []http.HandlerFunc{status(503)}, 3, "primary: HTTP 503 Service Unavailable"},
		{"timeouts", "    timeout: 50ms\n    retry: [ { on: [timeout], action: retry, max_attempts: 2 } ]\n", []http.HandlerFunc{hang}, 2, "timeout after 50ms"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := newFaults(t, c.script...)
			p := plan(t, oneStep(c.rules+defaultsChain))
			r := runLeadOnce(t, p, map[string]any{"email": "a@b.co"}, map[string]any{"base_url": srv.URL})
			wantOutcome(t, r, Success)
			sr := r.Steps[0]
			if sr.Fallback != "defaults" || sr.Captured["score"] != 50 || r.Lead["manual_review"] != true {
				t.Fatalf("want the defaults link to answer: %+v", sr)
			}
			if srv.hits.Load() != c.tries || sr.Attempts != int(c.tries) {
				t.Fatalf("%d tries (%d attempts), want %d", srv.hits.Load(), sr.Attempts, c.tries)
			}
			if len(sr.Tried) != 1 || !strings.Contains(sr.Tried[0], c.tried) || !strings.Contains(sr.Tried[0], fmt.Sprintf("gave up after %d attempts", c.tries)) {
				t.Fatalf("tried %q", sr.Tried)
			}
		})
	}
}

// TestFailureDoesNotFallBack: "a failure is an answer, it does not fall
// back" — a 4xx or failure_when without a matching rule ends the step as a
// failure even when a fallback chain exists (mutant failure-no-fallback).
func TestFailureDoesNotFallBack(t *testing.T) {
	cases := []struct {
		name, rules string
		reply       http.HandlerFunc
		reason      string
	}{
		{"404", "", status(404), "HTTP 404 Not Found"},
		{"422 with a fallback rule for 5xx", "    retry: [ { on: [5xx], action: fallback } ]\n", status(422), "HTTP 422"},
		{"failure_when", "    outcome: { failure_when: captured.score < 10 }\n", ok(`{"score": 3}`), "failure_when holds"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := newFaults(t, c.reply)
			p := plan(t, oneStep(c.rules+defaultsChain))
			r := runLeadOnce(t, p, map[string]any{"email": "a@b.co"}, map[string]any{"base_url": srv.URL})
			wantOutcome(t, r, Failure)
			sr := r.Steps[0]
			if sr.Fallback != "" || len(sr.Tried) != 0 || r.Lead["manual_review"] != nil || srv.hits.Load() != 1 {
				t.Fatalf("a failure fell back: %+v (hits %d)", sr, srv.hits.Load())
			}
			if !strings.Contains(r.Reason, c.reason) {
				t.Fatalf("reason %q, want %q", r.Reason, c.reason)
			}
		})
	}
}

// TestProxyAuthRequiredIsAnError: 407 means our credentials were refused,
// not an answer about the lead — an error, which the fallback chain may
// answer (mutant 407-failure).
func TestProxyAuthRequiredIsAnError(t *testing.T) {
	srv := newFaults(t, status(407))
	r := runLeadOnce(t, plan(t, oneStep("")), map[string]any{"email": "a@b.co"}, map[string]any{"base_url": srv.URL})
	wantOutcome(t, r, Error)
	if srv.hits.Load() != 1 || !strings.Contains(r.Reason, "HTTP 407") {
		t.Fatalf("hits %d reason %q", srv.hits.Load(), r.Reason)
	}
	r = runLeadOnce(t, plan(t, oneStep(defaultsChain)), map[string]any{"email": "a@b.co"}, map[string]any{"base_url": srv.URL})
	wantOutcome(t, r, Success)
	if r.Steps[0].Fallback != "defaults" {
		t.Fatalf("a 407 error must reach the fallback chain: %+v", r.Steps[0])
	}
}

// TestDefaultBackoffSchedule asserts the documented default schedule: 500ms
// doubling up to a 10s cap, jittered into [w/2, w] (mutants
// default-backoff-cap and default-backoff-initial).
func TestDefaultBackoffSchedule(t *testing.T) {
	full := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	t.Run("no jitter", func(t *testing.T) {
		clock := newFakeClock()
		srv := newFaults(t, status(503))
		r := runWith(t, oneStep("    retry: [ { on: [5xx], action: retry, max_attempts: 8, backoff: { jitter: false } } ]\n"), clock, srv.URL)
		wantOutcome(t, r, Error)
		if s := clock.Sleeps(); !sameDurations(s, full) {
			t.Fatalf("waits %v, want %v", s, full)
		}
	})
	t.Run("jittered", func(t *testing.T) {
		for range 20 {
			clock := newFakeClock()
			srv := newFaults(t, status(503))
			r := runWith(t, oneStep("    retry: [ { on: [5xx], action: retry, max_attempts: 8 } ]\n"), clock, srv.URL)
			wantOutcome(t, r, Error)
			s := clock.Sleeps()
			if len(s) != len(full) {
				t.Fatalf("waits %v", s)
			}
			for i, w := range s {
				if w < full[i]/2 || w > full[i] {
					t.Fatalf("wait %d is %s, want within [%s, %s] (all: %v)", i+1, w, full[i]/2, full[i], s)
				}
			}
		}
	})
	t.Run("default rules", func(t *testing.T) {
		clock := newFakeClock()
		srv := newFaults(t, status(502))
		r := runWith(t, oneStep(""), clock, srv.URL)
		wantOutcome(t, r, Error)
		s := clock.Sleeps()
		if len(s) != 2 || s[0] < 250*time.Millisecond || s[0] > 500*time.Millisecond || s[1] < 500*time.Millisecond || s[1] > time.Second {
			t.Fatalf("default rule waits %v, want one in [250ms, 500ms] then one in [500ms, 1s]", s)
		}
	})
}

// TestDefaultRetryAfterCap: the default rules obey Retry-After up to
// DefaultRetryAfterMax (60s), whatever the backoff cap (10s); a partner
// asking for longer is not retried early (mutant default-retry-after-cap).
func TestDefaultRetryAfterCap(t *testing.T) {
	for header, want := range map[string]time.Duration{"3": 3 * time.Second, "10": 10 * time.Second, "45": 45 * time.Second, "60": time.Minute, "120": -1} {
		for _, code := range []int{429, 503} {
			t.Run(fmt.Sprintf("%d Retry-After %s", code, header), func(t *testing.T) {
				clock := newFakeClock()
				srv := newFaults(t, status(code, "Retry-After", header), ok(`{"score": 1}`))
				r := runWith(t, oneStep(""), clock, srv.URL)
				if want < 0 {
					wantOutcome(t, r, Error)
					if s := clock.Sleeps(); len(s) != 0 || !strings.Contains(r.Reason, "more than retry_after_max 1m0s") {
						t.Fatalf("waits %v, reason %q: want no retry", s, r.Reason)
					}
					return
				}
				wantOutcome(t, r, Success)
				if s := clock.Sleeps(); !sameDurations(s, []time.Duration{want}) {
					t.Fatalf("waits %v, want [%s]", s, want)
				}
			})
		}
	}
}

// TestReauthenticatesOnlyOnce: a 401 after a fresh token ends the step; the
// token is renewed once and the API called twice (mutant reauth-once).
func TestReauthenticatesOnlyOnce(t *testing.T) {
	var tokens, calls atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		n := tokens.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"bearer","expires_in":3600}`, n)
	})
	mux.HandleFunc("/api", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	src := `version: 1
name: o
settings: { base_url: {} }
auth: { type: oauth2, token_url: "{{settings.base_url}}/token", client_id: cid, client_secret: cs }
steps:
  - name: s
    request: { url: "{{settings.base_url}}/api" }
`
	r := runLeadOnce(t, plan(t, src), nil, map[string]any{"base_url": srv.URL})
	wantOutcome(t, r, Error)
	if tokens.Load() != 2 || calls.Load() != 2 || r.Steps[0].Attempts != 2 {
		t.Fatalf("tokens %d, calls %d, attempts %d; want 2, 2, 2", tokens.Load(), calls.Load(), r.Steps[0].Attempts)
	}
	if !strings.Contains(r.Reason, "HTTP 401") || !strings.Contains(r.Reason, "again after re-authenticating") {
		t.Fatalf("reason %q", r.Reason)
	}
}

// TestAuthorizationMaskedInDumps: an Authorization header is masked in
// exchange dumps even when its value is not a secret setting; the scheme
// stays readable (mutant authorization-masking).
func TestAuthorizationMaskedInDumps(t *testing.T) {
	srv := newFaults(t, ok(`{"score": 1}`))
	var mu sync.Mutex
	var seen []*Exchange
	src := strings.Replace(oneStep(""), `request: { url: "{{settings.base_url}}/x",`,
		`request: { headers: { Authorization: "Token {{lead.token}}", Proxy-Authorization: "{{lead.token}}" }, url: "{{settings.base_url}}/x",`, 1)
	p := plan(t, src, withObserver(func(_ context.Context, ex *Exchange) {
		mu.Lock()
		seen = append(seen, ex)
		mu.Unlock()
	}))
	r := runLeadOnce(t, p, map[string]any{"email": "a@b.co", "token": "plain-t0ken"}, map[string]any{"base_url": srv.URL})
	wantOutcome(t, r, Success)
	if len(seen) != 1 {
		t.Fatalf("%d exchanges", len(seen))
	}
	h := seen[0].RequestHeader
	if h.Get("Authorization") != "Token ****" || h.Get("Proxy-Authorization") != "****" {
		t.Fatalf("dumped headers %v", h)
	}
	if s := fmt.Sprint(seen[0]); strings.Contains(s, "plain-t0ken") {
		t.Fatalf("token in dump: %s", s)
	}
}

// TestCacheLinkMaxAge: the fallback cache link answers with an entry up to
// max_age old and not older (mutant cache-max-age).
func TestCacheLinkMaxAge(t *testing.T) {
	for _, c := range []struct {
		age  time.Duration
		want string
	}{{59 * time.Minute, "cache"}, {time.Hour, "cache"}, {61 * time.Minute, "defaults"}, {90 * time.Minute, "defaults"}} {
		t.Run(c.age.String(), func(t *testing.T) {
			clock := newFakeClock()
			var down atomic.Bool
			srv := newFaults(t, func(w http.ResponseWriter, r *http.Request) {
				if down.Load() {
					status(503)(w, r)
					return
				}
				ok(`{"score": 85}`)(w, r)
			})
			p := plan(t, oneStep("    retry: [ { on: [503], action: fallback } ]\n    fallback:\n      - cache: { max_age: 1h }\n      - defaults: { score: 1 }\n"), WithClock(clock))
			runner, lead := bindFor(t, p, map[string]any{"base_url": srv.URL}), map[string]any{"email": "a@b.co"}
			wantOutcome(t, runner.Run(context.Background(), lead), Success)
			down.Store(true)
			clock.Advance(c.age)
			r := runner.Run(context.Background(), lead)
			wantOutcome(t, r, Success)
			if r.Steps[0].Fallback != c.want {
				t.Fatalf("answer %s old: fallback %q, want %q (%+v)", c.age, r.Steps[0].Fallback, c.want, r.Steps[0])
			}
			if c.want == "cache" && r.Steps[0].Captured["score"] != 85.0 {
				t.Fatalf("cached captures %v", r.Steps[0].Captured)
			}
		})
	}
}

// TestStepCacheTTL: a step cache: answers within its ttl and asks the
// partner again after it (mutant step-cache-ttl).
func TestStepCacheTTL(t *testing.T) {
	var hits atomic.Int32
	srv := newFaults(t, func(w http.ResponseWriter, r *http.Request) {
		ok(fmt.Sprintf(`{"score": %d}`, hits.Add(1)))(w, r)
	})
	clock := newFakeClock()
	p := plan(t, oneStep("    cache: { key: \"{{lead.email}}\", ttl: 10m }\n"), WithClock(clock))
	runner, lead := bindFor(t, p, map[string]any{"base_url": srv.URL}), map[string]any{"email": "a@b.co"}
	for i, c := range []struct {
		advance time.Duration
		cache   string
		score   float64
	}{{0, "miss", 1}, {9 * time.Minute, "hit", 1}, {time.Minute, "hit", 1}, {time.Second, "miss", 2}, {10 * time.Minute, "hit", 2}, {15 * time.Minute, "miss", 3}} {
		clock.Advance(c.advance)
		r := runner.Run(context.Background(), lead)
		wantOutcome(t, r, Success)
		if sr := r.Steps[0]; sr.Cache != c.cache || sr.Captured["score"] != c.score {
			t.Fatalf("run %d (+%s): cache %q score %v, want %q %v", i+1, c.advance, sr.Cache, sr.Captured["score"], c.cache, c.score)
		}
	}
}

// TestQueryEscaping checks the exact query string sent: keys and values
// are query-escaped, so &, =, +, # and % cannot change its structure
// (mutant query-escaping).
func TestQueryEscaping(t *testing.T) {
	srv := newServer(t, map[string]http.HandlerFunc{"/": reply(200, "application/json", `{}`)})
	src := `version: 1
name: q
settings: { base_url: {} }
steps:
  - name: s
    request:
      url: "{{settings.base_url}}/x?keep=1"
      query: { q: "{{lead.v}}", "a b&c": "1" }
`
	r := runLeadOnce(t, plan(t, src), map[string]any{"v": "a&b=c+d e#f%g/h?i"}, map[string]any{"base_url": srv.URL})
	wantOutcome(t, r, Success)
	reqs := srv.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	if want := "keep=1&q=a%26b%3Dc%2Bd+e%23f%25g%2Fh%3Fi&a+b%26c=1"; reqs[0].RawQuery != want {
		t.Fatalf("raw query %q, want %q", reqs[0].RawQuery, want)
	}
	if got := reqs[0].Query.Get("q"); got != "a&b=c+d e#f%g/h?i" {
		t.Fatalf("q = %q", got)
	}
}
