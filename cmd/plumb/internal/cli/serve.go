package cli

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/plumbhq/plumb/internal/history"
	"github.com/plumbhq/plumb/internal/oauthflow"
	"github.com/plumbhq/plumb/internal/queue"
	"github.com/plumbhq/plumb/internal/serve"
	"github.com/plumbhq/plumb/internal/telemetry"
)

const serveDoc = `
Serve the integrations of DIR as an HTTP service with a durable queue
(docs/service.md is the reference).

Integrations: every DIR/*.yaml (not *.test.yaml, not *settings*.yaml) and
every DIR/NAME/integration.yaml; settings from X.settings.yaml beside X.yaml
or NAME/settings.yaml, plus the env variables settings declare.

Routes: POST /v1/integrations/{name}/run (run one lead now), POST
/v1/integrations/{name}/leads (one lead or NDJSON; stored before 202),
GET /v1/leads/{id}, GET /v1/integrations, GET /v1/dead, POST
/v1/dead/{id}/retry, GET /v1/queue, /healthz, /readyz, /metrics.

The API needs a bearer token from --token-file or PLUMB_SERVE_TOKENS (one
per line; each at least 16 characters and not patterned: generate them with
openssl rand -hex 32). Without tokens plumb serve listens on a loopback
address only and answers only to a loopback Host name (localhost,
127.0.0.1, [::1]); webhook receivers, which check signatures, answer to any.
A client presenting 10 wrong tokens is answered 429 (one more try per 6 s).

Signals: SIGTERM or SIGINT stops accepting, lets running leads finish
(at most --drain), leaves the rest in the queue and exits 0; SIGHUP reloads
changed integration files (one that fails to load keeps its old version).
Logs are JSON lines on stderr (--log-format text for logfmt): one access
line per request (--access-log-sample N logs 1 in N of those answered
below 400), a line per lead queued and per lead's end at info, the
engine's tries at debug; durations in milliseconds (duration_ms). Each
line of a request or lead names its request id (X-Request-Id, accepted
when 1-128 of A-Z a-z 0-9 - _ . : + = / @, else made; echoed on every
answer), lead id, integration, step and trace. Traces: an incoming W3C
traceparent is continued; with OTEL_EXPORTER_OTLP_ENDPOINT (or
_TRACES_ENDPOINT) set, spans are sent over OTLP/HTTP
(docs/service.md#logs-and-traces).

OAuth2 (authorization_code): with PLUMB_TOKEN_KEY set (a base64 32-byte
key, e.g. openssl rand -base64 32) tokens are kept encrypted under
--token-dir and a browser connects an integration at
/v1/oauth/NAME/start (?access_token=TOKEN when the API has tokens).

--console serves the test console at /console/: a web page to run an
integration's steps on a lead, see every try (request, raw response,
timings), edit its YAML and save test cases (docs/console.md). The console
is a role of its own: with API tokens it needs console tokens
(--console-token-file or PLUMB_CONSOLE_TOKENS), and an API token does not
open it unless it is listed there too. Without any tokens it is open on
loopback, like the API.`

// tokenKey reads PLUMB_TOKEN_KEY. Unset, or set but empty (a template or
// secret mount that rendered nothing), is no key: the service runs and
// only the integrations using authorization_code do not load, each saying
// to set the variable — as a missing PLUMB_TOKEN_DIR falls back to its
// default. Empty is logged as a warning, since someone meant to set it. A
// value that is not a key stops the service (false): it was meant to be
// one, and running without it would hide that.
func tokenKey(s *stdio, log *slog.Logger) ([]byte, bool) {
	v, ok := s.env(oauthflow.DefaultKeyEnv)
	if !ok {
		return nil, true
	}
	if strings.TrimSpace(v) == "" {
		log.Warn(oauthflow.DefaultKeyEnv+" is set but empty: treated as unset; integrations using OAuth2 authorization_code do not load (and on a cluster tokens are shared unencrypted) until it holds a key",
			"hint", "openssl rand -base64 32")
		return nil, true
	}
	key, err := oauthflow.KeyFromEnv(s.env, oauthflow.DefaultKeyEnv)
	if err != nil {
		s.errorf("serve: %v", err)
		return nil, false
	}
	return key, true
}

func serveCmd(ctx context.Context, s *stdio, args []string) int {
	fs := newFlagSet(s, "serve", "--dir DIR [flags]", serveDoc)
	var cfg serve.Config
	var nats, tokenFile, consoleTokenFile string
	var logs logFlags
	fs.StringVar(&cfg.Dir, "dir", "", "`DIR` of integration files (required)")
	fs.StringVar(&cfg.Addr, "addr", serve.DefaultAddr, "`address` to listen on")
	fs.StringVar(&cfg.DataDir, "data", "", "`DIR` for the embedded queue's storage (default <state dir>/plumb/serve)")
	fs.StringVar(&nats, "nats", "", "use the external NATS cluster at `URL,URL` instead of the embedded server; instances on one cluster share the work, results, tokens and rate budgets")
	fs.IntVar(&cfg.Queue.Replicas, "replicas", 0, "replicas of the streams and buckets on a NATS cluster (`N`, 1-5; default 3 when --nats lists 3 or more servers, else 1)")
	fs.StringVar(&tokenFile, "token-file", "", "read API bearer tokens from `FILE`, one per line (mode 600)")
	fs.BoolVar(&cfg.Sandbox, "sandbox", false, "serve the examples' fake partner API on 127.0.0.1 and point base_url settings at it")
	fs.IntVar(&cfg.Concurrency, "concurrency", serve.DefaultConcurrency, "leads of one integration running at once (`N`)")
	fs.Int64Var(&cfg.MaxBody, "max-body", serve.DefaultMaxBody, "largest request body in `bytes`")
	fs.IntVar(&cfg.MaxBodyLeads, "max-body-leads", serve.DefaultMaxBodyLeads, "most leads in one POST /leads body (`N`; more is a 413: send them in smaller bodies)")
	fs.DurationVar(&cfg.ResultTTL, "result-ttl", 24*time.Hour, "how long results are kept")
	fs.DurationVar(&cfg.HistoryMaxAge, "history-max-age", history.DefaultMaxAge, "how long the lead history keeps a lead (GET /v1/leads, /v1/batches)")
	fs.Int64Var(&cfg.HistoryMaxBytes, "history-max-bytes", history.DefaultMaxBytes, "bound of the lead history's file in `bytes` (the oldest leads go first)")
	fs.DurationVar(&cfg.DrainTimeout, "drain", serve.DefaultDrainTimeout, "how long a shutdown waits for running leads")
	fs.DurationVar(&cfg.Queue.AckWait, "ack-wait", queue.DefaultAckWait, "on a NATS cluster, how long a lead delivered to an instance that died waits before another instance (or the restarted one) runs it; running leads are kept alive every ack-wait/5, so a live instance's signals may be late by 4/5 of it before its leads run twice; the embedded queue hands a killed process's leads back at its next start at once")
	fs.IntVar(&cfg.MaxQueueDepth, "max-queue-depth", serve.DefaultMaxQueueDepth, "POST /leads answers 429 queue_behind (with Retry-After) when a body's leads would take the queue past `N` unfinished leads (0 or less: no limit)")
	fs.DurationVar(&cfg.MaxQueueAge, "max-queue-age", serve.DefaultMaxQueueAge, "POST /leads answers 429 queue_behind (with Retry-After) while the oldest lead not yet started has waited this long (0 or less: no limit)")
	fs.DurationVar(&cfg.Queue.SyncInterval, "sync-interval", 0, "fsync the embedded queue on this interval instead of every write (faster; an OS crash or power loss can lose up to it; kill -9 stays safe)")
	fs.BoolVar(&cfg.Console, "console", false, "serve the test console web page at /console/ (docs/console.md)")
	fs.StringVar(&consoleTokenFile, "console-token-file", "", "read the tokens that open the console from `FILE`, one per line (mode 600); API tokens do not")
	logs.register(fs, telemetry.FormatJSON, "info", "log lines on stderr as `json` or text (logfmt)",
		"log `level`: debug (the engine's every try), info (one line per request and per lead's queueing and end), warn or error")
	linger := telemetry.DefaultLinger
	fs.DurationVar(&linger, "log-linger", linger, "hold log lines below warn up to this long to write them together (0: each at once; warnings and errors never wait)")
	fs.IntVar(&cfg.AccessLogSample, "access-log-sample", 1, "log the access line of 1 in `N` requests answered below 400 (errors always)")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "the service's external `URL` (OAuth2 redirect URIs are URL/v1/oauth/NAME/callback; default http://ADDR)")
	fs.StringVar(&cfg.TokenDir, "token-dir", "", "`DIR` of the encrypted OAuth2 tokens (default DATA/tokens; key from PLUMB_TOKEN_KEY)")
	var callbackAllow string
	fs.StringVar(&callbackAllow, "callback-allow", "", "origins (`https://host[:port],…`) every batch may name as its callback_url, besides its integration's callback.origins")
	fs.BoolVar(&cfg.CallbackAllowPrivate, "callback-allow-private", false, "let a batch's callback_url reach loopback and private addresses (refused by default: SSRF)")
	pos, err := parseArgs(s, fs, args)
	if err != nil {
		return exitForParse(err)
	}
	if len(pos) > 0 {
		s.errorf("serve: unexpected argument %q", pos[0])
		return ExitUsage
	}
	if cfg.Dir == "" {
		s.errorf("serve: --dir DIR is required")
		return ExitUsage
	}
	if cfg.MaxQueueDepth <= 0 { // no limit (serve.Config: 0 is the default)
		cfg.MaxQueueDepth = -1
	}
	if cfg.MaxQueueAge <= 0 {
		cfg.MaxQueueAge = -1
	}
	if cfg.Queue.AckWait < time.Second {
		s.errorf("serve: --ack-wait %s: want at least 1s", cfg.Queue.AckWait)
		return ExitUsage
	}
	if cfg.AccessLogSample < 1 {
		s.errorf("serve: --access-log-sample %d: want at least 1", cfg.AccessLogSample)
		return ExitUsage
	}
	// the log lines, and the errors after them in order, are written
	// together every --log-linger (warnings and errors at once)
	lines := telemetry.NewLineWriter(s.stderr, linger)
	defer lines.Close()
	held := *s
	held.stderr = lines
	s = &held
	log, err := logs.logger(lines, slog.LevelInfo)
	if err != nil {
		s.errorf("serve: %v", err)
		return ExitUsage
	}
	if nats != "" {
		cfg.NATS = strings.Split(nats, ",")
	} else if cfg.DataDir == "" {
		cfg.DataDir = serve.DefaultDataDir(s.env)
	}
	if callbackAllow != "" {
		cfg.CallbackAllow = strings.Split(callbackAllow, ",")
	}
	var ok bool
	if cfg.Tokens, ok = readTokens(s, "--token-file", tokenFile, "PLUMB_SERVE_TOKENS"); !ok {
		return ExitUsage
	}
	if cfg.ConsoleTokens, ok = readTokens(s, "--console-token-file", consoleTokenFile, "PLUMB_CONSOLE_TOKENS"); !ok {
		return ExitUsage
	}
	cfg.LookupEnv = s.env
	cfg.Logger = log
	key, ok := tokenKey(s, cfg.Logger)
	if !ok {
		return ExitUsage
	}
	cfg.TokenKey = key
	tr, stopTracing, err := startTracing(s, "plumb-serve", log)
	if err != nil {
		s.errorf("serve: %v", err)
		return ExitUsage
	}
	defer stopTracing() // after the service stopped: its last spans are sent
	if tr != nil {
		cfg.TracerProvider = tr.Provider
		log.Info("exporting traces over OTLP/HTTP", "endpoint", tr.Endpoint)
	}
	tuneGC(serveGCPercent)
	if err := serve.Run(ctx, cfg); err != nil {
		s.errorf("serve: %v", err)
		return ExitUsage
	}
	return ExitOK
}

// readTokens reads one role's tokens from its file flag and its env
// variable, refusing a weak one with where it came from (never its value).
func readTokens(s *stdio, flag, file, env string) ([]string, bool) {
	var out []string
	if file != "" {
		toks, err := serve.ReadTokenFile(file)
		if err != nil {
			s.errorf("serve: %s: %v", flag, err)
			return nil, false
		}
		for i, t := range toks {
			if err := serve.CheckToken(t); err != nil {
				s.errorf("serve: %s %s: token %d is too weak: %v", flag, file, i+1, err)
				return nil, false
			}
		}
		out = append(out, toks...)
	}
	if v, ok := s.env(env); ok {
		toks := serve.ReadTokens(v)
		for i, t := range toks {
			if err := serve.CheckToken(t); err != nil {
				s.errorf("serve: %s: token %d is too weak: %v", env, i+1, err)
				return nil, false
			}
		}
		out = append(out, toks...)
	}
	return out, true
}
