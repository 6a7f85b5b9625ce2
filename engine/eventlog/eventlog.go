// Package eventlog writes what a plan's runners do to a log/slog logger:
// each HTTP try, retry rule matched, backoff wait and OAuth2 token fetch, at
// debug level, secrets masked. Every line names the integration and, but
// for a token fetch, the step; durations are milliseconds, as floats named
// duration_ms and wait_ms (the unit of the results' duration_ms). The
// lines are logged with the lead's context, so a handler that reads ids
// from it (plumb's own adds the request and lead ids, the trace and span)
// ties each line to its lead. It is one adapter of engine.Events (see also
// engine/prommetrics, engine/oteltrace, engine/observe), public so that an
// embedder gets the lines `plumb run -v` prints:
//
//	l := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
//	plan, err := engine.Load("integration.yaml", engine.WithLogger(l), engine.WithEvents(eventlog.New(l)))
//
// engine.WithLogger keeps the engine's own warnings (TLS verification off,
// a circuit breaker changing state, a cache that could not be written).
package eventlog

import (
	"context"
	"log/slog"
	"math"
	"time"

	"github.com/plumbhq/plumb/engine"
)

// New returns Events that log to l at debug level. Nothing is formatted
// when l does not log debug lines.
func New(l *slog.Logger) engine.Events { return &logger{l: l} }

type logger struct {
	engine.NopEvents
	l *slog.Logger
}

// TryEnd logs "attempt": integration, step, method, url, status,
// duration_ms, attempt and error.
func (g *logger) TryEnd(ctx context.Context, e engine.TryEnd) {
	if !g.l.Enabled(ctx, slog.LevelDebug) {
		return
	}
	var err any
	if e.Err != "" {
		err = e.Err
	}
	g.l.LogAttrs(ctx, slog.LevelDebug, "attempt", slog.String("integration", e.Integration),
		slog.String("step", e.Step), slog.String("method", e.Method), slog.String("url", e.URL),
		slog.Int("status", e.Status), slog.Float64("duration_ms", millis(e.Duration)), slog.Int("attempt", e.Attempt),
		slog.Any("error", err))
}

// Retry logs "rule": integration, step, attempt, action, rule and reason.
func (g *logger) Retry(ctx context.Context, e engine.Retry) {
	g.l.LogAttrs(ctx, slog.LevelDebug, "rule", slog.String("integration", e.Integration), slog.String("step", e.Step),
		slog.Int("attempt", e.Attempt), slog.String("action", e.Action), slog.String("rule", e.Rule), slog.String("reason", e.Reason))
}

// Backoff logs "backoff": integration, step, attempt and wait_ms.
func (g *logger) Backoff(ctx context.Context, e engine.Backoff) {
	g.l.LogAttrs(ctx, slog.LevelDebug, "backoff", slog.String("integration", e.Integration), slog.String("step", e.Step),
		slog.Int("attempt", e.Attempt), slog.Float64("wait_ms", millis(e.Wait)))
}

// TokenFetch logs "token fetch": integration, url, status and duration_ms.
func (g *logger) TokenFetch(ctx context.Context, e engine.TokenFetch) {
	g.l.LogAttrs(ctx, slog.LevelDebug, "token fetch", slog.String("integration", e.Integration), slog.String("url", e.URL),
		slog.Int("status", e.Status), slog.Float64("duration_ms", millis(e.Duration)))
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}
