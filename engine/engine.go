// Package engine runs integrations: it compiles a loaded integration file
// into a Plan once, then runs the plan for any number of leads, concurrently.
//
// Per lead, each step renders its request from the lead, the settings and
// the captures of earlier steps, sends it with the plan's shared HTTP client,
// reads the answer, captures values, decides an outcome (success, failure,
// error, skip) and appends fields to the lead. Run never fails and never
// hangs: every try has a timeout and every lead leaves with a Result.
package engine

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/steps"
	"github.com/plumbhq/plumb/store"
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

// Option configures a Plan.
type Option func(*options)

type options struct {
	client   *http.Client
	clock    Clock
	logger   *slog.Logger
	store    store.Store
	observer func(context.Context, *Exchange)
	tokens   auth.TokenStore
}

// WithTokenStore sets where OAuth2 tokens are kept (required for the
// authorization_code grant, whose tokens come from `plumb auth login`).
func WithTokenStore(s auth.TokenStore) Option { return func(o *options) { o.tokens = s } }

// WithStore sets where last-known-good answers are kept for cache fallback
// links. The default is an in-memory store owned by the plan.
func WithStore(s store.Store) Option { return func(o *options) { o.store = s } }

// WithHTTPClient makes the plan send its requests with c instead of its own
// pooled client.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithClock sets the clock used for template time helpers and durations.
func WithClock(c Clock) Option { return func(o *options) { o.clock = c } }

// WithLogger sets where the plan logs each attempt (at debug level).
// Secrets are masked. The default discards logs.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// NewHTTPClient returns the client a plan uses by default: keep-alive,
// pooled per host, bounded dial and TLS handshake. Per-try timeouts come from
// the request context, not from the client.
func NewHTTPClient() *http.Client { return newHTTPClient(nil) }

// newHTTPClient applies an integration's http: section to the default client.
func newHTTPClient(h *steps.HTTP) *http.Client {
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
	return &http.Client{Transport: t}
}

// Plan is a compiled integration. It is immutable and safe for concurrent
// use by any number of goroutines.
type Plan struct {
	in       *steps.Integration
	steps    []*step
	client   *http.Client
	clock    Clock
	log      *slog.Logger
	tmpl     *template.Set
	store    store.Store
	deadline time.Duration
	observer func(context.Context, *Exchange)
	auths    []*authSection
	tokens   auth.TokenStore
	vars     []namedValue
	stages   []*stage
	// gzipRequests compresses request bodies (http.gzip_requests).
	gzipRequests bool
}

// Load reads, checks and compiles the integration file at path. Every
// problem is reported at once; the error is a steps.ErrorList whose lines
// read `file:line:col: message (hint)`.
func Load(path string, opts ...Option) (*Plan, error) {
	in, err := steps.Load(path)
	if err != nil {
		return nil, err
	}
	return Compile(in, opts...)
}

// Parse is Load for an integration held in memory; file names it in errors.
func Parse(file string, src []byte, opts ...Option) (*Plan, error) {
	in, err := steps.Parse(file, src)
	if err != nil {
		return nil, err
	}
	return Compile(in, opts...)
}

// Compile builds a plan from a loaded integration: every template,
// condition, XPath and regex is compiled here, once.
func Compile(in *steps.Integration, opts ...Option) (*Plan, error) {
	o := options{clock: realClock{}}
	for _, f := range opts {
		f(&o)
	}
	if o.client == nil {
		o.client = newHTTPClient(in.HTTP)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.store == nil {
		o.store = store.NewMemory()
	}
	p := &Plan{gzipRequests: in.HTTP != nil && in.HTTP.GzipRequests, in: in, client: o.client, clock: o.clock, log: o.logger, store: o.store, deadline: in.Deadline, observer: o.observer, tokens: o.tokens}
	p.tmpl = template.New(template.WithClock(o.clock.Now))
	c := &compiler{plan: p, in: in}
	if err := c.compile(); err != nil {
		return nil, err
	}
	return p, nil
}

// Name is the integration's name.
func (p *Plan) Name() string { return p.in.Name.Value }

// Integration is the loaded file the plan was compiled from.
func (p *Plan) Integration() *steps.Integration { return p.in }
