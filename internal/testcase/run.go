package testcase

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/engine/eventlog"
	"github.com/plumbhq/plumb/engine/observe"
	"github.com/plumbhq/plumb/steps"
)

// Headers the test transport adds to every request so the test server
// knows which step sent it and what the URL's scheme was; they are removed
// before requests are recorded.
const (
	stepHeader   = "X-Plumb-Step"
	schemeHeader = "X-Plumb-Scheme"
)

// unservedStatus answers a request the case recorded no response for.
const unservedStatus = 599

// maxHang bounds how long a recorded `error: timeout` holds a request.
const maxHang = 5 * time.Minute

// Options configure a run of test cases.
type Options struct {
	// Logger receives the engine's attempt, rule and backoff records
	// (plumb test -v); nil discards them.
	Logger *slog.Logger
	// Observer sees every HTTP try with its request and response, secrets
	// masked (plumb test -vv).
	Observer func(ctx context.Context, c *Case, ex *engine.Exchange)
}

// Request is a request the test server received, as the engine sent it.
type Request struct {
	// Key is what the request was served under: the route that answered
	// it, else the step that sent it, else "METHOD /path".
	Key string `json:"key"`
	// Step is the step that sent it ("" outside any step).
	Step   string      `json:"step,omitempty"`
	Method string      `json:"method"`
	URL    string      `json:"url"`
	Header http.Header `json:"header,omitempty"`
	Body   string      `json:"body,omitempty"`
	// Status is the recorded status served (599 when none was recorded).
	Status int `json:"status"`
}

// Failure is one way a case did not meet its expectations.
type Failure struct {
	// Path names what was checked, e.g. captured.check.blacklisted.
	Path string `json:"path"`
	Want string `json:"want,omitempty"`
	Got  string `json:"got,omitempty"`
	// Message is set instead of Want/Got for failures that are not a
	// comparison (a request without a recorded response).
	Message string `json:"message,omitempty"`
	// Diff is a unified-style diff of pretty JSON (want/got) for body and
	// lead mismatches.
	Diff string `json:"diff,omitempty"`
}

// String renders `path: want W, got G` or `path: message`.
func (f Failure) String() string {
	if f.Message != "" {
		if f.Path == "" {
			return f.Message
		}
		return f.Path + ": " + f.Message
	}
	return fmt.Sprintf("%s: want %s, got %s", f.Path, f.Want, f.Got)
}

// CaseResult is what became of one case.
type CaseResult struct {
	Name     string          `json:"name"`
	Pos      steps.Pos       `json:"pos"`
	Passed   bool            `json:"passed"`
	Duration engine.Duration `json:"duration_ms"`
	Failures []Failure       `json:"failures,omitempty"`
	// Result is the engine's result for the lead (nil when the case could
	// not run, e.g. for bad settings).
	Result   *engine.Result `json:"result,omitempty"`
	Requests []Request      `json:"requests"`
	// Webhook is the receiver's answer to the case's delivery, if any.
	Webhook *WebhookAnswer `json:"webhook,omitempty"`
}

// Run runs every case of s, one after the other.
func (s *Suite) Run(ctx context.Context, opts Options) []*CaseResult {
	out := make([]*CaseResult, 0, len(s.Cases))
	for _, c := range s.Cases {
		out = append(out, s.RunCase(ctx, c, opts))
	}
	return out
}

// RunCase runs one case: it starts a server on 127.0.0.1 that serves the
// case's recorded responses, runs the integration for the case's lead with
// every request sent there (whatever its host; https is sent as http),
// and checks the result and the requests against the expectations.
func (s *Suite) RunCase(ctx context.Context, c *Case, opts Options) *CaseResult {
	start := time.Now()
	res := &CaseResult{Name: c.Name, Pos: c.Pos, Requests: []Request{}}
	defer func() {
		res.Duration = engine.Duration(time.Since(start))
		res.Passed = len(res.Failures) == 0
	}()

	sv := &server{c: c, next: map[string]int{}}
	ts := httptest.NewServer(sv)
	defer ts.Close()

	now := c.now
	if now.IsZero() {
		now = time.Now()
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	popts := []engine.Option{
		engine.WithHTTPClient(loopbackClient(ts.Listener.Addr().String())),
		engine.WithClock(&fakeClock{now: now}),
		engine.WithLogger(logger.With("test", c.Name)),
		engine.WithEvents(eventlog.New(logger.With("test", c.Name))),
	}
	if opts.Observer != nil {
		popts = append(popts, engine.WithEvents(observe.New(func(ctx context.Context, ex *engine.Exchange) { opts.Observer(ctx, c, ex) })))
	}
	plan, err := engine.Load(s.In.File, popts...)
	if err != nil {
		res.Failures = append(res.Failures, Failure{Path: "integration", Message: err.Error()})
		return res
	}
	given := map[string]any{}
	for _, e := range c.Settings {
		given[e.Key] = e.Value.V
	}
	if _, declared := s.In.Settings.Get("base_url"); declared && given["base_url"] == nil {
		given["base_url"] = ts.URL
	}
	tokens := &auth.MemoryStore{}
	runner, err := plan.Bind(engine.Config{Values: given, Tokens: tokens})
	if err != nil {
		res.Failures = append(res.Failures, Failure{Path: "settings", Message: strings.ReplaceAll(err.Error(), "\n", "; ")})
		return res
	}
	defer runner.Close(context.Background())
	loggedIn(runner, tokens, now)
	lead := c.lead
	if c.Webhook != nil {
		var fails []Failure
		lead, res.Webhook, fails = s.deliver(c, runner, func() time.Time { return now })
		if res.Failures = append(res.Failures, fails...); lead == nil {
			if len(fails) == 0 {
				res.Failures = append(res.Failures, refusedExpectations(c, res.Requests)...)
			}
			return res
		}
	}
	res.Result = runner.Run(ctx, lead)
	sv.mu.Lock()
	res.Requests = slices.Clone(sv.requests)
	unserved := slices.Clone(sv.unserved)
	sv.mu.Unlock()
	for _, u := range unserved {
		res.Failures = append(res.Failures, Failure{Path: "responses", Message: u})
	}
	res.Failures = append(res.Failures, compare(c, res.Result, res.Requests)...)
	return res
}

// loopbackClient sends every request to addr, whatever its URL's host.
func loopbackClient(addr string) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	base := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "tcp", addr)
		},
		// one connection per request: no transparent retries on reused
		// connections, so every try the engine makes is one served answer
		DisableKeepAlives: true,
	}
	return &http.Client{
		Transport: &loopbackTransport{base: base},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// loopbackTransport marks each request with its step and original scheme
// and sends https as plain http.
type loopbackTransport struct{ base http.RoundTripper }

func (t *loopbackTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set(stepHeader, engine.StepName(req.Context()))
	r.Header.Set(schemeHeader, req.URL.Scheme)
	if r.URL.Scheme == "https" {
		r.URL.Scheme = "http"
	}
	return t.base.RoundTrip(r)
}

// server serves a case's recorded responses and records the requests.
type server struct {
	c        *Case
	mu       sync.Mutex
	next     map[string]int
	requests []Request
	unserved []string
}

func (sv *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	step := r.Header.Get(stepHeader)
	scheme := r.Header.Get(schemeHeader)
	if scheme == "" {
		scheme = "http"
	}
	h := r.Header.Clone()
	h.Del(stepHeader)
	h.Del(schemeHeader)
	rec := Request{Step: step, Method: r.Method, URL: scheme + "://" + r.Host + r.URL.RequestURI(), Header: h, Body: string(body)}

	sv.mu.Lock()
	key, resp := sv.pick(step, r.Method, r.URL.Path)
	switch {
	case key != "":
		rec.Key = key
	case step != "":
		rec.Key = step
	default:
		rec.Key = r.Method + " " + r.URL.Path
	}
	if resp == nil {
		rec.Status = unservedStatus
		msg := fmt.Sprintf("step %s sent a request but the test recorded no response for it", step)
		if step == "" {
			msg = fmt.Sprintf("a request %s %s outside any step had no recorded response (record one under a route such as %q)", r.Method, rec.URL, r.Method+" "+r.URL.Path)
		}
		if !slices.Contains(sv.unserved, msg) {
			sv.unserved = append(sv.unserved, msg)
		}
	} else {
		rec.Status = resp.Status
	}
	sv.requests = append(sv.requests, rec)
	sv.mu.Unlock()

	if resp == nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(unservedStatus)
		fmt.Fprintf(w, "plumb test: no recorded response for %s %s\n", r.Method, r.URL.Path)
		return
	}
	serve(w, r, resp)
}

// pick returns the next recorded response for a request and the key it is
// recorded under: a matching route first, then the step.
func (sv *server) pick(step, method, path string) (string, *Response) {
	for _, e := range sv.c.Responses {
		m, p, ok := route(e.Key)
		if ok && p == path && (m == "" || m == method) {
			return e.Key, sv.nextOf(e.Key, e.Value)
		}
	}
	if step == "" {
		return "", nil
	}
	seq, ok := sv.c.Responses.Get(step)
	if !ok {
		return "", nil
	}
	return step, sv.nextOf(step, seq)
}

func (sv *server) nextOf(key string, seq Sequence) *Response {
	if len(seq) == 0 {
		return nil
	}
	i := min(sv.next[key], len(seq)-1)
	sv.next[key]++
	return seq[i]
}

func serve(w http.ResponseWriter, r *http.Request, resp *Response) {
	if resp.Delay > 0 {
		t := time.NewTimer(resp.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	switch resp.Error {
	case "connection":
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case "timeout":
		select {
		case <-r.Context().Done():
		case <-time.After(maxHang):
		}
		return
	}
	for _, e := range resp.Headers {
		w.Header().Add(e.Key, e.Value)
	}
	if resp.contentType != "" && w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", resp.contentType)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(resp.body)))
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.body)
}

// fakeClock starts at a fixed time and moves only when the engine sleeps,
// which it does at once: backoff and Retry-After waits take no time.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.now = c.now.Add(max(d, 0))
	c.mu.Unlock()
	return nil
}

// requestsByKey groups requests by step (or route), keeping their order.
func requestsByKey(reqs []Request) map[string][]Request {
	out := map[string][]Request{}
	for _, r := range reqs {
		out[r.Key] = append(out[r.Key], r)
	}
	return out
}

// keysOf returns the sorted keys of m.
func keysOf[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// The token every authorization_code section of a case holds, as if
// plumb auth login had been run: a case records the partner's answers to
// it, and to its token URL for a renewal.
const (
	testAccessToken  = "test-access-token"
	testRefreshToken = "test-refresh-token"
)

// loggedIn stores a token for each authorization_code section of runner,
// valid for an hour from now.
func loggedIn(runner *engine.Runner, tokens auth.TokenStore, now time.Time) {
	for _, c := range runner.OAuth2Configs() {
		if c.Type == auth.TypeOAuth2 && c.Grant == auth.GrantAuthorizationCode {
			_ = tokens.Save(auth.StoreKey(c), &oauth2.Token{AccessToken: testAccessToken, RefreshToken: testRefreshToken,
				TokenType: "Bearer", Expiry: now.Add(time.Hour)})
		}
	}
}
