package engine

import (
	"context"
	"net/http"
	"slices"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// WithTracing records OpenTelemetry spans with tp: one per lead
// ("plumb.lead"), a child per step ("plumb.step") and a grandchild per HTTP
// try ("plumb.try", with method, masked URL, status and attempt). With
// propagate, each try also sends the W3C traceparent header, so the
// partner's spans join the trace. plumb links no exporter: tp comes from
// the embedder (a TracerProvider of go.opentelemetry.io/otel/sdk/trace
// with the exporter of their choice).
func WithTracing(tp trace.TracerProvider, propagate bool) Option {
	return func(o *options) {
		o.tracerProvider = tp
		o.propagate = propagate
	}
}

const tracerName = "github.com/plumbhq/plumb/engine"

// span starts a span when the plan traces; end is never nil.
func (p *Plan) span(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, func(outcome Outcome, class Class, reason string)) {
	if p.tracer == nil {
		return ctx, func(Outcome, Class, string) {}
	}
	// a copy, so attrs does not escape: without a tracer the caller's
	// variadic slice stays on its stack (no allocation per lead, step, try)
	ctx, sp := p.tracer.Start(ctx, name, trace.WithAttributes(slices.Clone(attrs)...))
	return ctx, func(outcome Outcome, class Class, reason string) {
		sp.SetAttributes(attribute.String("plumb.outcome", string(outcome)))
		if class != "" {
			sp.SetAttributes(attribute.String("plumb.class", string(class)))
		}
		if outcome == Error {
			sp.SetStatus(codes.Error, reason)
		}
		sp.End()
	}
}

// inject adds the trace context to an outgoing request, when asked to.
func (p *Plan) inject(ctx context.Context, h http.Header) {
	if p.tracer != nil && p.propagate {
		propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))
	}
}
