// Package serve is `plumb serve`: the integrations of a directory as an
// HTTP service with a durable queue.
//
// A Server loads every integration of Config.Dir (see Discover and
// SettingsFile) and binds each once to a long-lived engine.Runner. It
// serves synchronous runs (POST /v1/integrations/{name}/run), accepts leads
// into a NATS JetStream queue (internal/queue; embedded under
// Config.DataDir, or an external cluster) before answering 202, runs them
// with workers that store each result before acknowledging the lead, and
// exposes status, dead letters, health and Prometheus metrics.
// docs/service.md is the reference for routes, statuses and operations.
//
//	s, err := serve.New(cfg)   // loads integrations, opens the queue
//	err = s.Start()            // listens on cfg.Addr, starts the workers
//	...
//	s.Reload()                 // SIGHUP: reload changed files
//	s.Shutdown(ctx)            // SIGTERM: drain, close runners and queue
//
// Run does all of that until a signal, for the CLI.
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/engine/oteltrace"
	"github.com/plumbhq/plumb/internal/cluster"
	"github.com/plumbhq/plumb/internal/history"
	"github.com/plumbhq/plumb/internal/oauthflow"
	"github.com/plumbhq/plumb/internal/queue"
	"github.com/plumbhq/plumb/internal/sandbox"
	"github.com/plumbhq/plumb/internal/telemetry"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultAddr         = "127.0.0.1:8080"
	DefaultMaxBody      = 1 << 20
	DefaultMaxBodyLeads = 10_000
	DefaultConcurrency  = 8
	DefaultDrainTimeout = 30 * time.Second
)

// Config configures a Server.
type Config struct {
	// Dir holds the integration files (required).
	Dir string
	// Addr to listen on (default 127.0.0.1:8080; port 0 picks a free one).
	Addr string
	// DataDir holds the embedded queue's storage (required unless NATS).
	DataDir string
	// NATS lists the URLs of an external NATS cluster to use instead of
	// the embedded server.
	NATS []string
	// Tokens are the bearer tokens the API accepts (the API role: leads,
	// results, dead letters, metrics, the OAuth2 install routes). With
	// none, the server only listens on a loopback address, answers only
	// to a loopback Host name (no DNS rebinding) and logs a warning. Each
	// must pass CheckToken.
	Tokens []string
	// ConsoleTokens are the bearer tokens that open the console (the
	// console role); an API token does not, unless it is listed here too.
	// With API tokens, Console needs at least one. Each must pass
	// CheckToken.
	ConsoleTokens []string
	// Sandbox serves the examples' fake partner API on a loopback port and
	// points every integration's base_url setting at it.
	Sandbox bool
	// Concurrency bounds the leads of one integration running at once, sync
	// and queued together (default 8). The queue gets Concurrency workers per
	// integration.
	Concurrency int
	// MaxBody bounds a request body (default 1 MiB); more is a 413.
	MaxBody int64
	// MaxBodyLeads bounds the leads of one POST /leads body (default
	// 10,000; also at most MaxQueueDepth); more is a 413. A small body of
	// many tiny leads would otherwise cost the service far more memory
	// than its bytes while it is stored.
	MaxBodyLeads int
	// ResultTTL is how long results are kept (default: the queue's 24h).
	ResultTTL time.Duration
	// DrainTimeout bounds a shutdown's wait for running leads (default 30s);
	// leads not finished by then stay in the queue for the next start.
	DrainTimeout time.Duration
	// MaxQueueDepth and MaxQueueAge are the backpressure limits (backlog.go):
	// POST /leads answers 429 queue_behind, with Retry-After, when a body's
	// leads would take the queue past MaxQueueDepth unfinished leads
	// (default 100,000) or while its oldest lead not yet started has waited
	// MaxQueueAge (default 5m). Negative: no such limit.
	MaxQueueDepth int
	MaxQueueAge   time.Duration
	// Queue tunes the queue (MaxDeliver, AckWait, SyncInterval, Name…);
	// DataDir, URLs, Workers, ResultTTL and DrainTimeout are set from the
	// fields above; Logger defaults to Logger at warn level and above.
	Queue queue.Config
	// LookupEnv reads the env variables settings name (default none; the CLI
	// passes os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// Logger receives the service's logs (default: discard). Its handler
	// is wrapped in a telemetry.Handler: lines logged for a request or a
	// lead carry its ids, durations are in milliseconds.
	Logger *slog.Logger
	// TracerProvider, when set, traces the service: a span per request
	// (continuing the client's traceparent), per queued job (continuing
	// the trace of the request that stored it), and the engine's spans per
	// lead, step and try (engine/oteltrace). nil: no spans; an incoming
	// traceparent still names the trace on log lines and travels with
	// queued leads. The CLI builds one from OTEL_EXPORTER_OTLP_*
	// (telemetry.FromEnv).
	TracerProvider trace.TracerProvider
	// AccessLogSample logs the access line of only 1 in N requests
	// answered below 400 (0 or 1: every request). Errors are always
	// logged.
	AccessLogSample int
	// TokenKey encrypts the OAuth2 tokens at rest (32 bytes; the CLI reads
	// it from PLUMB_TOKEN_KEY). With a key the runners keep their tokens in
	// an encrypted store under TokenDir and the install flow is served at
	// /v1/oauth/ (package oauthflow). Without one, integrations using the
	// authorization_code grant do not load.
	TokenKey []byte
	// TokenDir holds the encrypted tokens (default DataDir/tokens).
	TokenDir string
	// Console serves the test console at /console/ (package console): a
	// web page to run, inspect and edit integrations and save test cases.
	// Off by default. Without any tokens it answers on loopback to a
	// loopback Host only; with ConsoleTokens it asks for one of them (a
	// login page, or Authorization: Bearer).
	Console bool
	// PublicURL is the service's external URL as browsers and partners
	// see it (https://plumb.example.com); the OAuth2 redirect URI is
	// PublicURL/v1/oauth/{integration}/callback. Default: http://Addr.
	PublicURL string
	// HistoryMaxAge and HistoryMaxBytes are the lead history's retention
	// (defaults: history.DefaultMaxAge, history.DefaultMaxBytes).
	HistoryMaxAge   time.Duration
	HistoryMaxBytes int64
	// CallbackAllow lists origins (https://host[:port]) every batch may
	// name as its callback_url, besides its integration's callback.origins.
	CallbackAllow []string
	// CallbackAllowPrivate lets a batch's callback_url reach loopback and
	// private addresses (off: refused, an SSRF guard).
	CallbackAllowPrivate bool

	// now is the clock of the failed-token limiter (tests; default
	// time.Now).
	now func() time.Time
}

// Server is the running service.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	reg     registry

	tracer  trace.Tracer  // the service's own spans; nil without Config.TracerProvider
	accessN atomic.Uint64 // requests seen by the access-line sampler

	q          atomic.Pointer[queue.Queue]
	sandboxURL string
	stopSand   func()
	tokens     auth.TokenStore
	oauth      http.Handler
	cluster    *cluster.Cluster // shared tokens, budgets, answers; nil when embedded (cluster.go)

	reloadMu sync.Mutex
	closing  sync.WaitGroup // runners being closed after a reload

	semMu sync.Mutex
	sems  map[string]chan struct{} // per integration name

	hooks   hookState       // webhook receivers (hooks.go)
	syncs   syncState       // sources' sync loops (sync.go)
	idem    idemStore       // Idempotency-Key digests (faults.go)
	hist    *history.Store  // the lead history (history.go); nil without DataDir
	sender  *history.Sender // callbacks (callback.go)
	cbWG    sync.WaitGroup  // batch summaries being queued
	backlog backlog         // the queue's depth and age, for backpressure (backlog.go)

	apiTokens     tokenSet     // the API role (tokens.go)
	consoleTokens tokenSet     // the console role
	limiter       *failLimiter // wrong tokens per client (limiter.go)

	handler  http.Handler
	srv      *http.Server
	ln       net.Listener
	consume  context.CancelFunc
	consumed chan struct{}
	serveErr chan error

	started, stopping atomic.Bool
	shutdownOnce      sync.Once
	shutdownErr       error
}

// New checks cfg, loads the integrations and opens the queue. A file that
// does not load is reported (GET /v1/integrations, the log) and keeps the
// server not ready; it is not an error here.
func New(cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("serve: a directory of integrations is required")
	}
	if st, err := os.Stat(cfg.Dir); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("serve: %s is not a directory", cfg.Dir)
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.MaxQueueDepth == 0 {
		cfg.MaxQueueDepth = DefaultMaxQueueDepth
	}
	if cfg.MaxBodyLeads <= 0 {
		cfg.MaxBodyLeads = DefaultMaxBodyLeads
	}
	if cfg.MaxQueueAge == 0 {
		cfg.MaxQueueAge = DefaultMaxQueueAge
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Logger = slog.New(telemetry.NewHandler(cfg.Logger.Handler()))
	if len(cfg.NATS) == 0 && cfg.DataDir == "" {
		return nil, errors.New("serve: a data directory (--data) is required for the embedded queue")
	}
	if err := checkAccess(&cfg); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, sems: map[string]chan struct{}{}, tracer: tracerFor(cfg.TracerProvider),
		apiTokens: newTokenSet(cfg.Tokens), consoleTokens: newTokenSet(cfg.ConsoleTokens), limiter: newFailLimiter(cfg.now)}
	s.reg.entries, s.reg.byName = map[string]*entry{}, map[string]*entry{}
	s.metrics = newMetrics(s.q.Load)
	s.metrics.reg.MustRegister(&faultCollector{q: s.q.Load})
	if len(cfg.Tokens) == 0 {
		s.log.Warn("NO API TOKENS: the API is open to every local user and process; listening on loopback only. Give --token-file or PLUMB_SERVE_TOKENS to require bearer tokens.", "addr", cfg.Addr)
	}
	if len(cfg.ConsoleTokens) > 0 && !cfg.Console {
		s.log.Warn("console tokens given without --console: they open nothing")
	}
	if cfg.Sandbox {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("serve: starting the sandbox: %w", err)
		}
		srv := &http.Server{Handler: sandbox.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		s.sandboxURL = "http://" + ln.Addr().String()
		s.stopSand = func() { _ = srv.Close() }
		s.log.Info("sandbox partner API serving", "url", s.sandboxURL)
	}
	// The queue opens before the integrations bind: in a cluster their
	// runners share tokens and rate budgets through it (cluster.go).
	if err := s.openQueue(); err != nil {
		s.closeAll()
		return nil, err
	}
	if err := s.openHistory(); err != nil {
		s.closeAll()
		return nil, err
	}
	if err := s.setupTokens(); err != nil {
		s.closeAll()
		return nil, err
	}
	if _, err := s.Reload(); err != nil {
		s.closeAll()
		return nil, err
	}
	con, err := s.console()
	if err != nil {
		s.closeAll()
		return nil, err
	}
	s.handler = s.observe(s.front(s.routes(), s.hookRoute(), con))
	return s, nil
}

// checkAccess cleans cfg's token sets and refuses a configuration that
// would leave something open: no API tokens off loopback, a weak token, a
// console with API tokens but none of its own.
func checkAccess(cfg *Config) error {
	cfg.Tokens, cfg.ConsoleTokens = cleanTokens(cfg.Tokens), cleanTokens(cfg.ConsoleTokens)
	if len(cfg.Tokens) == 0 && !loopback(cfg.Addr) {
		return fmt.Errorf("serve: refusing to listen on %s without API tokens: give --token-file or PLUMB_SERVE_TOKENS, or listen on a loopback address", cfg.Addr)
	}
	if err := checkTokens("API", cfg.Tokens); err != nil {
		return err
	}
	if err := checkTokens("console", cfg.ConsoleTokens); err != nil {
		return err
	}
	if cfg.Console && len(cfg.Tokens) > 0 && len(cfg.ConsoleTokens) == 0 {
		return errors.New("serve: --console with API tokens needs console tokens: an API token does not open the console; give --console-token-file or PLUMB_CONSOLE_TOKENS (list a token in both to let it do both)")
	}
	return nil
}

// loopback reports whether addr's host is a loopback name or address.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && loopbackHost(host)
}

// Handler is the service's HTTP API (for tests or another server).
func (s *Server) Handler() http.Handler { return s.handler }

// Queue is the server's queue.
func (s *Server) Queue() *queue.Queue { return s.q.Load() }

// Addr is the address the server listens on, after Start.
func (s *Server) Addr() string {
	if s.ln == nil {
		return s.cfg.Addr
	}
	return s.ln.Addr().String()
}

// Start listens on Config.Addr and starts the workers. It returns once the
// listener is open.
func (s *Server) Start() error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("serve: already started")
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if err := s.startSyncs(); err != nil {
		ln.Close()
		return err
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      5 * time.Minute, // a sync run lasts at most its flow's deadline
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.serveErr = make(chan error, 1)
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.serveErr <- err
	}()
	ctx, cancel := context.WithCancel(context.Background())
	s.consume = cancel
	s.consumed = make(chan struct{})
	go func() {
		defer close(s.consumed)
		if err := s.q.Load().Consume(ctx, s.work); err != nil {
			s.log.Error("queue workers stopped", "err", err)
		}
	}()
	s.renotify()
	s.reconcileHistory()
	s.log.Info("listening", "addr", ln.Addr().String(), "integrations", len(s.reg.list()), "auth", len(s.cfg.Tokens) > 0)
	return nil
}

// Shutdown stops the service: the listener closes and /readyz answers 503,
// HTTP requests in progress (sync runs) finish, the workers stop fetching
// and the leads they run finish within Config.DrainTimeout (after that
// they are cancelled and stay in the queue, as do leads not started), then
// every runner is closed (partial batches sent) and the queue closed. ctx
// bounds the wait for HTTP requests.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.shutdown(ctx) })
	return s.shutdownErr
}

func (s *Server) shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	start := time.Now()
	var errs []error
	if s.srv != nil {
		if err := s.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
			s.srv.Close()
		}
		if err := <-s.serveErr; err != nil {
			errs = append(errs, err)
		}
	}
	// Syncs stop after their page (cancelled after the drain timeout),
	// before the runners they use are closed.
	dctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	s.stopSyncs(dctx)
	cancel()
	if s.consume != nil {
		s.consume()
		// Runners are closed while the workers drain: leads in a batch are
		// sent at once instead of waiting out the batch's wait; a lead that
		// reaches a closed runner is handed back to the queue.
		var closing sync.WaitGroup
		for _, e := range s.reg.list() {
			if r := e.current(); r != nil {
				closing.Go(func() { r.Close(ctx) }) // bounded by the drain
			}
		}
		<-s.consumed
		closing.Wait()
	}
	s.closeAll()
	s.log.Info("stopped", "drain_ms", telemetry.Millis(time.Since(start)))
	return errors.Join(errs...)
}

// closeAll closes every runner, the queue and the sandbox.
func (s *Server) closeAll() {
	s.stopSyncs(context.Background())
	for _, e := range s.reg.list() {
		if r := e.current(); r != nil {
			r.Close(context.Background())
		}
	}
	s.closing.Wait()
	s.cbWG.Wait() // reconciling, batch summaries being queued
	s.closeHistory()
	s.cbWG.Wait() // the summaries of the last commit
	if q := s.q.Load(); q != nil {
		if err := q.Close(); err != nil {
			s.log.Warn("closing the queue", "err", err)
		}
	}
	if s.stopSand != nil {
		s.stopSand()
	}
}

// ready reports whether every integration loaded and the queue is up and
// takes new leads (its storage is not full or failing).
func (s *Server) ready() (bool, string) {
	if s.stopping.Load() {
		return false, "shutting down"
	}
	q := s.q.Load()
	if q == nil {
		return false, "queue not open"
	}
	if err := q.Writable(); err != nil {
		return false, err.Error() + " (GET /v1/queue, docs/service.md#faults)"
	}
	if !s.reg.loaded() {
		return false, "an integration did not load (GET /v1/integrations)"
	}
	return true, ""
}

// engineOptions are Load options every plan gets. The engine's own
// metrics (prommetrics.New, registered in s.metrics.reg and passed with
// engine.WithEvents) belong here; the service's are named plumb_serve_*
// so the two never collide. Every file is read confined to --dir
// (engine.WithRoot): the service trusts only what is under it.
//
// telemetry.Events names the integration and step on the engine's log
// lines; with a TracerProvider, oteltrace records the lead's, steps' and
// tries' spans under the request's or job's span (no traceparent is sent
// to partners).
func (s *Server) engineOptions() []engine.Option {
	opts := []engine.Option{engine.WithEvents(telemetry.Events(nil)), engine.WithEvents(s.metrics.engine), engine.WithEvents(history.Events{}), engine.WithRoot(s.cfg.Dir)}
	if s.cfg.TracerProvider != nil {
		opts = append(opts, engine.WithEvents(oteltrace.New(s.cfg.TracerProvider, false)))
	}
	return opts
}

// atLeast passes on records of at least min: the queue and its embedded
// server are chatty at info level.
type atLeast struct {
	slog.Handler
	min slog.Level
}

func (h atLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h atLeast) WithAttrs(a []slog.Attr) slog.Handler {
	return atLeast{h.Handler.WithAttrs(a), h.min}
}

func (h atLeast) WithGroup(n string) slog.Handler { return atLeast{h.Handler.WithGroup(n), h.min} }

// setupTokens makes the encrypted token store and the install flow when a
// token key is configured. Without one (and off a cluster) the runners get
// a store that is not there, whose reason names the variable to set.
func (s *Server) setupTokens() error {
	if len(s.cfg.TokenKey) == 0 {
		if s.cluster == nil {
			s.tokens = auth.NoTokenStore("set " + oauthflow.DefaultKeyEnv + " to a base64 32-byte key (openssl rand -base64 32): plumb serve keeps OAuth2 logins only encrypted")
		}
		return nil
	}
	store, err := s.tokenStore()
	if err != nil {
		return err
	}
	s.tokens = store
	base := s.cfg.PublicURL
	if base == "" {
		base = "http://" + s.cfg.Addr
	}
	flow, err := oauthflow.New(oauthflow.Config{
		Lookup: func(name string) ([]auth.Config, bool) {
			e := s.reg.lookup(name)
			if e == nil {
				return nil, false
			}
			r := e.current()
			if r == nil {
				return nil, false
			}
			return r.OAuth2Configs(), true
		},
		Store:   store,
		BaseURL: base,
		Logger:  s.log.With("component", "oauth"),
		Authorize: func(r *http.Request) error {
			if !s.authorized(r) {
				s.metrics.authFail.Inc()
				return errors.New("a valid API token is required (Authorization: Bearer, or ?access_token= for a browser on these routes only)")
			}
			return nil
		},
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	s.oauth = flow.Handler()
	return nil
}
