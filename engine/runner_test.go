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
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/engine/observe"
	"github.com/plumbhq/plumb/internal/testkit"
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
	t.Cleanup(func() { r.Close(context.Background()) })
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

	if err := r.Close(context.Background()); err != nil {
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
	if err := r.Close(context.Background()); err != nil {
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
	p := mustParse(t, okPlan, engine.WithEvents(observe.New(func(context.Context, *engine.Exchange) { record("lead finished its request") })))
	r := mustBind(t, p, map[string]any{"base_url": partner.URL})

	resc := make(chan *engine.Result)
	go func() { resc <- r.Run(context.Background(), map[string]any{"i": 1}) }()
	<-arrived
	closed := make(chan struct{})
	go func() {
		r.Close(context.Background())
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
// sees 200,000 distinct keys (twenty times its bound).
func TestRunnerStoreIsBounded(t *testing.T) {
	leads := 200_000
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
			defer r.Close(context.Background())
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
			// one at a time: the checks below rely on the answers being
			// stored in input order (with more workers a descheduled one
			// stores its answer late, however busy the machine)
			for i, res := range r.RunAll(ctx, seq, engine.RunAllOptions{Concurrency: 1}) {
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
			// no more than about the bound is kept
			if res := r.Run(ctx, map[string]any{"email": email(c.leads - c.bound - 16)}); res.Steps[0].Cache != "miss" {
				t.Fatalf("the store keeps more than %d answers", c.bound)
			}
			// and about as many as the bound are kept
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

// echoPlanLong is echoPlan whose tries never time out in a test: leads
// held by a partner end only when the test (or a cancel) lets them.
var echoPlanLong = strings.Replace(echoPlan, "    capture:", "    timeout: 1h\n    capture:", 1)

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
			r := mustBind(t, mustParse(t, echoPlanLong), map[string]any{"base_url": srv.URL})
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
		// a request the client gave up on leaves its wave
		wake := context.AfterFunc(r.Context(), func() {
			mu.Lock()
			cond.Broadcast()
			mu.Unlock()
		})
		defer wake()
		mu.Lock()
		if holding {
			// wait for a full wave of c-1 others
			waiting++
			my := wave
			if waiting == c-1 {
				waiting, wave = 0, wave+1
				cond.Broadcast()
			}
			for holding && wave == my && ctx.Err() == nil && r.Context().Err() == nil {
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

	r := mustBind(t, mustParse(t, echoPlanLong), map[string]any{"base_url": srv.URL})
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
	r := mustBind(t, mustParse(t, echoPlanLong), map[string]any{"base_url": srv.URL})
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
	r := mustBind(t, mustParse(t, echoPlanLong), map[string]any{"base_url": srv.URL})
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
	// tries outlive the test: only a cancel ends the held leads
	r, err := mustParse(t, echoPlanLong).Bind(engine.Config{Values: map[string]any{"base_url": srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	src := &leadSource{}
	got := 0
	ctx := watchdog(t)
	for k, res := range r.RunAll(ctx, src.seq, engine.RunAllOptions{Concurrency: 8}) {
		wantEcho(t, k, res)
		if got++; got == 3 {
			break
		}
	}
	if err := r.Close(context.Background()); err != nil { // waits for the cancelled leads
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("the leads held by the partner ran on after the consumer stopped, until the watchdog ended them")
	}
	goleak.VerifyNone(t, ignore)
	read := src.read.Load()
	if read > 3+8+2 {
		t.Fatalf("%d leads read for 3 results at Concurrency 8", read)
	}
}

// --- 5. lead normalisation --------------------------------------------------

// bodyRecorder answers {"ok": true} and records each request's body.
func bodyRecorder(t *testing.T) (*httptest.Server, func() []string) {
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, r.URL.RawQuery+" "+string(b))
		mu.Unlock()
		okHandler(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := bodies
		bodies = nil
		return out
	}
}

const adultPlan = `version: 1
name: adult
settings: { base_url: { required: true } }
steps:
  - name: adult
    when: lead.age > 18 && lead.stats.score >= 0.5 && lead.stats.visits[1] == 3
    request:
      method: POST
      url: "{{settings.base_url}}/adult"
      query: { age: "{{lead.age}}", next: "{{ add lead.age 1 }}" }
      body:
        json:
          age: "{{lead.age}}"
          score: "{{lead.stats.score}}"
          visits: "{{lead.stats.visits}}"
          label: "age {{lead.age}}"
`

// TestLeadNumbersNormalised: a lead whose numbers are json.Number (a
// decoder with UseNumber), Go ints, uints or float32 is run exactly as the
// same lead with float64 numbers: the same when outcome, the same query
// and JSON body sent.
func TestLeadNumbersNormalised(t *testing.T) {
	srv, bodies := bodyRecorder(t)
	r := mustBind(t, mustParse(t, adultPlan), map[string]any{"base_url": srv.URL})
	lead := func(age, score, visit any) map[string]any {
		return map[string]any{"age": age, "stats": map[string]any{"score": score, "visits": []any{visit, visit, visit}}}
	}
	for _, age := range []float64{41, 18, 12} {
		visits := 3.0
		base := r.Run(context.Background(), lead(age, 0.75, visits))
		wantSent := bodies()
		if (age > 18) != (base.Outcome == engine.Success) || (age > 18) != (len(wantSent) == 1) {
			t.Fatalf("float64 lead of age %v: %s %q, sent %q", age, base.Outcome, base.Reason, wantSent)
		}
		for name, l := range map[string]map[string]any{
			"json.Number": lead(json.Number(fmt.Sprint(age)), json.Number("0.75"), json.Number("3")),
			"int":         lead(int(age), float32(0.75), int(visits)),
			"int64":       lead(int64(age), 0.75, int64(visits)),
			"int8/16/32":  lead(int8(age), 0.75, int32(visits)),
			"uint":        lead(uint(age), 0.75, uint(visits)),
			"uint64":      lead(uint64(age), 0.75, uint8(visits)),
			"float32":     lead(float32(age), float32(0.75), float32(visits)),
		} {
			res := r.Run(context.Background(), l)
			if res.Outcome != base.Outcome || res.Class != base.Class {
				t.Fatalf("%s lead of age %v: %s %q %q, float64 lead: %s", name, age, res.Outcome, res.Class, res.Reason, base.Outcome)
			}
			if got := bodies(); !slices.Equal(got, wantSent) {
				t.Fatalf("%s lead of age %v sent\n%q\nfloat64 lead sent\n%q", name, age, got, wantSent)
			}
			// and the lead as the flow saw it holds the same values, of
			// the same types
			if !reflect.DeepEqual(res.Lead, base.Lead) {
				t.Fatalf("%s lead of age %v became\n%s\nfloat64 lead\n%s", name, age, typed(res.Lead), typed(base.Lead))
			}
		}
	}
	// and what was sent is plain JSON numbers
	r.Run(context.Background(), lead(json.Number("41"), json.Number("0.75"), json.Number("3")))
	if got := bodies(); len(got) != 1 || got[0] != `age=41&next=42 {"age":41,"score":0.75,"visits":[3,3,3],"label":"age 41"}` {
		t.Fatalf("sent %q", got)
	}
}

// typed shows a value with the Go type of every leaf.
func typed(v any) string {
	switch t := v.(type) {
	case map[string]any:
		keys := slices.Sorted(maps.Keys(t))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ": " + typed(t[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case []any:
		parts := make([]string, len(t))
		for i, x := range t {
			parts[i] = typed(x)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprintf("%T(%v)", v, v)
}

// TestBigIntegerLeadSentExactly: integers beyond 2^53 (which float64
// cannot hold) are sent digit for digit in JSON bodies, whether they come
// as json.Number, int64 or uint64.
func TestBigIntegerLeadSentExactly(t *testing.T) {
	srv, bodies := bodyRecorder(t)
	src := `version: 1
name: big
settings: { base_url: { required: true } }
steps:
  - name: s
    request:
      url: "{{settings.base_url}}/s"
      body: { json: { id: "{{lead.id}}", label: "#{{lead.id}}" } }
`
	r := mustBind(t, mustParse(t, src), map[string]any{"base_url": srv.URL})
	for _, c := range []struct {
		id   any
		want string
	}{
		{json.Number("12345678901234567890"), "12345678901234567890"},
		{uint64(12345678901234567890), "12345678901234567890"},
		{int64(-9007199254740993), "-9007199254740993"}, // -(2^53+1)
		{json.Number("9007199254740993"), "9007199254740993"},
		{json.Number("-123456789012345678901234567890"), "-123456789012345678901234567890"},
	} {
		res := r.Run(context.Background(), map[string]any{"id": c.id})
		want(t, res, engine.Success)
		if got := bodies(); len(got) != 1 || got[0] != fmt.Sprintf(` {"id":%s,"label":"#%s"}`, c.want, c.want) {
			t.Fatalf("lead id %#v sent %q", c.id, got)
		}
	}
}

// TestNormalize: what Run and RunAll do to a lead, shown: structs go
// through their JSON encoding, numbers become float64 except big integers.
func TestNormalize(t *testing.T) {
	type stats struct {
		Score  float32 `json:"score"`
		Visits []int   `json:"visits"`
	}
	type lead struct {
		Age   int    `json:"age"`
		Big   uint64 `json:"big"`
		Email string `json:"email"`
		Stats stats  `json:"stats"`
		Skip  string `json:"-"`
	}
	m, err := engine.Normalize(lead{Age: 41, Big: 12345678901234567890, Email: "ann@example.com", Stats: stats{Score: 0.75, Visits: []int{3, 3, 3}}, Skip: "x"})
	if err != nil {
		t.Fatal(err)
	}
	wantMap := map[string]any{"age": 41.0, "big": json.Number("12345678901234567890"), "email": "ann@example.com",
		"stats": map[string]any{"score": 0.75, "visits": []any{3.0, 3.0, 3.0}}}
	if !reflect.DeepEqual(m, wantMap) {
		t.Fatalf("Normalize(struct)\n got %s\nwant %s", typed(m), typed(wantMap))
	}
	// a struct-made lead runs like the map it normalises to
	srv, bodies := bodyRecorder(t)
	r := mustBind(t, mustParse(t, adultPlan), map[string]any{"base_url": srv.URL})
	want(t, r.Run(context.Background(), m), engine.Success)
	if got := bodies(); len(got) != 1 || got[0] != `age=41&next=42 {"age":41,"score":0.75,"visits":[3,3,3],"label":"age 41"}` {
		t.Fatalf("sent %q", got)
	}

	if m, err := engine.Normalize(nil); err != nil || m == nil || len(m) != 0 {
		t.Fatalf("Normalize(nil) = %v, %v", m, err)
	}
	for _, v := range []any{5, []int{1}, "text"} {
		if _, err := engine.Normalize(v); err == nil {
			t.Fatalf("Normalize(%#v): no error", v)
		}
	}
	// the caller's map is not changed
	in := map[string]any{"n": json.Number("7"), "deep": map[string]any{"k": int64(2)}}
	out, _ := engine.Normalize(in)
	if in["n"] != json.Number("7") || in["deep"].(map[string]any)["k"] != int64(2) || out["n"] != 7.0 || out["deep"].(map[string]any)["k"] != 2.0 {
		t.Fatalf("in %#v out %#v", in, out)
	}
}

// TestNormalizeNestedTypedValues: a map[string]any lead may hold typed Go
// values below its top level ([]int, map[string]int, a struct, as a
// service builds leads from its own types); they are normalised like the
// top level, as Normalize documents ("Structs, typed maps and slices are
// converted through their JSON encoding"), so conditions see []any and
// float64.
func TestNormalizeNestedTypedValues(t *testing.T) {
	type point struct {
		X int `json:"x"`
	}
	m, err := engine.Normalize(map[string]any{"visits": []int{3, 4}, "counts": map[string]int{"a": 1}, "at": point{X: 2}, "ptr": &point{X: 5}})
	if err != nil {
		t.Fatal(err)
	}
	wantMap := map[string]any{"at": map[string]any{"x": 2.0}, "counts": map[string]any{"a": 1.0}, "ptr": map[string]any{"x": 5.0}, "visits": []any{3.0, 4.0}}
	if !reflect.DeepEqual(m, wantMap) {
		t.Fatalf("Normalize of nested typed values\n got %s\nwant %s", typed(m), typed(wantMap))
	}
}

// --- 6. failure classes ------------------------------------------------------

// TestFailureClasses: every kind of fault gives its class on the result
// and its step, and the underlying error where there is one.
func TestFailureClasses(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	mux.HandleFunc("/hangup", func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	mux.HandleFunc("/500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) })
	mux.HandleFunc("/401", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "who are you", http.StatusUnauthorized) })
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(401)
		io.WriteString(w, `{"error": "invalid_client"}`)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"pad": %q}`, strings.Repeat("x", 4096))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"valid": false}`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	gone := httptest.NewServer(mux)
	goneURL := gone.URL
	gone.Close()
	tlsSrv := httptest.NewUnstartedServer(mux)
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake the client refuses
	tlsSrv.StartTLS()                                   // its certificate is trusted by nobody
	defer tlsSrv.Close()

	step := func(extra string) string {
		return "version: 1\nname: c\nsettings: { base_url: { required: true } }\nsteps:\n  - name: s\n" + extra
	}
	for _, c := range []struct {
		name    string
		src     string
		base    string
		ctx     func() context.Context
		outcome engine.Outcome
		class   engine.Class
		err     func(error) bool // the underlying error, when there is one
	}{
		{name: "timeout", src: step("    timeout: 20ms\n    request: { url: \"{{settings.base_url}}/slow\" }\n"),
			outcome: engine.Error, class: engine.ClassTimeout, err: func(err error) bool { return errors.As(err, new(*engine.TimeoutError)) }},
		{name: "connection refused", src: step("    request: { url: \"{{settings.base_url}}/x\" }\n"), base: goneURL,
			outcome: engine.Error, class: engine.ClassConnection, err: func(err error) bool { return err != nil }},
		{name: "connection closed", src: step("    request: { url: \"{{settings.base_url}}/hangup\" }\n"),
			outcome: engine.Error, class: engine.ClassConnection, err: func(err error) bool { return err != nil }},
		{name: "tls", src: step("    request: { url: \"{{settings.base_url}}/x\" }\n"), base: tlsSrv.URL,
			outcome: engine.Error, class: engine.ClassTLS, err: func(err error) bool { return err != nil }},
		{name: "status", src: step("    request: { url: \"{{settings.base_url}}/500\" }\n"),
			outcome: engine.Error, class: engine.ClassStatus},
		{name: "auth 401", src: step("    request: { url: \"{{settings.base_url}}/401\" }\n"),
			outcome: engine.Error, class: engine.ClassAuth},
		{name: "auth token refused", src: strings.Replace(step("    request: { url: \"{{settings.base_url}}/x\" }\n"), "steps:",
			"auth: { type: oauth2, token_url: \"{{settings.base_url}}/token\", client_id: id, client_secret: wrong }\nsteps:", 1),
			outcome: engine.Error, class: engine.ClassAuth, err: func(err error) bool { return errors.As(err, new(*engine.AuthError)) }},
		{name: "rejected", src: step("    request: { url: \"{{settings.base_url}}/x\" }\n    capture: { valid: { json: valid } }\n    outcome: { failure_when: captured.valid == false }\n"),
			outcome: engine.Failure, class: engine.ClassRejected},
		{name: "capture", src: step("    request: { url: \"{{settings.base_url}}/x\" }\n    capture: { id: { json: id, required: true } }\n"),
			outcome: engine.Error, class: engine.ClassCapture, err: func(err error) bool { return err != nil }},
		{name: "too large", src: step("    request: { url: \"{{settings.base_url}}/big\" }\n    response: { max_bytes: 1024 }\n"),
			outcome: engine.Error, class: engine.ClassTooLarge, err: func(err error) bool { return errors.As(err, new(*engine.BodyTooLargeError)) }},
		{name: "template", src: step("    request: { url: \"{{settings.base_url}}/{{lead.missing}}\" }\n"),
			outcome: engine.Error, class: engine.ClassTemplate, err: func(err error) bool { return err != nil }},
		{name: "canceled", src: step("    request: { url: \"{{settings.base_url}}/x\" }\n"),
			ctx: func() context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			},
			outcome: engine.Error, class: engine.ClassCanceled, err: func(err error) bool { return errors.Is(err, context.Canceled) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := cmp.Or(c.base, srv.URL)
			r := mustBind(t, mustParse(t, c.src, engine.WithClock(quickClock{})), map[string]any{"base_url": base})
			ctx := context.Background()
			if c.ctx != nil {
				ctx = c.ctx()
			}
			res := r.Run(ctx, map[string]any{})
			if res.Outcome != c.outcome || res.Class != c.class || res.Step != "s" {
				t.Fatalf("%s %q at step %q, want %s %q: %s", res.Outcome, res.Class, res.Step, c.outcome, c.class, res.Reason)
			}
			if sr := res.Steps[0]; sr.Class != c.class || sr.Outcome != c.outcome || sr.Err != res.Err {
				t.Fatalf("step: %s %q %v, result: %v", sr.Outcome, sr.Class, sr.Err, res.Err)
			}
			if c.err != nil && !c.err(res.Err) {
				t.Fatalf("underlying error %T %v", res.Err, res.Err)
			}
			if b, err := json.Marshal(res); err != nil || !strings.Contains(string(b), `"class":"`+string(c.class)+`"`) {
				t.Fatalf("class not serialised: %s %v", b, err)
			}
		})
	}
	t.Run("input", func(t *testing.T) {
		r := mustBind(t, mustParse(t, step("    request: { url: \"{{settings.base_url}}/x\" }\n")), map[string]any{"base_url": srv.URL})
		bad := errors.New("not JSON")
		for _, res := range r.RunAll(context.Background(), func(yield func(map[string]any, error) bool) { yield(nil, bad) }, engine.RunAllOptions{}) {
			if res.Outcome != engine.Error || res.Class != engine.ClassInput || !errors.Is(res.Err, bad) {
				t.Fatalf("%s %q %v", res.Outcome, res.Class, res.Err)
			}
		}
	})
	// success and skip have no class
	r := mustBind(t, mustParse(t, step("    when: lead.go == true\n    request: { url: \"{{settings.base_url}}/x\" }\n")), map[string]any{"base_url": srv.URL})
	for _, l := range []map[string]any{{"go": true}, {"go": false}} {
		if res := r.Run(context.Background(), l); res.Class != "" || res.Err != nil || res.Steps[0].Class != "" {
			t.Fatalf("%s has class %q, err %v", res.Outcome, res.Class, res.Err)
		}
	}
}

// --- 7. redirects ---------------------------------------------------------

// TestRedirectsStayOnOrigin: a redirect to the same origin is followed,
// with the step's headers and without a Referer; a redirect to another
// host is not: the other host receives nothing, so neither the API key,
// and the step judges the 3xx it got.
func TestRedirectsStayOnOrigin(t *testing.T) {
	var otherHits atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherHits.Add(1)
		okHandler(w, r)
	}))
	defer other.Close()
	var mu sync.Mutex
	var final []http.Header
	mux := http.NewServeMux()
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/final", http.StatusFound) })
	mux.HandleFunc("/final", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		final = append(final, r.Header.Clone())
		mu.Unlock()
		okHandler(w, r)
	})
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	src := `version: 1
name: r
settings: { base_url: { required: true }, api_key: { secret: true, required: true } }
auth: { type: api_key, in: header, name: X-API-Key, value: "{{settings.api_key}}" }
steps:
  - name: s
    request: { url: "{{settings.base_url}}/{{lead.path}}" }
    capture: { ok: { json: ok } }
`
	r := mustBind(t, mustParse(t, src), map[string]any{"base_url": srv.URL, "api_key": "k-123"})

	res := r.Run(context.Background(), map[string]any{"path": "moved"})
	want(t, res, engine.Success)
	mu.Lock()
	if len(final) != 1 || final[0].Get("X-API-Key") != "k-123" || final[0].Get("Referer") != "" {
		t.Fatalf("same-origin redirect: %v", final)
	}
	mu.Unlock()
	if res.Steps[0].Status != 200 || res.Steps[0].Captured["ok"] != true {
		t.Fatalf("step %+v", res.Steps[0])
	}

	res = r.Run(context.Background(), map[string]any{"path": "away"})
	if otherHits.Load() != 0 {
		t.Fatal("the redirect to another host was followed")
	}
	if sr := res.Steps[0]; sr.Status != http.StatusTemporaryRedirect || res.Outcome == engine.Success || res.Class != engine.ClassStatus {
		t.Fatalf("cross-origin redirect: %s %q status %d: %s", res.Outcome, res.Class, sr.Status, res.Reason)
	}
	if strings.Contains(res.Reason, "k-123") {
		t.Fatalf("reason holds the key: %q", res.Reason)
	}
}

// --- 8. extension points ---------------------------------------------------

// countingTransport counts the requests it passes to the runner's own
// transport, by path.
type countingTransport struct {
	next  http.RoundTripper
	mu    sync.Mutex
	paths map[string]int
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	if c.paths == nil {
		c.paths = map[string]int{}
	}
	c.paths[req.URL.Path]++
	c.mu.Unlock()
	return c.next.RoundTrip(req)
}

// TestWithTransportKeepsHTTPSection: the wrapper sees every request, token
// requests included, and wraps the runner's own transport, which the
// file's http: section still tunes (one connection per host, no gzip).
func TestWithTransportKeepsHTTPSection(t *testing.T) {
	var apiCalls atomic.Int32
	var gzipAsked atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token": "tok", "token_type": "bearer", "expires_in": 3600}`)
	})
	mux.HandleFunc("/api", func(w http.ResponseWriter, r *http.Request) {
		apiCalls.Add(1)
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			gzipAsked.Add(1)
		}
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(401)
			return
		}
		okHandler(w, r)
	})
	srv := httptest.NewUnstartedServer(mux)
	open := countConns(srv)
	var conns atomic.Int32
	count := srv.Config.ConnState
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
		count(c, s)
	}
	srv.Start()
	defer srv.Close()
	src := `version: 1
name: t
settings: { base_url: { required: true } }
http: { max_conns_per_host: 1, gzip_responses: false }
auth: { type: oauth2, token_url: "{{settings.base_url}}/token", client_id: id, client_secret: s }
steps:
  - name: s
    request: { url: "{{settings.base_url}}/api" }
    capture: { ok: { json: ok } }
`
	var wrapped []*countingTransport
	var inner []http.RoundTripper
	p := mustParse(t, src, engine.WithTransport(func(rt http.RoundTripper) http.RoundTripper {
		c := &countingTransport{next: rt}
		wrapped, inner = append(wrapped, c), append(inner, rt)
		return c
	}))
	r := mustBind(t, p, map[string]any{"base_url": srv.URL})
	if len(wrapped) != 1 {
		t.Fatalf("wrap called %d times for one Bind", len(wrapped))
	}
	if _, ok := inner[0].(*http.Transport); !ok {
		t.Fatalf("wrap was given a %T, not the runner's transport", inner[0])
	}
	for _, res := range collect(t, r.RunAll(context.Background(), engine.Leads(numbered(12)), engine.RunAllOptions{Concurrency: 6})) {
		want(t, res, engine.Success)
	}
	c := wrapped[0]
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paths["/api"] != 12 || c.paths["/token"] != 1 || apiCalls.Load() != 12 {
		t.Fatalf("the wrapper saw %v, the partner %d API calls", c.paths, apiCalls.Load())
	}
	if gzipAsked.Load() != 0 {
		t.Fatal("http.gzip_responses: false was not applied (gzip asked for)")
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for http.max_conns_per_host: 1", n)
	}
	if n := open.Load(); n != 1 {
		t.Fatalf("%d connections open", n)
	}
}

// TestWithFuncs: a function added with WithFuncs is usable in templates;
// an unknown one is still a load error, positioned.
func TestWithFuncs(t *testing.T) {
	srv, bodies := bodyRecorder(t)
	src := `version: 1
name: f
settings: { base_url: { required: true } }
steps:
  - name: s
    request: { url: "{{settings.base_url}}/s", query: { name: "{{ lead.name | shout }}" } }
`
	funcs := engine.WithFuncs(map[string]any{"shout": func(s string) string { return strings.ToUpper(s) + "!" }})
	r := mustBind(t, mustParse(t, src, funcs), map[string]any{"base_url": srv.URL})
	want(t, r.Run(context.Background(), map[string]any{"name": "ann"}), engine.Success)
	if got := bodies(); len(got) != 1 || got[0] != "name=ANN%21 " {
		t.Fatalf("sent %q", got)
	}
	if _, err := engine.Parse("f.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), "f.yaml:6:") || !strings.Contains(err.Error(), "shout") {
		t.Fatalf("without WithFuncs: %v", err)
	}
	unknown := strings.Replace(src, "shout", "whisper", 1)
	if _, err := engine.Parse("f.yaml", []byte(unknown), funcs); err == nil || !strings.Contains(err.Error(), "f.yaml:6:") || !strings.Contains(err.Error(), "whisper") {
		t.Fatalf("unknown function: %v", err)
	}
}

// acmeAuth signs requests with an Acme header made from the auth section.
type acmeAuth struct{ token string }

func (a acmeAuth) Apply(_ context.Context, req *http.Request, _ []byte) error {
	req.Header.Set("Authorization", "Acme "+a.token)
	return nil
}

// TestWithAuthScheme: a registered x- scheme signs the requests of the
// auth sections naming it, built from the section rendered against the
// runner's settings; an unregistered x- scheme is a load error with its
// position.
func TestWithAuthScheme(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization"))
		mu.Unlock()
		okHandler(w, r)
	}))
	defer srv.Close()
	src := `version: 1
name: a
settings: { base_url: { required: true }, t: { secret: true, required: true } }
steps:
  - name: s
    auth: { type: x-acme, token: "{{settings.t}}" }
    request: { url: "{{settings.base_url}}/s" }
`
	var built atomic.Int32
	scheme := engine.WithAuthScheme("x-acme", func(cfg auth.Config) (auth.Authenticator, error) {
		built.Add(1)
		if cfg.Type != "x-acme" {
			return nil, fmt.Errorf("type %q", cfg.Type)
		}
		return acmeAuth{token: cfg.Token}, nil
	})
	p := mustParse(t, src, scheme)
	r1 := mustBind(t, p, map[string]any{"base_url": srv.URL, "t": "tenant-1"})
	r2 := mustBind(t, p, map[string]any{"base_url": srv.URL, "t": "tenant-2"})
	want(t, r1.Run(context.Background(), nil), engine.Success)
	want(t, r2.Run(context.Background(), nil), engine.Success)
	want(t, r1.Run(context.Background(), nil), engine.Success)
	mu.Lock()
	if strings.Join(got, ",") != "Acme tenant-1,Acme tenant-2,Acme tenant-1" {
		t.Fatalf("partner saw %q", got)
	}
	mu.Unlock()
	if built.Load() != 2 {
		t.Fatalf("the scheme was built %d times for 2 Binds", built.Load())
	}

	foo := strings.Replace(src, "x-acme", "x-foo", 1)
	if _, err := engine.Parse("a.yaml", []byte(foo), scheme); err == nil || !strings.Contains(err.Error(), "a.yaml:6:") || !strings.Contains(err.Error(), `"x-foo"`) {
		t.Fatalf("unregistered scheme: %v", err)
	}
	// a constructor that fails is a Bind error, not a lead error
	failing := engine.WithAuthScheme("x-acme", func(auth.Config) (auth.Authenticator, error) { return nil, errors.New("no token") })
	if _, err := mustParse(t, src, failing).Bind(engine.Config{Values: map[string]any{"base_url": srv.URL, "t": "x"}}); err == nil || !strings.Contains(err.Error(), "no token") {
		t.Fatalf("failing constructor: %v", err)
	}
}

// parkedIn counts the goroutines parked on a channel (in a select or a
// receive) with a frame of fn itself in their stack: not of a closure of
// fn (runBatched's batch timer waits in a select too, and would count as
// a lead) nor a "created by fn" line.
func parkedIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		head, _, _ := strings.Cut(g, "\n")
		// waiting on a channel (a batch member waits for its answer in a
		// select), not on a lock on its way in: a lead blocked on the
		// runner's mutex has not joined its batch yet
		if strings.Contains(g, fn+"(") && (strings.Contains(head, "[select") || strings.Contains(head, "[chan receive")) {
			count++
		}
	}
	return count
}

// TestCloseSendsPendingBatch: two leads wait in a batch of 5 that would
// wait an hour to fill; Close sends it at once, the leads succeed, and
// the batch's timer goroutine is gone.
func TestCloseSendsPendingBatch(t *testing.T) {
	srv := testkit.NewBatchPartner(t)
	ignore := goleak.IgnoreCurrent()
	ctx := watchdog(t)
	r, err := mustParse(t, batchPlan).Bind(engine.Config{Values: map[string]any{"base_url": srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan *engine.Result, 2)
	for k := range 2 {
		go func() { results <- r.Run(ctx, map[string]any{"id": fmt.Sprint("lead-", k)}) }()
	}
	// both leads wait in the batch (white box: the engine's batch wait)
	for parkedIn("engine.(*Runner).runBatched") < 2 && ctx.Err() == nil {
		runtime.Gosched()
	}
	closed := make(chan struct{})
	go func() {
		r.Close(context.Background())
		close(closed)
	}()
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("Close did not send the batch its leads wait in")
	}
	for range 2 {
		res := <-results
		if res.Outcome != engine.Success || res.Lead["ok"] != true || res.Steps[0].Batch == "" {
			t.Fatalf("%s %q %v", res.Outcome, res.Reason, res.Lead)
		}
	}
	if sizes := srv.Sizes(); !slices.Equal(sizes, []int{2}) {
		t.Fatalf("batches %v, want one of 2", sizes)
	}
	goleak.VerifyNone(t, ignore)
}

// TestBatchesCollectAfterRunAll: a RunAll that has ended leaves its runner
// collecting batches as before: a lead run afterwards with Run (a service
// serving single leads and bulk requests with one runner) waits in its
// batch for more leads until the batch's wait is over, instead of being
// sent alone at once.
func TestBatchesCollectAfterRunAll(t *testing.T) {
	srv := testkit.NewBatchPartner(t)
	batches := srv.Sizes
	clock := testkit.NewManualClock(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC))
	r := mustBind(t, mustParse(t, batchPlan, engine.WithClock(clock)), map[string]any{"base_url": srv.URL})
	ctx := watchdog(t)
	for _, res := range collect(t, r.RunAll(ctx, engine.Leads([]map[string]any{{"id": "a"}, {"id": "b"}}), engine.RunAllOptions{})) {
		want(t, res, engine.Success)
	}
	if got := batches(); !slices.Equal(got, []int{2}) {
		t.Fatalf("RunAll sent batches %v, want one of 2", got)
	}

	resc := make(chan *engine.Result, 1)
	go func() { resc <- r.Run(ctx, map[string]any{"id": "c"}) }()
	// the lead has joined its batch (white box: the engine's batch wait)
	for parkedIn("engine.(*Runner).runBatched") < 1 && ctx.Err() == nil {
		runtime.Gosched()
	}
	// nothing may be sent before the wait is over; a batch sent at once
	// (the failure) would reach the partner within this window
	select {
	case res := <-resc:
		t.Fatalf("a lead run after RunAll was sent alone at once (batches %v): %s %q", batches(), res.Outcome, res.Reason)
	case <-time.After(200 * time.Millisecond):
	}
	if got := batches(); !slices.Equal(got, []int{2}) {
		t.Fatalf("batches %v before the wait was over", got)
	}
	clock.Advance(time.Hour)
	res := <-resc
	want(t, res, engine.Success)
	if got := batches(); !slices.Equal(got, []int{2, 1}) {
		t.Fatalf("batches %v, want 2 then 1 after the wait", got)
	}
}

// DecodeLead takes one object, its numbers exact, and refuses anything
// around it but white space and a byte-order mark.
func TestDecodeLead(t *testing.T) {
	for _, c := range []struct{ in, err string }{
		{`{"a": 1}`, ""},
		{"\xef\xbb\xbf {\"a\": 1}\n", ""},
		{`{"a": 1} }`, `more than one JSON value: "}" after the object`},
		{`{"a": 1} ]`, `more than one JSON value: "]" after the object`},
		{`{"a": 1} {"b": 2}`, "more than one JSON value"},
		{`{"a": 1} x`, "more than one JSON value"},
		{`null`, "a lead must be a JSON object, got null"},
		{`"s"`, "got a string"},
		{`12`, "got a number"},
		{``, "invalid JSON: unexpected EOF"},
		{`{"a": }`, "invalid JSON"},
	} {
		m, err := engine.DecodeLead([]byte(c.in))
		if c.err == "" {
			if err != nil || m["a"] != json.Number("1") {
				t.Errorf("%q: %v, %v; want a=1 as json.Number", c.in, m, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: error %v, want %q", c.in, err, c.err)
		}
	}
}
