package engine

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/plumbhq/plumb/internal/testkit"
)

// observerEvents hands exchanges to a function (engine/observe, which
// this package's own tests cannot import).
type observerEvents struct {
	NopEvents
	fn func(context.Context, *Exchange)
}

func (o observerEvents) Exchange(ctx context.Context, ex *Exchange) { o.fn(ctx, ex) }

func withObserver(fn func(context.Context, *Exchange)) Option {
	return WithEvents(observerEvents{fn: fn})
}

// recorder writes every event it gets as one line, "Kind {fields}", and
// checks that each End gets the context its Start returned.
type recorder struct {
	mu    sync.Mutex
	lines []string
	w     io.Writer
	// tag marks the contexts this recorder hands back.
	tag string
	bad []string
}

type tagKey struct{ tag, kind string }

func (r *recorder) add(kind string, e any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	line := fmt.Sprintf("%s %+v", kind, e)
	r.lines = append(r.lines, line)
	if r.w != nil {
		fmt.Fprintln(r.w, line)
	}
}

func (r *recorder) start(ctx context.Context, kind string, e any) context.Context {
	r.add(kind+"Start", e)
	return context.WithValue(ctx, tagKey{r.tag, kind}, true)
}

func (r *recorder) end(ctx context.Context, kind string, e any) {
	if ctx.Value(tagKey{r.tag, kind}) == nil {
		r.mu.Lock()
		r.bad = append(r.bad, kind+"End without its Start's context")
		r.mu.Unlock()
	}
	r.add(kind+"End", e)
}

func (r *recorder) LeadStart(ctx context.Context, e LeadStart) context.Context {
	return r.start(ctx, "Lead", e)
}
func (r *recorder) LeadEnd(ctx context.Context, e LeadEnd) { r.end(ctx, "Lead", e) }
func (r *recorder) StepStart(ctx context.Context, e StepStart) context.Context {
	return r.start(ctx, "Step", e)
}
func (r *recorder) StepEnd(ctx context.Context, e StepEnd) { r.end(ctx, "Step", e) }
func (r *recorder) TryStart(ctx context.Context, e TryStart) context.Context {
	return r.start(ctx, "Try", e)
}
func (r *recorder) TryEnd(ctx context.Context, e TryEnd)             { r.end(ctx, "Try", e) }
func (r *recorder) Retry(_ context.Context, e Retry)                 { r.add("Retry", e) }
func (r *recorder) Backoff(_ context.Context, e Backoff)             { r.add("Backoff", e) }
func (r *recorder) TokenFetch(_ context.Context, e TokenFetch)       { r.add("TokenFetch", e) }
func (r *recorder) LimiterWait(_ context.Context, e LimiterWait)     { r.add("LimiterWait", e) }
func (r *recorder) BreakerChange(_ context.Context, e BreakerChange) { r.add("BreakerChange", e) }
func (r *recorder) InjectHeaders(ctx context.Context, h http.Header) {
	if ctx.Value(tagKey{r.tag, "Try"}) == nil {
		r.mu.Lock()
		r.bad = append(r.bad, "InjectHeaders without the try's context")
		r.mu.Unlock()
	}
	h.Add("X-Injected", r.tag)
}

// count is how many lines are line.
func (r *recorder) count(line string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.lines {
		if l == line {
			n++
		}
	}
	return n
}

// breaker is the state the last BreakerChange entered.
func (r *recorder) breaker() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.lines) - 1; i >= 0; i-- {
		if _, after, ok := strings.Cut(r.lines[i], "BreakerChange "); ok {
			_, to, _ := strings.Cut(after, "To:")
			return strings.TrimSuffix(to, "}")
		}
	}
	return ""
}

// kinds are the recorded lines' kinds, in order.
func (r *recorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.lines))
	for i, l := range r.lines {
		out[i], _, _ = strings.Cut(l, " ")
	}
	return out
}

// TestEventsOfALead: a lead whose step is retried once emits, in order,
// the lead, step and try starts and ends, the retry and the backoff, with
// the try's status, class and rule; every End gets its Start's context,
// and the header injector sees the try's context.
func TestEventsOfALead(t *testing.T) {
	var injected []string
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		injected = append(injected, strings.Join(r.Header.Values("X-Injected"), ","))
		n++
		first := n == 1
		mu.Unlock()
		if first {
			w.WriteHeader(503)
			return
		}
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	rec := &recorder{tag: "a"}
	src := "version: 1\nname: ev\nsettings: { base_url: {} }\nsteps:\n  - name: s\n    request: { url: \"{{settings.base_url}}/x\" }\n    retry: [ { on: [503], action: retry, backoff: { initial: 1ms, max: 1ms } } ]\n"
	p := plan(t, src, WithEvents(rec))
	res := run(t, p, nil, map[string]any{"base_url": srv.URL})
	wantOutcome(t, res, Success)
	want := "LeadStart StepStart TryStart TryEnd Retry Backoff TryStart TryEnd StepEnd LeadEnd"
	if got := strings.Join(rec.kinds(), " "); got != want {
		t.Fatalf("events\n%s\nwant\n%s", strings.Join(rec.lines, "\n"), want)
	}
	if len(rec.bad) > 0 {
		t.Fatal(rec.bad)
	}
	try1, try2 := rec.lines[3], rec.lines[7]
	if !strings.Contains(try1, "Status:503") || !strings.Contains(try1, "Class:status") || !strings.Contains(try1, "Rule:retry (") ||
		!strings.Contains(try1, "Attempt:1") || !strings.Contains(try2, "Status:200") || !strings.Contains(try2, "Attempt:2") ||
		strings.Contains(try2, "Rule:retry") || strings.Contains(try2, "Class:status") {
		t.Fatalf("tries:\n%s\n%s", try1, try2)
	}
	if !strings.Contains(rec.lines[4], "Action:retry") || !strings.Contains(rec.lines[8], "Outcome:success") ||
		!strings.Contains(rec.lines[8], "Attempts:2") || !strings.Contains(rec.lines[9], "Outcome:success") {
		t.Fatalf("retry, step or lead end:\n%s", strings.Join(rec.lines, "\n"))
	}
	if len(injected) != 2 || injected[0] != "a" || injected[1] != "a" {
		t.Fatalf("injected headers %q", injected)
	}
}

// TestEventsGoToEveryListener: WithEvents given twice, both get every
// event in order, contexts pass from one to the next, and only the
// listeners that observe exchanges or inject headers are asked to.
func TestEventsGoToEveryListener(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Values("X-Injected")
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	a, b := &recorder{tag: "a"}, &recorder{tag: "b"}
	var seen int
	src := "version: 1\nname: ev\nsettings: { base_url: {} }\nsteps:\n  - name: s\n    request: { url: \"{{settings.base_url}}/x\" }\n"
	p := plan(t, src, WithEvents(a), WithEvents(b), withObserver(func(context.Context, *Exchange) { seen++ }), WithEvents(nil))
	wantOutcome(t, run(t, p, nil, map[string]any{"base_url": srv.URL}), Success)
	if strings.Join(a.lines, "\n") != strings.Join(b.lines, "\n") || len(a.lines) != 6 {
		t.Fatalf("a:\n%s\nb:\n%s", strings.Join(a.lines, "\n"), strings.Join(b.lines, "\n"))
	}
	if len(a.bad)+len(b.bad) > 0 {
		t.Fatal(a.bad, b.bad)
	}
	if seen != 1 || strings.Join(got, ",") != "a,b" {
		t.Fatalf("exchanges %d, injected %q", seen, got)
	}
}

// TestNoExchangeWithoutObserver: listeners that do not observe exchanges
// get none built (no request trace), and a plan without listeners does
// not clone the request header to inject into it.
func TestNoExchangeWithoutObserver(t *testing.T) {
	p := plan(t, "version: 1\nname: ev\nsteps:\n  - name: s\n    request: { url: \"http://x.test/\" }\n", WithEvents(NopEvents{}))
	if p.ev == nil || p.obs != nil || p.inj != nil {
		t.Fatalf("sinks %+v", p.sinks)
	}
	p = plan(t, "version: 1\nname: ev\nsteps:\n  - name: s\n    request: { url: \"http://x.test/\" }\n")
	if p.ev != nil || p.obs != nil || p.inj != nil {
		t.Fatalf("sinks %+v", p.sinks)
	}
}

// TestLimiterEvents: with rate: 10/s the second and third leads wait for
// their slot (LimiterWait, in the synctest bubble's exact time); a try
// that cannot get a slot before its deadline sends nothing and has no try
// events, only the step's and lead's.
func TestLimiterEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		partner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{}`) })
		rec := &recorder{tag: "l"}
		src := "version: 1\nname: ev\nsettings: { base_url: {} }\nlimits: { rate: 10/s }\nsteps:\n  - name: s\n    request: { url: \"{{settings.base_url}}/x\" }\n"
		p := plan(t, src, WithEvents(rec), WithHTTPClient(&http.Client{Transport: testkit.Transport{Handler: partner}}))
		r, err := p.Bind(Config{Values: map[string]any{"base_url": "http://partner.test"}})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close(context.Background())
		for range 3 {
			wantOutcome(t, r.Run(context.Background(), nil), Success)
		}
		if got := rec.count("LimiterWait {Integration:ev Step:s Wait:100ms}"); got != 2 {
			t.Fatalf("%d waits of 100ms, want 2:\n%s", got, strings.Join(rec.lines, "\n"))
		}
		rec.lines = nil
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		res := r.Run(ctx, nil)
		if res.Class != ClassLimit {
			t.Fatalf("%s %s %q", res.Outcome, res.Class, res.Reason)
		}
		if got := strings.Join(rec.kinds(), " "); got != "LeadStart StepStart StepEnd LeadEnd" {
			t.Fatalf("events %s", got)
		}
	})
}

// TestTokenFetchEvent: an OAuth2 token fetch is an event, its URL masked,
// with the endpoint's status.
func TestTokenFetchEvent(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"tok-1","token_type":"bearer","expires_in":3600}`)
	})
	mux.HandleFunc("/api", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{}`) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	rec := &recorder{tag: "t"}
	src := "version: 1\nname: ev\nsettings: { base_url: {}, secret: { secret: true } }\nauth: { type: oauth2, token_url: \"{{settings.base_url}}/token?s={{settings.secret}}\", client_id: cid, client_secret: \"{{settings.secret}}\" }\nsteps:\n  - name: s\n    request: { url: \"{{settings.base_url}}/api\" }\n"
	p := plan(t, src, WithEvents(rec))
	wantOutcome(t, run(t, p, nil, map[string]any{"base_url": srv.URL, "secret": "cs-very-secret"}), Success)
	var fetch string
	for _, l := range rec.lines {
		if strings.HasPrefix(l, "TokenFetch ") {
			fetch = l
		}
	}
	if !strings.Contains(fetch, "URL:"+srv.URL+"/token?s=****") || !strings.Contains(fetch, "Status:200") {
		t.Fatalf("token fetch event %q in\n%s", fetch, strings.Join(rec.lines, "\n"))
	}
	if strings.Contains(strings.Join(rec.lines, "\n"), "cs-very-secret") {
		t.Fatal("a secret shows in the events")
	}
}

// TestEventsCarryNoSecret: a transport error that names the request's URL
// (with a secret in its query) reaches the events masked, in the try's
// error and in the retry's reason.
func TestEventsCarryNoSecret(t *testing.T) {
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return nil, fmt.Errorf("refused by %s", r.URL)
	})}
	rec := &recorder{tag: "s"}
	src := "version: 1\nname: ev\nsettings: { key: { secret: true } }\nsteps:\n  - name: s\n    request: { url: \"http://partner.test/x?k={{settings.key}}\" }\n    retry: [ { on: [connection], action: retry, max_attempts: 2, backoff: { initial: 1ms, max: 1ms } } ]\n"
	p := plan(t, src, WithEvents(rec), WithHTTPClient(client))
	res := run(t, p, nil, map[string]any{"key": "s3cret-k3y"})
	wantOutcome(t, res, Error)
	all := strings.Join(rec.lines, "\n")
	if !strings.Contains(all, "Err:refused by") || !strings.Contains(all, "Reason:GET") || strings.Contains(all, "s3cret-k3y") {
		t.Fatalf("events:\n%s", all)
	}
}

// TestEventsAllocateNothing: a lead of the benchmark flow allocates as
// often with two listeners that do nothing as with none: events are values
// passed on the stack, and nothing is built for them that a listener did
// not ask for (exchanges, injected headers).
func TestEventsAllocateNothing(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation count: not in -short, and the race detector changes it")
	}
	perLead := func(opts ...Option) float64 {
		p, err := Parse("bench.yaml", []byte(benchFlow), append(opts, WithHTTPClient(&http.Client{Transport: memoryPartner{}}))...)
		if err != nil {
			t.Fatal(err)
		}
		r, err := p.Bind(Config{Values: map[string]any{"base_url": "http://partner.test", "api_key": "k"}})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close(context.Background())
		ctx := context.Background()
		return testing.AllocsPerRun(100, func() {
			if res := r.Run(ctx, benchLead); res.Outcome != Success {
				t.Fatalf("%s %q", res.Outcome, res.Reason)
			}
		})
	}
	none, two := perLead(), perLead(WithEvents(NopEvents{}), WithEvents(NopEvents{}))
	if two != none {
		t.Fatalf("a lead allocates %.0f times with two listeners, %.0f with none", two, none)
	}
}

// filteredObserver wants the exchanges of runs whose context carries
// wantKey; it counts what it is asked and given.
type filteredObserver struct {
	observerEvents
	asked *int
}

type wantKey struct{}

func (f filteredObserver) WantsExchanges(ctx context.Context) bool {
	*f.asked++
	return ctx.Value(wantKey{}) != nil
}

// TestExchangeFilter: an observer that filters gets the exchanges of the
// runs it wants and is not handed (nor costs a trace for) the others;
// another observer without a filter makes every try observed again.
func TestExchangeFilter(t *testing.T) {
	srv := httptest.NewServer(ok(`{"ok":true}`))
	defer srv.Close()
	src := "version: 1\nname: f\nsettings: { base_url: {} }\nsteps:\n  - name: s\n    request: { url: \"{{settings.base_url}}/x\" }\n"
	var asked int
	var got []string
	obs := filteredObserver{observerEvents{fn: func(ctx context.Context, ex *Exchange) {
		got = append(got, fmt.Sprintf("%s %v", ex.Step, ctx.Value(wantKey{}) != nil))
	}}, &asked}
	p := plan(t, src, WithEvents(obs))
	s, err := p.Settings(map[string]any{"base_url": srv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Run(context.Background(), map[string]any{}, s)
	if asked != 1 || len(got) != 0 {
		t.Fatalf("unwanted run: asked %d, exchanges %q; want asked once, none", asked, got)
	}
	p.Run(context.WithValue(context.Background(), wantKey{}, true), map[string]any{}, s)
	if len(got) != 1 || got[0] != "s true" {
		t.Fatalf("wanted run: exchanges %q, want [s true]", got)
	}
	got = nil
	var all int
	p2 := plan(t, src, WithEvents(obs), withObserver(func(context.Context, *Exchange) { all++ }))
	s2, err := p2.Settings(map[string]any{"base_url": srv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p2.Run(context.Background(), map[string]any{}, s2)
	if all != 1 || len(got) != 1 || got[0] != "s false" {
		t.Fatalf("with an observer of every try: it got %d, the filtered one %q; want 1 and [s false]", all, got)
	}
}
