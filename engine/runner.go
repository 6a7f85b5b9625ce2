package engine

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/steps"
	"github.com/plumbhq/plumb/store"
)

// DefaultCacheEntries bounds the in-memory store a Runner makes when
// Config.Store is nil: the least recently used answers go first.
const DefaultCacheEntries = 10_000

// Config is what Bind needs to make a Runner: the integration's settings
// and the resources the runner may share with others.
type Config struct {
	// Values are the settings given explicitly, by name. JSON numbers,
	// Go ints and floats are accepted for number settings.
	Values map[string]any
	// ValuePos says where each of Values was written (SettingsFile.Pos of
	// ReadSettings), so a wrong value is reported there; a value without
	// a position is reported at its declaration. Optional.
	ValuePos map[string]steps.Pos
	// LookupEnv reads the env variables settings name with `env:`
	// (os.LookupEnv, or nil to read none).
	LookupEnv func(string) (string, bool)
	// Store keeps last-known-good answers (cache fallback links and
	// response caches). nil makes an in-memory store of CacheEntries
	// entries, owned and released by the Runner; a Store given here is
	// not closed by Close.
	Store store.Store
	// CacheEntries bounds the default in-memory store (default
	// DefaultCacheEntries). Ignored when Store is set.
	CacheEntries int
	// Tokens keeps OAuth2 tokens; the authorization_code grant needs one
	// (its tokens come from a login), client_credentials may use one so a
	// token outlives the runner.
	Tokens auth.TokenStore
	// RateLimiter, when set, makes the rate budgets of limits: sections
	// (not their in-flight caps) and of the source's rate: (its page
	// requests): name is the integration's name, "integration/step" for a
	// step's limits, or "integration/source/pages" for the source's pages
	// (source being the source's name). plumb serve in a cluster
	// passes budgets shared by every instance. Default: a token bucket in
	// memory per runner.
	RateLimiter func(name string, perSecond float64, burst int) RateLimiter
	// MaxResponseMemory bounds the response bytes the runner holds at
	// once, across all its leads (default DefaultResponseMemory): the
	// answers being read and judged, and what running leads captured from
	// them (captures of 4 KiB or more, held until the lead's result is
	// made; a json capture reserved, before it is decoded, at 24 bytes per
	// byte of the JSON object or array it selects). An answer or capture that does
	// not fit is an error of class too_large; max_bytes still bounds each
	// answer.
	MaxResponseMemory int64
	// LoginHint is what a "not logged in" error tells the user to do (for
	// example the command that logs in). Default: log in to the
	// integration to get a token.
	LoginHint string
}

// Runner runs a Plan with its settings bound. It owns everything a run
// needs: the resolved settings and their secrets, authenticators and their
// token caches, the batches being collected, the answer store and the HTTP
// transport. It is safe for concurrent use; make one per plan and settings
// and share it, and Close it when done.
type Runner struct {
	plan    *Plan
	values  map[string]any
	secrets []string
	// mask masks secrets and live holds the tokens the runner learns as
	// it runs (mask reads them): one masker for every secret it knows.
	mask     *masker
	live     *liveSecrets
	auths    []auth.Authenticator
	authCfgs []auth.Config
	// run is shared by every lead of the runner (batches).
	run *runState
	mem *memBudget
	// limits and breakers are shared by every lead of the runner.
	intLimit   *limiter
	stepLimits map[*step]*limiter
	breakers   map[*step]*gobreaker.TwoStepCircuitBreaker[struct{}]

	// pageRate is the source's rate: budget (FetchPage).
	pageRate *limiter

	client      *http.Client
	tokenClient *http.Client
	transport   *http.Transport // owned: closed by Close
	store       store.Store
	ownStore    bool

	mu     sync.Mutex
	closed bool
	active int
	idle   chan struct{}
}

// ErrClosed is the error of a lead run by a closed Runner.
var ErrClosed = errors.New("runner is closed")

// Bind resolves the plan's settings from cfg and returns a Runner for
// them. Every missing required setting, unknown name, value of the wrong
// type and unusable auth section is reported at once, as a
// steps.ErrorList positioned in the integration file.
func (p *Plan) Bind(cfg Config) (*Runner, error) {
	if p == nil || p.in == nil {
		return nil, ErrNotBound
	}
	r := &Runner{plan: p, run: &runState{}, mem: &memBudget{max: cfg.MaxResponseMemory}, live: newLiveSecrets(p.clock.Now)}
	if r.mem.max <= 0 {
		r.mem.max = DefaultResponseMemory
	}
	switch {
	case p.client != nil:
		r.client, r.tokenClient = p.client, p.client
	default:
		r.transport = newTransport(p.in.HTTP)
		var rt http.RoundTripper = r.transport
		if p.transport != nil {
			rt = p.transport(rt)
		}
		r.client = &http.Client{Transport: rt, CheckRedirect: checkRedirect}
		r.tokenClient = &http.Client{Transport: &tokenTransport{next: rt, r: r}, CheckRedirect: sameOrigin, Timeout: 30 * time.Second}
	}
	r.store = cfg.Store
	if r.store == nil {
		n := cfg.CacheEntries
		if n <= 0 {
			n = DefaultCacheEntries
		}
		r.store, r.ownStore = store.NewLRU(n), true
	}
	if err := r.resolve(cfg); err != nil {
		r.release()
		return nil, err
	}
	r.intLimit = p.limits.limiter(p.Name(), cfg.RateLimiter)
	r.stepLimits = map[*step]*limiter{}
	r.pageRate = p.pageBudget(cfg.RateLimiter)
	r.breakers = map[*step]*gobreaker.TwoStepCircuitBreaker[struct{}]{}
	for _, st := range append(slices.Clip(p.steps), p.source) {
		if st == nil {
			continue
		}
		if st.limits != nil {
			r.stepLimits[st] = st.limits.limiter(p.Name()+"/"+st.name, cfg.RateLimiter)
		}
		if st.breaker != nil {
			r.breakers[st] = r.breaker(st)
		}
	}
	return r, nil
}

// errTooManyRedirects ends a try whose partner kept redirecting: its answer
// (a 3xx), not a connection that failed, so it is class status and not
// retried as one.
var errTooManyRedirects = errors.New("stopped after 10 redirects")

// sameOrigin follows a redirect only to the scheme, host and port of the
// request that was redirected: credentials and bodies never go elsewhere.
// A redirect to another origin is returned as the answer (a 3xx the
// step's rules judge). Token endpoints are called this way.
func sameOrigin(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errTooManyRedirects
	}
	req.Header.Del("Referer")
	if !sameHost(req.URL, via[0].URL) {
		return http.ErrUseLastResponse
	}
	return nil
}

func sameHost(a, b *url.URL) bool {
	return a.Scheme == b.Scheme && strings.EqualFold(a.Host, b.Host)
}

// redirectKey carries a step's follow_redirects policy in its requests'
// context.
type redirectKey struct{}

// checkRedirect applies the step's follow_redirects policy: same_origin
// (the default), none, or any — which follows everywhere but, once the
// host changes, drops the body and every header but a few safe ones.
func checkRedirect(req *http.Request, via []*http.Request) error {
	policy, _ := req.Context().Value(redirectKey{}).(steps.RedirectPolicy)
	switch policy {
	case steps.RedirectNone:
		return http.ErrUseLastResponse
	case steps.RedirectAny:
		if len(via) >= 10 {
			return errTooManyRedirects
		}
		req.Header.Del("Referer")
		if !sameHost(req.URL, via[0].URL) {
			// only these survive: every other header may carry a credential
			kept := http.Header{}
			for _, k := range [...]string{"Accept", "Accept-Encoding", "Accept-Language", "User-Agent", "Content-Type"} {
				if v := req.Header.Values(k); len(v) > 0 {
					kept[k] = v
				}
			}
			req.Header = kept
			req.Body, req.GetBody, req.ContentLength = http.NoBody, nil, 0
		}
		return nil
	}
	return sameOrigin(req, via)
}

// Plan is the plan the runner runs.
func (r *Runner) Plan() *Plan { return r.plan }

// Value returns a setting's resolved value (given, from the environment or
// its default): the embedder's own settings, secrets included, so keep it
// out of logs; results never carry it unmasked.
func (r *Runner) Value(name string) (any, bool) {
	v, ok := r.values[name]
	return v, ok
}

// Redact masks every secret the runner knows in free text — secret
// settings, auth credentials, and the OAuth2 tokens it has fetched or
// loaded so far — in each encoding a request or an answer may carry it
// (URL, JSON, XML escaping, base64, hex), in any letter case: long secrets
// and long enough pieces of them wherever they appear, short ones where
// they stand as a token (so a PIN of 1234 does not mangle
// 127.0.0.1:12345). SECURITY.md ("Masking") has the rule. Results, logs
// and observed exchanges are masked already, by component; use Redact for
// text of your own.
func (r *Runner) Redact(text string) string {
	if r == nil || r.mask == nil {
		return text
	}
	return r.mask.text(text)
}

// enter counts a run in; it is false once the runner is closed.
func (r *Runner) enter() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.active++
	return true
}

func (r *Runner) exit() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.active--
	if r.closed && r.active == 0 && r.idle != nil {
		close(r.idle)
		r.idle = nil
	}
}

// Close stops the runner: runs started after Close end at once with an
// error outcome; leads already running finish (partial batches are sent
// at once instead of waiting out their wait), then its idle connections
// and the store it made are released. When ctx ends first, Close returns
// its error without waiting further: the running leads still end on
// their own deadlines, and the runner's resources are released when the
// last one does. Close is safe to call more than once.
func (r *Runner) Close(ctx context.Context) error {
	if r.plan == nil {
		return nil // a zero Runner holds nothing
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	var idle chan struct{}
	if r.active > 0 {
		idle = make(chan struct{})
		r.idle = idle
	}
	r.mu.Unlock()
	r.run.abandonExpected()
	r.flush()
	done := make(chan struct{})
	go func() {
		if idle != nil {
			<-idle
		}
		r.run.wait()
		r.release()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("engine: closing %s: leads still running: %w", r.plan.ref(), context.Cause(ctx))
	}
}

func (r *Runner) release() {
	if r.transport != nil {
		r.transport.CloseIdleConnections()
	}
	if c, ok := r.store.(interface{ Close() error }); ok && r.ownStore {
		c.Close()
	}
}

// notBoundResult is the result of a lead run by a zero Runner.
func notBoundResult(lead map[string]any) *Result {
	return &Result{Outcome: Error, Reason: ErrNotBound.Error(), Class: ClassInternal, Err: ErrNotBound,
		Steps: []StepResult{}, Lead: normalizeMap(lead)}
}

// closedResult is the result of a lead run after Close.
func closedResult(lead map[string]any) *Result {
	return &Result{Outcome: Error, Reason: ErrClosed.Error(), Class: ClassCanceled, Err: ErrClosed,
		Steps: []StepResult{}, Lead: normalizeMap(lead)}
}

// Run runs the plan's steps for one lead. It never fails and never hangs:
// whatever happens (bad data, timeouts, 5xx, unreadable answers, a
// cancelled ctx, a closed runner) the lead leaves with a Result whose
// outcome says so. lead is not modified; Result.Lead is a copy with the
// appended fields. Numbers in lead may be float64, json.Number or any Go
// integer or float type: see Normalize.
//
// Steps run in order; the steps of a parallel group run concurrently. A
// skipped or successful step lets the flow go on; a failure, or an error of
// a step without on_error: continue, stops it and becomes the flow's
// outcome.
func (r *Runner) Run(ctx context.Context, lead map[string]any) *Result {
	if r.plan == nil {
		return notBoundResult(lead)
	}
	if !r.enter() {
		r.run.unexpect()
		return closedResult(lead)
	}
	defer r.exit()
	return r.runLead(ctx, lead)
}

// RunStep runs only the named step for lead — the test console's "send
// this one request". prior supplies captures of earlier steps the step
// reads, by step name. The error is only for an unknown step name or a
// closed runner; everything that happens to the request is in the Result.
func (r *Runner) RunStep(ctx context.Context, name string, lead map[string]any, prior map[string]map[string]any) (*Result, error) {
	if r.plan == nil {
		return nil, ErrNotBound
	}
	if !r.enter() {
		return nil, ErrClosed
	}
	defer r.exit()
	return r.runStepOnly(ctx, name, lead, prior)
}

// DryRun renders every step's request for lead without sending anything.
// Captures of earlier steps are unknown in a dry run, so a step that reads
// them reports an error instead of a request.
func (r *Runner) DryRun(lead map[string]any) []Rendered {
	if r.plan == nil {
		return nil
	}
	return r.dryRun(lead)
}

// flush sends partial batches as soon as every running lead waits in one.
func (r *Runner) flush() { r.run.drain() }

// expect announces n leads about to enter Run (see runState).
func (r *Runner) expect(n int) { r.run.expect(n) }

func (r *Runner) String() string { return fmt.Sprintf("engine.Runner(%s)", r.plan.ref()) }

// OAuth2Configs returns the runner's oauth2 auth sections, rendered from
// its settings, in file order (the integration's first). Login tools
// (`plumb auth login`, an install flow) read them. They hold the client
// secret: Config's String masks it, but never serialise them.
func (r *Runner) OAuth2Configs() []auth.Config {
	var out []auth.Config
	for i, c := range r.authCfgs {
		if c.Type == auth.TypeOAuth2 && r.auths[i] != nil {
			out = append(out, c)
		}
	}
	return out
}

// SettingInfo describes one declared setting.
type SettingInfo struct {
	Name     string
	Type     string // string, number, bool, list or object
	Env      string // the env variable it is read from, if any
	Required bool
	Secret   bool
}

// Setting describes the setting the integration declares as name.
func (p *Plan) Setting(name string) (SettingInfo, bool) {
	d, ok := p.model().Settings.Get(name)
	if !ok || d == nil {
		return SettingInfo{}, false
	}
	typ := d.Type
	if typ == "" {
		typ = steps.SettingTypes.Default
	}
	return SettingInfo{Name: name, Type: string(typ), Env: d.Env, Required: d.Required, Secret: d.Secret}, true
}
