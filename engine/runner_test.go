package engine_test

// These tests hold the Runner API to what issue 12 asks of it, through the
// public API only, against real httptest partners. None of them uses a
// sleep to synchronise or asserts a duration.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/store"
)

// quickClock tells the real time but takes no time to wait: retry backoff
// (3 tries on timeout, connection and 5xx by default) costs nothing. Batch
// waits are waits too, so batch tests keep the real clock.
type quickClock struct{}

func (quickClock) Now() time.Time { return time.Now() }
func (quickClock) Sleep(ctx context.Context, _ time.Duration) error {
	return ctx.Err()
}

func mustParse(t testing.TB, src string, opts ...engine.Option) *engine.Plan {
	t.Helper()
	p, err := engine.Parse("test.yaml", []byte(src), opts...)
	if err != nil {
		t.Fatalf("parse:\n%v", err)
	}
	return p
}

// mustBind binds p to values and closes the runner when the test ends.
func mustBind(t testing.TB, p *engine.Plan, values map[string]any) *engine.Runner {
	t.Helper()
	r, err := p.Bind(engine.Config{Values: values})
	if err != nil {
		t.Fatalf("bind:\n%v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func want(t testing.TB, res *engine.Result, o engine.Outcome) {
	t.Helper()
	if res.Outcome != o {
		t.Fatalf("outcome %s (class %q, reason %q), want %s", res.Outcome, res.Class, res.Reason, o)
	}
}

// raceEnabled says whether the test binary was built with -race, where
// the million-lead runs would take minutes.
func raceEnabled() bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" && s.Value == "true" {
				return true
			}
		}
	}
	return false
}

// --- 1. cross-plan credentials -------------------------------------------

// keyRecorder is a partner that records the credentials it is sent.
type keyRecorder struct {
	*httptest.Server
	name string
	mu   sync.Mutex
	seen []string // "X-API-Key=…|Authorization=…" per request
}

func newKeyRecorder(t *testing.T, name string) *keyRecorder {
	k := &keyRecorder{name: name}
	k.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.mu.Lock()
		k.seen = append(k.seen, "X-API-Key="+r.Header.Get("X-API-Key")+"|Authorization="+r.Header.Get("Authorization"))
		k.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"who": %q}`, name)
	}))
	t.Cleanup(k.Close)
	return k
}

func (k *keyRecorder) requests() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.seen...)
}

const apiKeyPlan = `version: 1
name: partner-a
settings:
  base_url: { required: true }
  api_key:  { required: true, secret: true }
auth: { type: api_key, in: header, name: X-API-Key, value: "{{settings.api_key}}" }
steps:
  - name: check
    request: { url: "{{settings.base_url}}/check" }
    capture: { who: { json: who } }
    append: { who: "{{captured.who}}" }
`

// bearerPlan puts its one auth section on the step, where apiKeyPlan has
// it on the integration: sections indexed by position used to mix.
const bearerPlan = `version: 1
name: partner-b
settings:
  base_url: { required: true }
  token:    { required: true, secret: true }
steps:
  - name: check
    auth: { type: bearer, token: "{{settings.token}}" }
    request: { url: "{{settings.base_url}}/check" }
    capture: { who: { json: who } }
    append: { who: "{{captured.who}}" }
`

// TestCrossPlanCredentialsCannotMix: a lead can only be run by a Runner,
// and a Runner carries its own plan's settings: there is no argument
// through which another plan's credentials could travel (the old
// planB.Run(ctx, lead, settingsOfA) does not compile). Runners of two
// plans, and two runners of one plan bound to two tenants' settings, run
// interleaved on many goroutines; each partner only ever sees its own
// credentials, and a partner nobody's settings point at sees nothing.
func TestCrossPlanCredentialsCannotMix(t *testing.T) {
	a, b := newKeyRecorder(t, "A"), newKeyRecorder(t, "B")
	tenant2 := newKeyRecorder(t, "A2")
	bystander := newKeyRecorder(t, "nobody")

	planA, planB := mustParse(t, apiKeyPlan), mustParse(t, bearerPlan)
	runA := mustBind(t, planA, map[string]any{"base_url": a.URL, "api_key": "key-of-A"})
	runB := mustBind(t, planB, map[string]any{"base_url": b.URL, "token": "token-of-B"})
	// the same plan bound twice (two tenants, or a hot-reloaded file)
	runA2 := mustBind(t, planA, map[string]any{"base_url": tenant2.URL, "api_key": "key-of-A2"})

	const n = 40
	var wg sync.WaitGroup
	results := make([][3]*engine.Result, n)
	for i := range n {
		for j, r := range []*engine.Runner{runA, runB, runA2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i][j] = r.Run(context.Background(), map[string]any{"i": i})
			}()
		}
	}
	wg.Wait()
	for i := range n {
		for j, who := range []string{"A", "B", "A2"} {
			res := results[i][j]
			want(t, res, engine.Success)
			if res.Lead["who"] != who {
				t.Fatalf("lead %d of runner %s was answered by %v", i, who, res.Lead["who"])
			}
		}
	}
	for _, c := range []struct {
		p    *keyRecorder
		want string
	}{
		{a, "X-API-Key=key-of-A|Authorization="},
		{b, "X-API-Key=|Authorization=Bearer token-of-B"},
		{tenant2, "X-API-Key=key-of-A2|Authorization="},
	} {
		got := c.p.requests()
		if len(got) != n {
			t.Fatalf("partner %s received %d requests, want %d", c.p.name, len(got), n)
		}
		for _, s := range got {
			if s != c.want {
				t.Fatalf("partner %s was sent %q, want only %q", c.p.name, s, c.want)
			}
		}
	}
	if got := bystander.requests(); len(got) != 0 {
		t.Fatalf("a partner no runner points at received %v", got)
	}
	if runA.Plan() != planA || runA2.Plan() != planA || runB.Plan() != planB {
		t.Fatal("Runner.Plan is not the plan it was bound from")
	}
}

// --- 2. Close -----------------------------------------------------------

// countConns counts a server's open connections.
func countConns(srv *httptest.Server) *atomic.Int64 {
	var open atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	return &open
}

const okPlan = `version: 1
name: ok
settings: { base_url: { required: true } }
steps:
  - name: check
    when: lead.send != false
    request: { url: "{{settings.base_url}}/check", query: { i: "{{lead.i}}" } }
    capture: { ok: { json: ok } }
`

func okHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"ok": true}`)
}

// TestCloseReleasesGoroutinesAndConnections: a runner that has run leads
// holds keep-alive connections (and their transport goroutines); Close
// releases every one of them. A closed runner gives error outcomes, not
// panics, and Close is idempotent.
func TestCloseReleasesGoroutinesAndConnections(t *testing.T) {
	partner := httptest.NewUnstartedServer(http.HandlerFunc(okHandler))
	open := countConns(partner)
	partner.Start()
	defer partner.Close()
	// the partner's listener and whatever earlier tests left are not ours
	ignore := goleak.IgnoreCurrent()

	r, err := mustParse(t, okPlan).Bind(engine.Config{Values: map[string]any{"base_url": partner.URL}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		want(t, r.Run(context.Background(), map[string]any{"i": i}), engine.Success)
	}
	// and a few at once, so there is more than one connection
	for _, res := range collect(t, r.RunAll(context.Background(), engine.Leads(numbered(8)), engine.RunAllOptions{Concurrency: 4})) {
		want(t, res, engine.Success)
	}
	if open.Load() == 0 {
		t.Fatal("no keep-alive connection is open before Close: the test proves nothing")
	}

	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// the partner stays up: only the runner can have closed its connections
	goleak.VerifyNone(t, ignore)
	if n := open.Load(); n != 0 {
		t.Fatalf("%d connections still open after Close", n)
	}

	res := r.Run(context.Background(), map[string]any{"i": 99})
	if res.Outcome != engine.Error || res.Class != engine.ClassCanceled || !errors.Is(res.Err, engine.ErrClosed) {
		t.Fatalf("Run after Close: %s %q %q %v", res.Outcome, res.Class, res.Reason, res.Err)
	}
	if res.Lead["i"] != 99.0 {
		t.Fatalf("Run after Close lost the lead: %v", res.Lead)
	}
	if _, err := r.RunStep(context.Background(), "check", nil, nil); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("RunStep after Close: %v", err)
	}
	for _, res := range collect(t, r.RunAll(context.Background(), engine.Leads(numbered(3)), engine.RunAllOptions{Concurrency: 2})) {
		if !errors.Is(res.Err, engine.ErrClosed) || res.Class != engine.ClassCanceled {
			t.Fatalf("RunAll after Close: %s %q %v", res.Outcome, res.Class, res.Err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	goleak.VerifyNone(t, ignore)
}

// TestCloseWaitsForRunningLead: Close called while a lead's request is held
// by the partner returns only after that lead has finished, and the lead
// is not cut short. Leads started after Close began are refused.
func TestCloseWaitsForRunningLead(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	partner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		okHandler(w, r)
	}))
	defer partner.Close()
	var mu sync.Mutex
	var events []string
	record := func(e string) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}
	// the observer runs on the lead's goroutine after its try, before Run
	// returns
	p := mustParse(t, okPlan, engine.WithObserver(func(context.Context, *engine.Exchange) { record("lead finished its request") }))
	r := mustBind(t, p, map[string]any{"base_url": partner.URL})

	resc := make(chan *engine.Result)
	go func() { resc <- r.Run(context.Background(), map[string]any{"i": 1}) }()
	<-arrived
	closed := make(chan struct{})
	go func() {
		r.Close()
		record("Close returned")
		close(closed)
	}()
	// wait until Close has begun: a lead that sends nothing (when: false)
	// is skipped until then, refused after
	for {
		res := r.Run(context.Background(), map[string]any{"send": false})
		if errors.Is(res.Err, engine.ErrClosed) {
			break
		}
		want(t, res, engine.Skip)
		runtime.Gosched()
	}
	close(release)
	res := <-resc
	<-closed
	want(t, res, engine.Success)
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(events, ", ") != "lead finished its request, Close returned" {
		t.Fatalf("events: %q", events)
	}
}

// --- 3. a bounded store ---------------------------------------------------

// heapAlloc is the live heap after a full collection.
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

const maxGrowth = 64 << 20 // a generous bound: an unbounded map of a million answers is ~500 MiB

// TestLRUStoreBoundedAfterMillionKeys puts a million distinct cache keys,
// with answers shaped like a step's captures, through the store a Runner
// makes by default: it keeps its bound and the heap stays well under 64
// MiB more than before.
func TestLRUStoreBoundedAfterMillionKeys(t *testing.T) {
	for _, size := range []int{1000, engine.DefaultCacheEntries} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			before := heapAlloc()
			s := store.NewLRU(size)
			ctx := context.Background()
			at := time.Now()
			for i := range 1_000_000 {
				key := "risk/validate/response/lead-" + fmt.Sprint(i) + "@example.com"
				s.Put(ctx, key, store.Entry{Values: map[string]any{"valid": true, "score": float64(i), "reason": "ok"}, At: at})
			}
			after := heapAlloc()
			if s.Len() != size {
				t.Fatalf("the store holds %d entries, want its bound %d", s.Len(), size)
			}
			if after > before && after-before > maxGrowth {
				t.Fatalf("heap grew by %d MiB after 1,000,000 keys", (after-before)>>20)
			}
			t.Logf("heap growth with %d entries kept: %d KiB", size, int64(after-before)>>10)
			runtime.KeepAlive(s)
		})
	}
}

// cannedTransport answers every request in memory, so a million leads
// take seconds; it counts what reaches it.
type cannedTransport struct{ calls atomic.Int64 }

func (c *cannedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.calls.Add(1)
	if req.Body != nil {
		req.Body.Close()
	}
	return &http.Response{StatusCode: 200, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": {"application/json"}},
		Body:    io.NopCloser(strings.NewReader(`{"valid": true, "score": 12}`)),
		Request: req}, nil
}

const cachedPlan = `version: 1
name: risk
settings: { base_url: { default: "http://partner.invalid" } }
steps:
  - name: validate
    request: { url: "{{settings.base_url}}/validate", query: { email: "{{lead.email}}" } }
    cache: { key: "{{lead.email}}", ttl: 1h }
    capture:
      valid: { json: valid }
      score: { json: score, type: number }
    append: { score: "{{captured.score}}" }
`

// TestRunnerStoreIsBounded runs distinct leads through a step with a
// response cache, so every lead puts one answer in the runner's own store:
// with CacheEntries and with the default, the oldest answers are evicted
// (a lead seen first is sent again, the latest one is a hit) and the heap
// does not grow with the count of leads. Without -race the default runner
// sees 1,000,000 distinct keys.
func TestRunnerStoreIsBounded(t *testing.T) {
	leads := 1_000_000
	if raceEnabled() || testing.Short() {
		leads = 30_000
	}
	for _, c := range []struct {
		name  string
		cfg   engine.Config
		bound int
		leads int
	}{
		{"CacheEntries=1000", engine.Config{CacheEntries: 1000}, 1000, min(leads, 30_000)},
		{"default", engine.Config{}, engine.DefaultCacheEntries, leads},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := &cannedTransport{}
			p := mustParse(t, cachedPlan, engine.WithTransport(func(http.RoundTripper) http.RoundTripper { return tr }))
			r, err := p.Bind(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			email := func(i int) string { return fmt.Sprintf("lead-%d@example.com", i) }
			ctx := context.Background()
			before := heapAlloc()
			seq := func(yield func(map[string]any, error) bool) {
				for i := range c.leads {
					if !yield(map[string]any{"email": email(i)}, nil) {
						return
					}
				}
			}
			for i, res := range r.RunAll(ctx, seq, engine.RunAllOptions{Concurrency: 4}) {
				if res.Outcome != engine.Success || res.Steps[0].Cache != "miss" {
					t.Fatalf("lead %d: %s %q cache %q", i, res.Outcome, res.Reason, res.Steps[0].Cache)
				}
			}
			after := heapAlloc()
			if got := tr.calls.Load(); got != int64(c.leads) {
				t.Fatalf("%d requests for %d distinct leads", got, c.leads)
			}
			if after > before && after-before > maxGrowth {
				t.Fatalf("heap grew by %d MiB after %d distinct keys", (after-before)>>20, c.leads)
			}
			t.Logf("%d leads: heap growth %d KiB", c.leads, int64(after-before)>>10)
			// the latest answer is kept; the first was evicted long ago
			if res := r.Run(ctx, map[string]any{"email": email(c.leads - 1)}); res.Steps[0].Cache != "hit" {
				t.Fatalf("the latest lead's answer is not kept: cache %q", res.Steps[0].Cache)
			}
			if res := r.Run(ctx, map[string]any{"email": email(0)}); res.Steps[0].Cache != "miss" {
				t.Fatalf("the first lead's answer is still kept after %d newer ones (bound %d)", c.leads-1, c.bound)
			}
			// and about as many as the bound are kept (leads ran 4 at a
			// time, so the last few puts may be out of order)
			if res := r.Run(ctx, map[string]any{"email": email(c.leads - c.bound + 16)}); res.Steps[0].Cache != "hit" {
				t.Fatalf("the store keeps fewer than %d answers", c.bound)
			}
			runtime.KeepAlive(r)
		})
	}
}

// collect drains a RunAll sequence into a slice by index, checking each
// index comes once.
func collect(t testing.TB, seq func(func(int, *engine.Result) bool)) []*engine.Result {
	t.Helper()
	var out []*engine.Result
	seen := map[int]bool{}
	for i, res := range seq {
		if seen[i] {
			t.Fatalf("index %d given twice", i)
		}
		seen[i] = true
		for len(out) <= i {
			out = append(out, nil)
		}
		out[i] = res
	}
	for i, res := range out {
		if res == nil {
			t.Fatalf("no result for index %d", i)
		}
	}
	return out
}

// numbered makes n leads {"i": k}.
func numbered(n int) []map[string]any {
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = map[string]any{"i": i}
	}
	return out
}
