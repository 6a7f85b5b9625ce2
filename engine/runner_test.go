package engine_test

// These tests hold the Runner API to what issue 12 asks of it, through the
// public API only, against real httptest partners. None of them uses a
// sleep to synchronise or asserts a duration.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"slices"
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

// --- 4. RunAll -------------------------------------------------------------

// watchdog bounds a test that would otherwise hang on a regression: it is
// never reached when the runner behaves, and no test asserts a duration.
func watchdog(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

const echoPlan = `version: 1
name: echo
settings: { base_url: { required: true } }
steps:
  - name: echo
    request: { url: "{{settings.base_url}}/echo", query: { i: "{{lead.i}}" } }
    capture: { i: { json: i, type: number } }
    append: { echoed: "{{captured.i}}" }
`

func echo(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"i": %s}`, r.URL.Query().Get("i"))
}

// arrival is a request the partner holds until release is closed.
type arrival struct {
	i       int
	release chan struct{}
}

// holdingPartner hands every request to the test through arrivals and
// answers it when the test releases it (or the client goes away).
func holdingPartner(t *testing.T) (*httptest.Server, chan arrival) {
	arrivals := make(chan arrival)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var i int
		fmt.Sscan(r.URL.Query().Get("i"), &i)
		a := arrival{i: i, release: make(chan struct{})}
		select {
		case arrivals <- a:
		case <-r.Context().Done():
			return
		}
		select {
		case <-a.release:
			echo(w, r)
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	return srv, arrivals
}

// wantEcho checks that result k is lead k's.
func wantEcho(t *testing.T, k int, res *engine.Result) {
	t.Helper()
	if res.Outcome != engine.Success || res.Lead["i"] != float64(k) || res.Lead["echoed"] != float64(k) {
		t.Fatalf("result %d: %s %q lead %v", k, res.Outcome, res.Reason, res.Lead)
	}
}

// TestRunAllOrder: the partner holds each wave of Concurrency requests and
// answers it in an order scrambled by the leads' content, so leads finish
// out of order; RunAll gives them back in input order, and with Unordered
// gives every one of them once.
func TestRunAllOrder(t *testing.T) {
	const n, c = 60, 6
	for _, unordered := range []bool{false, true} {
		t.Run(fmt.Sprintf("unordered=%v", unordered), func(t *testing.T) {
			ctx := watchdog(t)
			srv, arrivals := holdingPartner(t)
			go func() {
				answered := 0
				var wave []arrival
				for answered < n {
					select {
					case a := <-arrivals:
						wave = append(wave, a)
					case <-ctx.Done():
						return
					}
					if len(wave) < min(c, n-answered) {
						continue
					}
					// scrambled by content: by i*7 mod 11, then i
					slices.SortFunc(wave, func(a, b arrival) int {
						return cmp.Or(cmp.Compare(a.i*7%11, b.i*7%11), cmp.Compare(b.i, a.i))
					})
					for _, a := range wave {
						close(a.release)
					}
					answered += len(wave)
					wave = nil
				}
			}()
			r := mustBind(t, mustParse(t, echoPlan), map[string]any{"base_url": srv.URL})
			next := 0
			seen := map[int]bool{}
			for k, res := range r.RunAll(ctx, engine.Leads(numbered(n)), engine.RunAllOptions{Concurrency: c, Unordered: unordered}) {
				if !unordered && k != next {
					t.Fatalf("result %d came when %d was next", k, next)
				}
				if seen[k] {
					t.Fatalf("result %d came twice", k)
				}
				seen[k] = true
				next++
				wantEcho(t, k, res)
			}
			if len(seen) != n {
				t.Fatalf("%d results for %d leads", len(seen), n)
			}
		})
	}
}

// TestRunAllMalformedItems: an item of the sequence paired with an error
// is not run; it gets an error result of class input in its place.
func TestRunAllMalformedItems(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		echo(w, r)
	}))
	defer srv.Close()
	r := mustBind(t, mustParse(t, echoPlan), map[string]any{"base_url": srv.URL})
	bad := errors.New("line 3: invalid character '}'")
	leads := func(yield func(map[string]any, error) bool) {
		for i := range 8 {
			var ok bool
			if i == 2 || i == 5 {
				ok = yield(nil, fmt.Errorf("lead %d: %w", i, bad))
			} else {
				ok = yield(map[string]any{"i": i}, nil)
			}
			if !ok {
				return
			}
		}
	}
	for _, unordered := range []bool{false, true} {
		calls.Store(0)
		got := collect(t, r.RunAll(context.Background(), leads, engine.RunAllOptions{Concurrency: 3, Unordered: unordered}))
		if len(got) != 8 {
			t.Fatalf("%d results for 8 items", len(got))
		}
		for k, res := range got {
			if k == 2 || k == 5 {
				if res.Outcome != engine.Error || res.Class != engine.ClassInput || !errors.Is(res.Err, bad) || !strings.Contains(res.Reason, fmt.Sprintf("lead %d", k)) {
					t.Fatalf("malformed item %d: %s %q %q %v", k, res.Outcome, res.Class, res.Reason, res.Err)
				}
				continue
			}
			wantEcho(t, k, res)
		}
		if calls.Load() != 6 {
			t.Fatalf("the partner received %d requests for 6 good leads", calls.Load())
		}
	}
}

const batchPlan = `version: 1
name: bulk
settings: { base_url: { required: true } }
steps:
  - name: validate
    batch: { size: 5, wait: 1h, results: results, id: id }
    request:
      url: "{{settings.base_url}}/batch"
      body:
        json: |
          {"ids": [{{range batch.items}}{{if not .first}},{{end}}"{{.lead.id}}"{{end}}]}
    capture: { ok: { json: ok } }
    append: { ok: "{{captured.ok}}" }
`

// TestRunAllCompletesBatches: 12 leads through a batch step of size 5 that
// would wait an hour for a batch to fill: RunAll sends 5, 5 and then the
// last 2 as soon as no more leads are coming (Concurrency is raised to the
// batch size, so even Concurrency 1 fills batches).
func TestRunAllCompletesBatches(t *testing.T) {
	for _, c := range []int{1, 16} {
		t.Run(fmt.Sprint("concurrency=", c), func(t *testing.T) {
			var mu sync.Mutex
			var sizes []int
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var in struct{ IDs []string }
				if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
					http.Error(w, err.Error(), 400)
					return
				}
				mu.Lock()
				sizes = append(sizes, len(in.IDs))
				mu.Unlock()
				out := make([]string, len(in.IDs))
				for k, id := range in.IDs {
					out[k] = fmt.Sprintf(`{"id": %q, "ok": true}`, id)
				}
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"results": [%s]}`, strings.Join(out, ","))
			}))
			defer srv.Close()
			p := mustParse(t, batchPlan)
			if p.BatchSize() != 5 {
				t.Fatalf("BatchSize %d", p.BatchSize())
			}
			r := mustBind(t, p, map[string]any{"base_url": srv.URL})
			leads := make([]map[string]any, 12)
			for k := range leads {
				leads[k] = map[string]any{"id": fmt.Sprint("lead-", k)}
			}
			for k, res := range collect(t, r.RunAll(watchdog(t), engine.Leads(leads), engine.RunAllOptions{Concurrency: c})) {
				if res.Outcome != engine.Success || res.Lead["id"] != fmt.Sprint("lead-", k) || res.Lead["ok"] != true || res.Steps[0].Batch == "" {
					t.Fatalf("lead %d: %s %q %v", k, res.Outcome, res.Reason, res.Lead)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			slices.Sort(sizes)
			if !slices.Equal(sizes, []int{2, 5, 5}) {
				t.Fatalf("batch sizes %v, want 5, 5 and 2", sizes)
			}
		})
	}
}

// TestRunAllSlowLeadDoesNotStall: lead #3 of 400 is held by the partner
// until the partner has answered 300 others. The partner answers the
// others in waves of Concurrency-1 (it holds each until that many are in
// flight at once), so it can only get there if RunAll keeps every other
// worker busy while #3 is held: the count of requests in flight at the
// partner reaches Concurrency. Results still come out in input order.
func TestRunAllSlowLeadDoesNotStall(t *testing.T) {
	const n, c, slow, others = 400, 16, 3, 300
	ctx := watchdog(t)
	var (
		mu          sync.Mutex
		cond        = sync.NewCond(&mu)
		inflight    int // requests in the handler, the held one included
		maxInflight int // while the slow one is held
		answered    int // others answered while it is held
		waiting     int // others waiting for their wave
		wave        int
		holding     = true
	)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var i int
		fmt.Sscan(r.URL.Query().Get("i"), &i)
		mu.Lock()
		inflight++
		if holding {
			maxInflight = max(maxInflight, inflight)
		}
		mu.Unlock()
		defer func() {
			mu.Lock()
			inflight--
			mu.Unlock()
		}()
		if i == slow {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			echo(w, r)
			return
		}
		mu.Lock()
		if holding {
			// wait for a full wave of c-1 others
			waiting++
			my := wave
			if waiting == c-1 {
				waiting, wave = 0, wave+1
				cond.Broadcast()
			}
			for holding && wave == my && ctx.Err() == nil {
				cond.Wait()
			}
			if answered++; answered == others && holding {
				holding = false
				close(release)
				cond.Broadcast()
			}
		}
		mu.Unlock()
		echo(w, r)
	}))
	defer srv.Close()
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		cond.Broadcast()
		mu.Unlock()
	})
	defer stop()

	r := mustBind(t, mustParse(t, echoPlan), map[string]any{"base_url": srv.URL})
	next := 0
	for k, res := range r.RunAll(ctx, engine.Leads(numbered(n)), engine.RunAllOptions{Concurrency: c}) {
		if k != next {
			t.Fatalf("result %d came when %d was next", k, next)
		}
		next++
		wantEcho(t, k, res)
	}
	if next != n {
		t.Fatalf("%d results for %d leads", next, n)
	}
	mu.Lock()
	defer mu.Unlock()
	if maxInflight < c {
		t.Fatalf("at most %d requests in flight while lead %d was held, want %d (Concurrency)", maxInflight, slow, c)
	}
	t.Logf("max in flight while lead %d was held: %d", slow, maxInflight)
}

// leadSource is an endless lead source that counts what was read from it;
// its method's name lets a test find the goroutine reading it.
type leadSource struct{ read atomic.Int64 }

func (s *leadSource) seq(yield func(map[string]any, error) bool) {
	for i := 0; ; i++ {
		s.read.Add(1)
		if !yield(map[string]any{"i": i}, nil) {
			return
		}
	}
}

// feederWaits reports whether the goroutine reading src is parked (not
// handing a lead to a worker, not running) inside it: RunAll has stopped
// starting leads.
func feederWaits() bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if !strings.Contains(g, "(*leadSource).seq") {
			continue
		}
		head, _, _ := strings.Cut(g, "\n")
		for _, parked := range []string{"[sync.Cond.Wait", "[chan receive", "[select"} {
			if strings.Contains(head, parked) {
				return true
			}
		}
	}
	return false
}

// TestRunAllReorderBytesBound: with ReorderBytes tiny, while lead #3 is
// held, the results finished behind it reach the bound at once and RunAll
// stops starting leads: the partner sees no more than about Concurrency
// requests beyond the held one, and the source is no longer read. Once #3
// is answered, everything completes in order.
func TestRunAllReorderBytesBound(t *testing.T) {
	const c, slow, total = 8, 3, 200
	ctx := watchdog(t)
	var seen, atRelease atomic.Int64 // requests of leads other than the slow one
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var i int
		fmt.Sscan(r.URL.Query().Get("i"), &i)
		if i == slow {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		} else {
			seen.Add(1)
		}
		echo(w, r)
	}))
	defer srv.Close()
	r := mustBind(t, mustParse(t, echoPlan), map[string]any{"base_url": srv.URL})
	src := &leadSource{}
	limited := func(yield func(map[string]any, error) bool) {
		src.seq(func(l map[string]any, err error) bool {
			if l["i"].(int) >= total {
				return false
			}
			return yield(l, err)
		})
	}
	var yielded atomic.Int64
	go func() {
		// wait until the leads before the slow one are given back, RunAll
		// has stopped starting leads and every lead it started but the
		// slow one is answered (or all have run, which is the failure
		// this test is about)
		paused := func() bool {
			return yielded.Load() == slow && feederWaits() && seen.Load() == src.read.Load()-2
		}
		for !paused() && seen.Load() < total-1 && ctx.Err() == nil {
			runtime.Gosched()
		}
		atRelease.Store(seen.Load())
		close(release)
	}()
	next := 0
	for k, res := range r.RunAll(ctx, limited, engine.RunAllOptions{Concurrency: c, ReorderBytes: 1}) {
		if k != next {
			t.Fatalf("result %d came when %d was next", k, next)
		}
		next++
		yielded.Store(int64(next))
		wantEcho(t, k, res)
	}
	if next != total {
		t.Fatalf("%d results for %d leads", next, total)
	}
	heldBack := atRelease.Load() - slow // leads 0-2 went before the slow one
	if heldBack < 1 || heldBack > c+4 {
		t.Fatalf("the partner saw %d leads beyond the held one before it was answered, want at most Concurrency+4 = %d", heldBack, c+4)
	}
	t.Logf("leads started behind the held one: %d (Concurrency %d)", heldBack, c)
}

// TestRunAllCancel: ctx is cancelled while leads are held by the partner
// and the source is endless: RunAll returns, and every lead it read and
// started has a result, in order; the held ones are cancelled.
func TestRunAllCancel(t *testing.T) {
	const c, answered = 4, 10
	ctx, cancel := context.WithCancel(watchdog(t))
	defer cancel()
	var sent sync.Map // leads the partner received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var i int
		fmt.Sscan(r.URL.Query().Get("i"), &i)
		sent.Store(i, true)
		if i >= answered {
			<-r.Context().Done() // held until the lead is cancelled
			return
		}
		echo(w, r)
	}))
	defer srv.Close()
	r := mustBind(t, mustParse(t, echoPlan), map[string]any{"base_url": srv.URL})
	src := &leadSource{}
	next := 0
	for k, res := range r.RunAll(ctx, src.seq, engine.RunAllOptions{Concurrency: c}) {
		if k != next {
			t.Fatalf("result %d came when %d was next", k, next)
		}
		next++
		if k < answered {
			wantEcho(t, k, res)
		} else if res.Outcome != engine.Error || res.Class != engine.ClassCanceled {
			t.Fatalf("held lead %d: %s %q %q", k, res.Outcome, res.Class, res.Reason)
		}
		if k == answered-1 {
			cancel()
		}
	}
	sent.Range(func(k, _ any) bool {
		if k.(int) >= next {
			t.Errorf("lead %d reached the partner but has no result (%d results)", k, next)
		}
		return true
	})
	// at most the leads in flight and the one being handed out were read
	// beyond the last result
	if read := src.read.Load(); read > int64(next+c+2) {
		t.Fatalf("%d leads read, %d results", read, next)
	}
}

// TestRunAllConsumerStopsEarly: the consumer breaks out of the loop while
// leads are in flight: RunAll stops reading, cancels what runs, and once
// the runner is closed no goroutine of it is left.
func TestRunAllConsumerStopsEarly(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var i int
		fmt.Sscan(r.URL.Query().Get("i"), &i)
		if i >= 3 {
			<-r.Context().Done()
			return
		}
		echo(w, r)
	}))
	defer srv.Close()
	ignore := goleak.IgnoreCurrent()
	r, err := mustParse(t, echoPlan).Bind(engine.Config{Values: map[string]any{"base_url": srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	src := &leadSource{}
	got := 0
	for k, res := range r.RunAll(watchdog(t), src.seq, engine.RunAllOptions{Concurrency: 8}) {
		wantEcho(t, k, res)
		if got++; got == 3 {
			break
		}
	}
	if err := r.Close(); err != nil { // waits for the cancelled leads
		t.Fatal(err)
	}
	goleak.VerifyNone(t, ignore)
	read := src.read.Load()
	if read > 3+8+2 {
		t.Fatalf("%d leads read for 3 results at Concurrency 8", read)
	}
}
