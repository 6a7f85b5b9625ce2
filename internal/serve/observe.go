package serve

// Logs and traces that join up: every request gets a request id (the
// client's X-Request-Id when it is safe, else a new one), echoed on the
// answer; an incoming W3C traceparent is continued; one access line is
// logged per request. The ids travel in the request's context to every
// log line (through telemetry.Handler) and span of the request and its
// leads, and in a queued lead's job headers to its worker.
// docs/service.md#logs-and-traces is the reference.

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/queue"
	"github.com/plumbhq/plumb/internal/telemetry"
)

// HeaderRequestID is the header a client names its request with, and the
// answer echoes.
const HeaderRequestID = "X-Request-Id"

// maxLoggedPath bounds the path on an access line.
const maxLoggedPath = 256

// access is what the handlers tell the access line about a request.
type access struct {
	route string // the route's pattern, "webhook", "console" or "(refused)"
	code  string // the error code of a request refused at the front
	// lead is the lead a /run request ran: its end goes on the access
	// line, which is its only line (no "lead done" of its own)
	lead *leadEnd
}

// leadEnd is what the access line of a /run request says of its lead.
type leadEnd struct {
	id, integration string
	res             *engine.Result
}

// onAccessLine puts the end of a /run request's lead on the request's
// access line, and reports whether it did: a lead run in the background
// (queue, webhook), or a second lead of one request, keeps its own line.
func onAccessLine(ctx context.Context, name, mode string, res *engine.Result) bool {
	a := accessOf(ctx)
	if a == nil || a.lead != nil || mode != "sync" {
		return false
	}
	a.lead = &leadEnd{id: telemetry.Lead(ctx), integration: name, res: res}
	return true
}

type accessKey struct{}

// accessOf is the request's access record (nil outside observe).
func accessOf(ctx context.Context) *access {
	a, _ := ctx.Value(accessKey{}).(*access)
	return a
}

// setRoute names the route of the request for its access line and span.
func setRoute(r *http.Request, route string) {
	if a := accessOf(r.Context()); a != nil {
		a.route = route
	}
}

// observe wraps the service's handler: request id, trace, access line.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(HeaderRequestID)
		if !telemetry.ValidRequestID(id) {
			id = telemetry.NewRequestID()
		}
		w.Header().Set(HeaderRequestID, id)
		ctx := telemetry.WithRequestID(r.Context(), id)
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(r.Header))
		a := &access{route: "(none)"}
		ctx = context.WithValue(ctx, accessKey{}, a)
		var span trace.Span
		if s.tracer != nil {
			ctx, span = s.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(attribute.String("http.request.method", r.Method)))
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(ctx))
		status := sw.code
		if status == 0 {
			status = http.StatusOK
		}
		if span != nil {
			span.SetName(r.Method + " " + a.route)
			span.SetAttributes(attribute.String("http.route", a.route), attribute.Int("http.response.status_code", status))
			if status >= 500 {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
			span.End()
		}
		s.accessLine(ctx, r, a, status, time.Since(start))
	})
}

// accessLine logs the request: at info, or warn when it was refused at
// the front or its lead (/run) ended in error; with Config.AccessLogSample
// N, 1 of N answered below 400. A /run request's line carries its lead's
// end (lead_id, integration, outcome, class, reason, step).
func (s *Server) accessLine(ctx context.Context, r *http.Request, a *access, status int, d time.Duration) {
	level := slog.LevelInfo
	if a.code != "" || a.lead != nil && a.lead.res.Outcome == engine.Error {
		level = slog.LevelWarn
	}
	if n := s.cfg.AccessLogSample; n > 1 && status < 400 && s.accessN.Add(1)%uint64(n) != 1 {
		return
	}
	if !s.log.Enabled(ctx, level) {
		return
	}
	p := r.URL.EscapedPath()
	if len(p) > maxLoggedPath {
		p = p[:maxLoggedPath] + "…"
	}
	attrs := []slog.Attr{slog.String("method", r.Method), slog.String("route", a.route), slog.String("path", p),
		slog.Int("status", status), slog.Float64("duration_ms", telemetry.Millis(d)), slog.String("remote", r.RemoteAddr)}
	if a.code != "" {
		attrs = append(attrs, slog.String("code", a.code))
	}
	if l := a.lead; l != nil {
		attrs = append(attrs, slog.String(telemetry.KeyLead, l.id), slog.String(telemetry.KeyIntegration, l.integration))
		attrs = telemetry.AppendLeadEnd(attrs, l.res.Outcome, l.res.Class, l.res.Reason, l.res.Step)
	}
	s.log.LogAttrs(ctx, level, "request", attrs...)
}

// jobTrace puts the request id and trace context of ctx on a job, for its
// worker.
func jobTrace(ctx context.Context, j *queue.Job) {
	j.RequestID = telemetry.RequestID(ctx)
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	j.TraceParent = c["traceparent"]
	if ts := c["tracestate"]; len(ts) <= maxTraceState {
		j.TraceState = ts
	}
}

// maxTraceState is the longest tracestate a job keeps (the W3C's
// recommended minimum to propagate; longer ones are dropped whole).
const maxTraceState = 512

// startJob gives a delivery's run its ids — the job id as the lead id, the
// request id and trace context it was accepted under — and, when tracing,
// a "plumb.job" span continuing that trace. end ends the span.
func (s *Server) startJob(ctx context.Context, d queue.Delivery) (_ context.Context, end func()) {
	ctx = telemetry.WithLead(ctx, d.ID)
	if telemetry.ValidRequestID(d.RequestID) {
		ctx = telemetry.WithRequestID(ctx, d.RequestID)
	}
	ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": d.TraceParent, "tracestate": d.TraceState})
	if s.tracer == nil {
		return ctx, func() {}
	}
	ctx, span := s.tracer.Start(ctx, "plumb.job", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("plumb.integration", d.Integration), attribute.String("plumb.kind", string(d.Kind)),
			attribute.Int("plumb.attempt", d.Attempt)))
	return ctx, func() { span.End() }
}

// logQueued logs each lead a POST /leads stored (or found stored: a
// duplicate), at info: with its "lead done" line, a queued lead's two lines.
func (s *Server) logQueued(ctx context.Context, name string, out []Accepted, errs []error) {
	if !s.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	for i, a := range out {
		if errs[i] == nil {
			s.log.LogAttrs(ctx, slog.LevelInfo, "lead queued", slog.String(telemetry.KeyLead, a.ID),
				slog.String(telemetry.KeyIntegration, name), slog.Bool("duplicate", a.Duplicate))
		}
	}
}

// sources name how a lead came in, by the metrics' mode.
var sources = map[string]string{"sync": "run", "async": "leads", "webhook": "webhook"}

// logLead logs a lead's end (telemetry.LogLeadEnd): at info, or warn
// when it ended in error. With the "lead queued" line of POST /leads these
// are a lead's lines at info; the engine's per-try lines are at debug.
func (s *Server) logLead(ctx context.Context, name, mode string, res *engine.Result) {
	telemetry.LogLeadEnd(ctx, s.log, res.Outcome, res.Class, res.Reason, res.Step, time.Duration(res.Duration),
		slog.String(telemetry.KeyIntegration, name), slog.String("source", sources[mode]))
}

// tracerFor is the tracer of the service's own spans (nil without a
// provider).
func tracerFor(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer("github.com/plumbhq/plumb/internal/serve")
}
