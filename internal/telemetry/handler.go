package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"

	"github.com/plumbhq/plumb/engine"
)

// Handler is a slog.Handler that adds the ids of a record's context to it
// — request_id, lead_id, integration, step, trace_id and span_id, each when
// the context has it and the line does not already name it — and writes
// every duration attribute KEY as KEY_ms, in milliseconds (Millis). Lines
// logged without a context (Info instead of InfoContext) get no ids.
type Handler struct {
	next slog.Handler
	// keys named by WithAttrs (outside any group): not added again
	keys []string
	// grouped: attributes go into a group; keys are then not compared
	grouped bool
	// flush, when set, writes what the writer beneath holds: after each
	// line at warn or above (NewLogger on a LineWriter)
	flush func() error
}

// NewHandler wraps next. A next that is already a *Handler is returned as
// it is.
func NewHandler(next slog.Handler) *Handler {
	if h, ok := next.(*Handler); ok {
		return h
	}
	return &Handler{next: next}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	n := &Handler{next: h.next.WithAttrs(millisAll(as)), keys: h.keys, grouped: h.grouped, flush: h.flush}
	if !h.grouped {
		n.keys = append(h.keys[:len(h.keys):len(h.keys)], keysOf(as)...)
	}
	return n
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &Handler{next: h.next.WithGroup(name), keys: h.keys, grouped: true, flush: h.flush}
}

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	err := h.handle(ctx, r)
	if h.flush != nil && r.Level >= slog.LevelWarn {
		if ferr := h.flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h *Handler) handle(ctx context.Context, r slog.Record) error {
	var buf [16]slog.Attr // the ids, then the line's own: no allocation for them
	ctxAttrs := h.ctxAttrs(ctx, buf[:0])
	if len(ctxAttrs) == 0 && !hasDuration(r) {
		return h.next.Handle(ctx, r)
	}
	nids := len(ctxAttrs)
	all := ctxAttrs
	r.Attrs(func(a slog.Attr) bool {
		all = append(all, millis(a))
		return true
	})
	own := all[nids:]
	k := 0
	for _, a := range all[:nids] {
		if !h.named(a.Key, own) {
			all[k] = a
			k++
		}
	}
	all = append(all[:k], own...) // copy within: own moves down over the ids named already
	n := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	n.AddAttrs(all...)
	return h.next.Handle(ctx, n)
}

// ctxAttrs appends the ids ctx carries to out.
func (h *Handler) ctxAttrs(ctx context.Context, out []slog.Attr) []slog.Attr {
	if ctx == nil {
		return out
	}
	if i := idsOf(ctx); i != nil {
		for _, kv := range [...][2]string{{KeyRequestID, i.requestID}, {KeyLead, i.lead}, {KeyIntegration, i.integration}} {
			if kv[1] != "" {
				out = append(out, slog.String(kv[0], kv[1]))
			}
		}
	}
	if step := engine.StepName(ctx); step != "" {
		out = append(out, slog.String(KeyStep, step))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		out = append(out, slog.String(KeyTraceID, sc.TraceID().String()), slog.String(KeySpanID, sc.SpanID().String()))
	}
	return out
}

// named reports whether the line already has key: its own attributes or
// the logger's (With).
func (h *Handler) named(key string, own []slog.Attr) bool {
	if h.grouped {
		return false
	}
	for _, k := range h.keys {
		if k == key {
			return true
		}
	}
	for _, a := range own {
		if a.Key == key {
			return true
		}
	}
	return false
}

func keysOf(as []slog.Attr) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.Key)
	}
	return out
}

func hasDuration(r slog.Record) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		k := a.Value.Kind()
		found = k == slog.KindDuration || k == slog.KindGroup || k == slog.KindLogValuer
		return !found
	})
	return found
}

// millis writes a duration attribute KEY as KEY_ms in milliseconds, in
// groups too.
func millis(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindDuration:
		return slog.Float64(a.Key+"_ms", Millis(v.Duration()))
	case slog.KindGroup:
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(millisAll(v.Group())...)}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func millisAll(as []slog.Attr) []slog.Attr {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = millis(a)
	}
	return out
}

// Formats of NewLogger.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// NewLogger makes plumb's logger: text (logfmt) or JSON lines on w at
// level and above, through a Handler. On a LineWriter, each line at warn
// or above is written at once, with the lines held before it.
func NewLogger(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch format {
	case FormatText:
		h = slog.NewTextHandler(w, opts)
	case FormatJSON:
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("log format %q: want text or json", format)
	}
	th := NewHandler(h)
	if lw, ok := w.(*LineWriter); ok {
		th.flush = lw.Flush
	}
	return slog.New(th), nil
}

// ParseLevel reads debug, info, warn or error (any case).
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	switch strings.ToLower(s) {
	case "debug", "info", "warn", "error":
	default:
		return l, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	err := l.UnmarshalText([]byte(s))
	return l, err
}
