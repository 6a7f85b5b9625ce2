// Package telemetry joins plumb's logs and traces: the ids a request or a
// lead carries in its context (request id, lead id, integration; the step
// is the engine's, engine.StepName) and the slog.Handler that writes them,
// with the trace and span ids, on every line logged with that context; the
// engine.Events adapter that puts the integration there as a lead runs; request ids (Valid, NewRequestID);
// and the OTLP trace exporter of `plumb serve` and `plumb run`, configured
// from the standard OTEL_* variables (FromEnv).
//
// It is internal: the engine links no OpenTelemetry (engine/deps_test.go),
// and the public adapters (engine/oteltrace, engine/eventlog) know nothing
// of plumb serve's ids. Durations are logged in one unit: milliseconds, as a
// float named KEY_ms (the unit of the results' duration_ms).
package telemetry

import (
	"context"
	"math"
	"time"

	"github.com/nats-io/nuid"
)

// The keys the ids are logged under.
const (
	KeyRequestID   = "request_id"
	KeyLead        = "lead_id"
	KeyIntegration = "integration"
	KeyStep        = "step"
	KeyTraceID     = "trace_id"
	KeySpanID      = "span_id"
)

// ids are the ids of a context, copied on each change (contexts are
// immutable).
type ids struct {
	requestID, lead, integration string
}

type ctxKey struct{}

func idsOf(ctx context.Context) *ids {
	v, _ := ctx.Value(ctxKey{}).(*ids)
	return v
}

func with(ctx context.Context, set func(*ids)) context.Context {
	var n ids
	if old := idsOf(ctx); old != nil {
		n = *old
	}
	set(&n)
	return context.WithValue(ctx, ctxKey{}, &n)
}

// WithRequestID returns ctx carrying the request id id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return with(ctx, func(i *ids) { i.requestID = id })
}

// WithLead returns ctx carrying the lead id id.
func WithLead(ctx context.Context, id string) context.Context {
	return with(ctx, func(i *ids) { i.lead = id })
}

// WithIntegration returns ctx carrying the integration's name.
func WithIntegration(ctx context.Context, name string) context.Context {
	return with(ctx, func(i *ids) { i.integration = name })
}

// RequestID is the request id ctx carries ("" for none).
func RequestID(ctx context.Context) string {
	if i := idsOf(ctx); i != nil {
		return i.requestID
	}
	return ""
}

// Lead is the lead id ctx carries ("" for none).
func Lead(ctx context.Context) string {
	if i := idsOf(ctx); i != nil {
		return i.lead
	}
	return ""
}

// MaxRequestID bounds a client's request id.
const MaxRequestID = 128

// ValidRequestID reports whether a client's X-Request-Id can be trusted as
// it is: 1 to MaxRequestID bytes of A-Z a-z 0-9 and - _ . : + = / @. Other
// values (too long, spaces, control characters, quotes, non-ASCII) are
// replaced, never logged: they would let a client forge log lines or
// bloat every line of its leads.
func ValidRequestID(id string) bool {
	if id == "" || len(id) > MaxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == ':' || c == '+' || c == '=' || c == '/' || c == '@':
		default:
			return false
		}
	}
	return true
}

// NewRequestID makes a request id: 22 random base-62 characters.
func NewRequestID() string { return nuid.Next() }

// Millis is d in milliseconds, to the microsecond: the one unit of
// durations in plumb's logs (and results).
func Millis(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}
