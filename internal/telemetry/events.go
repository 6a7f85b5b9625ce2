package telemetry

import (
	"context"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/plumbhq/plumb/engine"
)

// Events returns engine.Events that put the integration (at LeadStart) in
// the context the engine runs the lead with, so every line the engine and
// its adapters log there names it, and the step the engine puts there
// (through a Handler). A lead whose context has no lead id gets one from a counter of
// this Events: 1, 2, … in the order leads start (plumb run's leads have no
// id of their own; plumb serve sets its own before running a lead). With
// done, each lead's end is logged there as "lead done": at info, or warn
// when it ended in error.
func Events(done *slog.Logger) engine.Events { return &events{done: done} }

type events struct {
	engine.NopEvents
	leads atomic.Int64
	done  *slog.Logger
}

// LeadStart implements engine.Events.
func (ev *events) LeadStart(ctx context.Context, e engine.LeadStart) context.Context {
	return with(ctx, func(i *ids) {
		i.integration = e.Integration
		if i.lead == "" {
			i.lead = strconv.FormatInt(ev.leads.Add(1), 10)
		}
	})
}

// LeadEnd implements engine.Events.
func (ev *events) LeadEnd(ctx context.Context, e engine.LeadEnd) {
	if ev.done == nil {
		return
	}
	LogLeadEnd(ctx, ev.done, e.Outcome, e.Class, e.Reason, e.Step, e.Duration, slog.String(KeyIntegration, e.Integration))
}

// LogLeadEnd logs a lead's end as "lead done" — outcome, class, reason,
// the step that decided it and duration_ms, after the attributes first —
// at info, or warn when it ended in error.
func LogLeadEnd(ctx context.Context, l *slog.Logger, outcome engine.Outcome, class engine.Class, reason, step string, d time.Duration, first ...slog.Attr) {
	level := slog.LevelInfo
	if outcome == engine.Error {
		level = slog.LevelWarn
	}
	if !l.Enabled(ctx, level) {
		return
	}
	attrs := append(AppendLeadEnd(first, outcome, class, reason, step), slog.Float64("duration_ms", Millis(d)))
	l.LogAttrs(ctx, level, "lead done", attrs...)
}

// AppendLeadEnd appends what a line says of a lead's end: its outcome,
// then its class, reason and deciding step when it has them.
func AppendLeadEnd(attrs []slog.Attr, outcome engine.Outcome, class engine.Class, reason, step string) []slog.Attr {
	attrs = append(attrs, slog.String("outcome", string(outcome)))
	if class != "" {
		attrs = append(attrs, slog.String("class", string(class)))
	}
	if reason != "" {
		attrs = append(attrs, slog.String("reason", reason))
	}
	if step != "" {
		attrs = append(attrs, slog.String(KeyStep, step))
	}
	return attrs
}
