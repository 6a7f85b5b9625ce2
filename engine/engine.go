// Package engine runs integrations: YAML files that say how to call a
// partner's HTTP API for a lead, read the answer and decide an outcome.
//
// It is the one public way to load and run an integration: plumb's own
// commands (run, try, validate, test, sync, serve, the console) are built
// on this API and nothing else of it, as an embedder's program would be.
//
// The life of an integration in a program:
//
//	plan, err := engine.Load("integration.yaml")            // compiled once; err lists every problem as file:line:col
//	r, err := plan.Bind(engine.Config{Values: v, LookupEnv: os.LookupEnv})
//	defer r.Close(ctx)                                       // waits for running leads (bounded by ctx), flushes batches, releases connections
//	res := r.Run(ctx, lead)                                  // one lead; never fails, never hangs
//	for i, res := range r.RunAll(ctx, engine.Leads(leads), engine.RunAllOptions{Concurrency: 32}) { … }
//
// A Plan is immutable and shared. A Runner is a plan bound to its settings:
// it owns the credentials and token caches, the batches being collected,
// the answer store, limits and circuit breakers, and an HTTP transport; it
// is safe for concurrent use and meant to live as long as the settings do.
// Per lead, each step renders its request from the lead, the settings and
// the captures of earlier steps, sends it (with retries, timeouts and
// fallbacks), reads the answer, captures values, decides an outcome
// (success, failure, error, skip) and appends fields to the lead. Every
// Result carries a machine-readable Class for failures and errors, and
// secrets are masked in every result, log, event and observed exchange.
//
// What runners do leaves the engine as typed events (see Events):
// Prometheus metrics, OpenTelemetry traces, slog lines and observers are
// adapters in engine/prommetrics, engine/oteltrace, engine/eventlog and
// engine/observe, so the engine alone links neither Prometheus nor
// OpenTelemetry.
//
// Options given to Load (WithEvents, WithTransport, WithHTTPClient,
// WithFuncs, WithAuthScheme, WithClock, WithLogger) apply to every runner
// of the plan; Config given to Bind
// holds what belongs to one runner. Runner.DryRun renders requests without
// sending them; Runner.RunStep runs one step; Runner.FetchPage drives a
// source: section (plumb sync).
package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/antchfx/xpath"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/internal/cond"
	"github.com/plumbhq/plumb/internal/schedule"
	"github.com/plumbhq/plumb/parse"
	"github.com/plumbhq/plumb/steps"
	"github.com/plumbhq/plumb/template"
)

// DefaultTimeout bounds one try of a step that sets no timeout.
const DefaultTimeout = 30 * time.Second

// DefaultMaxBody caps a response body read when a step sets no max_bytes.
const DefaultMaxBody = 10 << 20

// Clock tells the time and waits. Tests inject a fake one so backoff and
// cache ages take no real time.
type Clock interface {
	Now() time.Time
	// Sleep waits d, or returns ctx's error when ctx is done first.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Option configures a Plan at Load. What a Plan is configured with is
// shared by every Runner bound from it.
type Option func(*options)

type options struct {
	client    *http.Client
	transport func(http.RoundTripper) http.RoundTripper
	clock     Clock
	logger    *slog.Logger
	funcs     map[string]any
	schemes   map[string]AuthScheme
	// events: WithEvents.
	events []Events
	// root confines the files the plan reads (WithRoot).
	root string
}

// AuthScheme builds an Authenticator for an auth section whose type is the
// scheme's name, from the section rendered against the runner's settings.
// It is called once per Bind; the Authenticator is shared by every lead
// of that Runner, so it must be safe for concurrent use.
type AuthScheme func(cfg auth.Config) (auth.Authenticator, error)

// WithAuthScheme registers a custom auth scheme: auth sections with
// `type: name` are signed by what ctor builds. Custom names start with
// "x-" (for example x-acme-token), so they never clash with a built-in
// scheme; other names are ignored. An auth section naming an x- scheme
// that is not registered is a load error.
func WithAuthScheme(name string, ctor AuthScheme) Option {
	return func(o *options) {
		if !strings.HasPrefix(name, "x-") || ctor == nil {
			return
		}
		if o.schemes == nil {
			o.schemes = map[string]AuthScheme{}
		}
		o.schemes[name] = ctor
	}
}

// WithFuncs adds template functions, usable in every template of the file
// like the built-in ones. A name that is already a built-in keeps the
// built-in function (the file means the same everywhere). A template that
// calls an unknown function is still a load error. Functions must be safe
// for concurrent use and must not change their arguments.
func WithFuncs(funcs map[string]any) Option {
	return func(o *options) {
		if o.funcs == nil {
			o.funcs = map[string]any{}
		}
		for k, v := range funcs {
			o.funcs[k] = v
		}
	}
}

// WithHTTPClient makes every Runner of the plan send its requests (and
// fetch its OAuth2 tokens) with c instead of a transport of its own. The
// file's http: section then does not apply, and Runner.Close leaves c
// alone. To add tracing or metrics around plumb's own transport while
// keeping the http: section, use WithTransport instead.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithTransport wraps the transport each Runner builds from the file's
// http: section (pooled, tuned, redirect-checked), for tracing, metrics or
// request logging. wrap is called once per Bind.
func WithTransport(wrap func(http.RoundTripper) http.RoundTripper) Option {
	return func(o *options) { o.transport = wrap }
}

// WithClock sets the clock used for template time helpers, backoff waits,
// batch waits and cache ages.
func WithClock(c Clock) Option { return func(o *options) { o.clock = c } }

// WithLogger sets where the plan and its runners log their warnings (TLS
// verification off, a circuit breaker changing state, a cache that could
// not be written). Secrets are masked. The default discards logs. Each
// try's debug lines are events: add engine/eventlog with WithEvents.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// newTransport builds the transport of a Runner: keep-alive, pooled per
// host, bounded dial and TLS handshake, tuned by the integration's http:
// section. Per-try timeouts come from the request context, not from the
// client.
func newTransport(h *steps.HTTP) *http.Transport {
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	if h != nil {
		t.MaxConnsPerHost = h.MaxConnsPerHost
		if h.IdleTimeout > 0 {
			t.IdleConnTimeout = h.IdleTimeout
		}
		if h.HTTP2 != nil && !*h.HTTP2 {
			t.ForceAttemptHTTP2 = false
			t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		if h.GzipResponses != nil {
			t.DisableCompression = !*h.GzipResponses
		}
	}
	return t
}

// Plan is a compiled integration. It is immutable and safe for concurrent
// use by any number of goroutines. A Plan sends nothing by itself: Bind it
// to its settings to get a Runner.
type Plan struct {
	in        *steps.Integration
	steps     []*step
	client    *http.Client
	transport func(http.RoundTripper) http.RoundTripper
	clock     Clock
	log       *slog.Logger
	tmpl      *template.Set
	deadline  time.Duration
	auths     []*authSection
	schemes   map[string]AuthScheme
	vars      []namedValue
	stages    []*stage
	// gzipRequests compresses request bodies (http.gzip_requests).
	gzipRequests bool
	// tls is the http.tls section, if any.
	tls *tlsSpec
	// source is the compiled source: request, if any; sourceStop its
	// stop_when, sourceRate its rate: and sourceSched its schedule: (see
	// source.go).
	source      *step
	sourceStop  *cond.Program
	sourceRate  *limitSpec
	sourceSched *schedule.Spec
	// sourceRecords is the source's records: xpath and sourceNext its
	// paginate cursor: or next: locator, compiled at load (nil: none).
	sourceRecords *xpath.Expr
	sourceNext    parse.Extractor
	// limits is the integration's limits: section.
	limits *limitSpec
	// sinks receive what runners do (WithEvents; nil: nobody listens).
	sinks
	// root confines the files read at Bind (WithRoot).
	root string
}

// Load reads, checks and compiles the integration file at path. Every
// problem is reported at once; the error is a [*LoadError] holding a
// steps.ErrorList whose lines read `file:line:col: message (hint)`, with
// the file named as given.
func Load(path string, opts ...Option) (*Plan, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	src, err := steps.ReadFileIn(o.root, path)
	if err != nil {
		return nil, &LoadError{Problems: steps.ErrorList{{Pos: steps.Pos{File: path}, Msg: fmt.Sprintf("cannot read integration: %v", errors.Unwrap(err))}}}
	}
	return Parse(path, src, opts...)
}

// LoadError is the error of [Load] and [Parse]: every problem of the file
// and the file's model as far as it decoded, for tools that show a broken
// file's declarations (an editor, the console) without reading it again.
// errors.As finds the [steps.ErrorList] in it.
type LoadError struct {
	// Problems are the file's problems, each `file:line:col: message (hint)`.
	Problems steps.ErrorList
	// Model is the file as far as it decoded; nil when it did not decode
	// (not YAML, not a mapping, unreadable). Read it, do not change it.
	Model *steps.Integration
}

func (e *LoadError) Error() string { return e.Problems.Error() }

// Unwrap returns the problems.
func (e *LoadError) Unwrap() error { return e.Problems }

// Parse is Load for an integration held in memory; file names it in errors.
func Parse(file string, src []byte, opts ...Option) (*Plan, error) {
	in, errs := steps.ParseAll(file, src, stepsOptions(opts)...)
	if in == nil {
		return nil, &LoadError{Problems: errs}
	}
	if len(errs) == 0 {
		plan, err := compile(in, opts...)
		var problems steps.ErrorList
		if errors.As(err, &problems) {
			return nil, &LoadError{Problems: problems, Model: in}
		}
		return plan, err
	}
	// The file has problems already: compile what was decoded anyway, so
	// one run reports every problem (templates, conditions, references
	// too), then refuse the file. The compiler checks what the decoder
	// cannot (templates, conditions, references) and tolerates what the
	// decoder refused; no problem is reported by both (FuzzParse).
	all := append(steps.ErrorList{}, errs...)
	if _, err := compile(in, opts...); err != nil {
		var more steps.ErrorList
		if errors.As(err, &more) {
			all = append(all, more...)
		}
	}
	return nil, &LoadError{Problems: all, Model: in}
}

// compile builds a plan from a loaded integration: every template,
// condition, XPath and regex is compiled here, once.
func compile(in *steps.Integration, opts ...Option) (*Plan, error) {
	o := options{clock: realClock{}}
	for _, f := range opts {
		f(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	p := &Plan{gzipRequests: in.HTTP != nil && in.HTTP.GzipRequests, in: in, client: o.client, transport: o.transport,
		clock: o.clock, log: o.logger, deadline: in.Deadline, schemes: o.schemes,
		sinks: newSinks(o.events), root: o.root}
	p.tmpl = template.New(template.WithClock(o.clock.Now), template.WithFuncs(o.funcs))
	c := &compiler{plan: p, in: in}
	if err := c.compile(); err != nil {
		return nil, err
	}
	return p, nil
}

// Name is the integration's name.
func (p *Plan) Name() string { return p.model().Name.Value }

// File is the integration's file name as given to Load or Parse.
func (p *Plan) File() string { return p.model().File }

// Model is the file model the plan was compiled from, every section as
// decoded (steps, settings, source, webhook, tests). Read it, do not
// change it: the plan was compiled from it once.
func (p *Plan) Model() *steps.Integration { return p.model() }

// model is the plan's file model; an empty one for a zero Plan (not made
// by Load or Parse), so its methods answer "nothing" instead of panicking.
func (p *Plan) model() *steps.Integration {
	if p == nil || p.in == nil {
		return &steps.Integration{}
	}
	return p.in
}

// ErrNotBound is the error of a zero Runner (not made by Plan.Bind) and of
// binding a zero Plan (not made by Load or Parse).
var ErrNotBound = errors.New("engine: a zero Plan or Runner: make the Plan with Load or Parse and the Runner with Plan.Bind")

// ref names the integration in messages: its base file name, never an
// absolute path, or its name.
func (p *Plan) ref() string {
	if f := p.File(); f != "" {
		return filepath.Base(f)
	}
	return p.Name()
}
