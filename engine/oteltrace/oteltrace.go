// Package oteltrace records what a plan's runners do as OpenTelemetry
// spans: one per lead ("plumb.lead"), a child per step ("plumb.step") and a
// grandchild per HTTP try ("plumb.try", with method, masked URL, status and
// attempt), and can send the W3C traceparent header to partners so their
// spans join the trace. It is an adapter of engine.Events, public because
// embedders trace with it, and its own package so that a program that does
// not trace does not link OpenTelemetry. plumb links no exporter: the
// TracerProvider comes from the embedder (go.opentelemetry.io/otel/sdk/trace
// with the exporter of their choice).
//
//	plan, err := engine.Load("integration.yaml", engine.WithEvents(oteltrace.New(tp, true)))
package oteltrace

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/plumbhq/plumb/engine"
)

// Name is the instrumentation scope of the spans.
const Name = "github.com/plumbhq/plumb/engine"

// New returns Events that record spans with tp. With propagate, each try
// also sends the W3C traceparent header (the Events are then an
// engine.HeaderInjector). The spans of a plan are ended through the
// contexts the engine hands back, so give a plan one tracer.
func New(tp trace.TracerProvider, propagate bool) engine.Events {
	t := &tracer{t: tp.Tracer(Name)}
	if propagate {
		return propagating{t}
	}
	return t
}

type tracer struct {
	engine.NopEvents
	t trace.Tracer
}

// LeadStart starts the lead's span.
func (t *tracer) LeadStart(ctx context.Context, e engine.LeadStart) context.Context {
	ctx, _ = t.t.Start(ctx, "plumb.lead", trace.WithAttributes(attribute.String("plumb.integration", e.Integration)))
	return ctx
}

// LeadEnd ends it with the lead's outcome.
func (t *tracer) LeadEnd(ctx context.Context, e engine.LeadEnd) {
	end(trace.SpanFromContext(ctx), e.Outcome, e.Class, e.Reason)
}

// StepStart starts the step's span.
func (t *tracer) StepStart(ctx context.Context, e engine.StepStart) context.Context {
	ctx, _ = t.t.Start(ctx, "plumb.step", trace.WithAttributes(attribute.String("plumb.step", e.Step)))
	return ctx
}

// StepEnd ends it with the step's outcome.
func (t *tracer) StepEnd(ctx context.Context, e engine.StepEnd) {
	end(trace.SpanFromContext(ctx), e.Outcome, e.Class, e.Reason)
}

// TryStart starts the try's span.
func (t *tracer) TryStart(ctx context.Context, e engine.TryStart) context.Context {
	ctx, _ = t.t.Start(ctx, "plumb.try", trace.WithAttributes(attribute.String("http.request.method", e.Method),
		attribute.String("url.full", e.URL), attribute.Int("plumb.attempt", e.Attempt)))
	return ctx
}

// TryEnd ends it with the status, as a success when the partner answered
// and an error when it did not.
func (t *tracer) TryEnd(ctx context.Context, e engine.TryEnd) {
	sp := trace.SpanFromContext(ctx)
	sp.SetAttributes(attribute.Int("http.response.status_code", e.Status))
	what := engine.Success
	if e.Err != "" {
		what = engine.Error
	}
	end(sp, what, "", e.Err)
}

// end sets a span's outcome, class and status, and ends it.
func end(sp trace.Span, outcome engine.Outcome, class engine.Class, reason string) {
	sp.SetAttributes(attribute.String("plumb.outcome", string(outcome)))
	if class != "" {
		sp.SetAttributes(attribute.String("plumb.class", string(class)))
	}
	if outcome == engine.Error {
		sp.SetStatus(codes.Error, reason)
	}
	sp.End()
}

// propagating is a tracer that sends the trace context to partners.
type propagating struct{ *tracer }

// InjectHeaders adds the try's traceparent to its request.
func (p propagating) InjectHeaders(ctx context.Context, h http.Header) {
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))
}
