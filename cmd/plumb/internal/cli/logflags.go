package cli

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"time"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/engine/eventlog"
	"github.com/plumbhq/plumb/engine/oteltrace"
	"github.com/plumbhq/plumb/internal/telemetry"
)

// logFlags are --log-format and --log-level of plumb run and plumb serve.
type logFlags struct {
	format, level string
}

// register adds the flags with their defaults ("" for plumb run: not
// given).
func (f *logFlags) register(fs *flag.FlagSet, format, level, formatHelp, levelHelp string) {
	f.format, f.level = format, level
	fs.StringVar(&f.format, "log-format", format, formatHelp)
	fs.StringVar(&f.level, "log-level", level, levelHelp)
}

// given reports whether plumb run was asked for log lines.
func (f logFlags) given() bool { return f.format != "" || f.level != "" }

// logger makes the logger the flags ask for on w; level is used when
// --log-level is not given.
func (f logFlags) logger(w io.Writer, level slog.Level) (*slog.Logger, error) {
	if f.level != "" {
		l, err := telemetry.ParseLevel(f.level)
		if err != nil {
			return nil, err
		}
		level = l
	}
	format := f.format
	if format == "" {
		format = telemetry.FormatText
	}
	return telemetry.NewLogger(w, format, level)
}

// runLogging is the engine options of plumb run's logs on w. Without
// --log-format and --log-level they are -v's (verbose.go): warnings once
// each, or every try as text. With either, slog lines of that format at
// that level (default warn; debug with -v): every try at debug, each
// lead's end at info, warnings, each naming the integration, the lead
// (its start order in the run) and the step. It also returns the logger
// for other warnings (the trace exporter's).
func (f logFlags) runLogging(w io.Writer, v verbosity) ([]engine.Option, *warnings, *slog.Logger, error) {
	if !f.given() {
		opts, warns := v.options(w)
		l := v.logger(w)
		if l == nil {
			l = slog.New(warns)
		}
		return opts, warns, l, nil
	}
	level := slog.LevelWarn
	if v > 0 {
		level = slog.LevelDebug
	}
	l, err := f.logger(w, level)
	if err != nil {
		return nil, nil, nil, err
	}
	opts := []engine.Option{engine.WithLogger(l), engine.WithEvents(telemetry.Events(l)), engine.WithEvents(eventlog.New(l))}
	return append(opts, v.exchanges(w)...), nil, l, nil
}

// startTracing starts the OTLP trace exporter the OTEL_* variables ask for
// (nil when they ask for none), and the stop to defer: it sends the spans
// not sent yet, within 10 s.
func startTracing(s *stdio, service string, log *slog.Logger) (*telemetry.Tracing, func(), error) {
	tr, err := telemetry.FromEnv(telemetry.Lookup(s.env), service, log)
	if err != nil || tr == nil {
		return nil, func() {}, err
	}
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := tr.Shutdown(ctx); err != nil {
			log.Warn("sending the last spans failed", "endpoint", tr.Endpoint, "err", err)
		}
	}
	return tr, stop, nil
}

// traceOptions records a plan's spans with tr (none when nil), each
// lead's carrying its lead id (telemetry.Events numbers the leads unless
// the logging options already did).
func traceOptions(tr *telemetry.Tracing) []engine.Option {
	if tr == nil {
		return nil
	}
	return []engine.Option{engine.WithEvents(telemetry.Events(nil)), engine.WithEvents(oteltrace.New(tr.Provider, false))}
}
