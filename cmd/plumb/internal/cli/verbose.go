package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/engine/eventlog"
	"github.com/plumbhq/plumb/engine/observe"
	"github.com/plumbhq/plumb/internal/telemetry"
	"github.com/plumbhq/plumb/internal/termtext"
)

// verbosity counts -v flags: 1 logs every HTTP attempt, 2 (-vv or -v -v)
// also prints every request and response in full.
type verbosity int

func (v *verbosity) String() string { return strconv.Itoa(int(*v)) }

// Set takes the value of -v/--verbose: true adds one level, false resets.
func (v *verbosity) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false, got %q", s)
	}
	if b {
		*v++
	} else {
		*v = 0
	}
	return nil
}

// IsBoolFlag lets -v stand without a value.
func (v *verbosity) IsBoolFlag() bool { return true }

// vvFlag is -vv: two levels at once.
type vvFlag struct{ v *verbosity }

func (f vvFlag) String() string { return "" }

func (f vvFlag) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false, got %q", s)
	}
	if b {
		*f.v += 2
	}
	return nil
}

func (f vvFlag) IsBoolFlag() bool { return true }

func (v *verbosity) register(fs *flag.FlagSet) {
	fs.Var(v, "verbose", "log every HTTP attempt to stderr: method, URL, status, duration, attempt, rule applied (secrets masked)")
	fs.Var(v, "v", "same as --verbose; give it twice (or -vv) to also print full requests and responses")
	fs.Var(vvFlag{v}, "vv", "print every request and response in full on stderr, with timings (secrets masked)")
}

// logger returns the attempt logger for the verbosity: nil below 1. Its
// lines name the integration, the lead (its start order) and the step
// (telemetry.Handler, with the telemetry.Events of options).
func (v verbosity) logger(w io.Writer) *slog.Logger {
	if v < 1 {
		return nil
	}
	return slog.New(telemetry.NewHandler(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})))
}

// options returns the engine options for the verbosity, writing to w.
// Below -v the engine's warnings still reach w, each message once (see
// warnings); the returned warnings is nil from -v on.
func (v verbosity) options(w io.Writer) ([]engine.Option, *warnings) {
	var opts []engine.Option
	var warn *warnings
	if l := v.logger(w); l != nil {
		opts = append(opts, engine.WithLogger(l), engine.WithEvents(telemetry.Events(nil)), engine.WithEvents(eventlog.New(l)))
	} else {
		warn = newWarnings(w)
		opts = append(opts, engine.WithLogger(slog.New(warn)))
	}
	return append(opts, v.exchanges(w)...), warn
}

// exchanges prints every try whole on w from -vv on.
func (v verbosity) exchanges(w io.Writer) []engine.Option {
	if v < 2 {
		return nil
	}
	p := &exchangePrinter{w: w}
	return []engine.Option{engine.WithEvents(observe.New(func(_ context.Context, ex *engine.Exchange) { p.print(ex, "") }))}
}

// warnings is the engine's log without -v: a slog.Handler that prints
// warnings and errors (a cache write that failed, the cache file removed
// during the run) on stderr as `plumb: warning: …`, each message only the
// first time, and counts every occurrence for report. Without it such
// problems would pass silently unless -v was given; with a line per lead
// they would drown the output.
type warnings struct {
	*warnState
	attrs []slog.Attr
	group string
}

type warnState struct {
	mu     sync.Mutex
	w      io.Writer
	counts map[string]int
	order  []string
}

func newWarnings(w io.Writer) *warnings {
	return &warnings{warnState: &warnState{w: w, counts: map[string]int{}}}
}

// Enabled implements slog.Handler: warnings and errors.
func (h *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

// Handle implements slog.Handler.
func (h *warnings) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.counts[r.Message]
	h.counts[r.Message] = n + 1
	if n > 0 {
		return nil
	}
	h.order = append(h.order, r.Message)
	var b strings.Builder
	b.WriteString("plumb: warning: " + r.Message)
	attr := func(a slog.Attr) bool {
		if h.group != "" {
			a.Key = h.group + "." + a.Key
		}
		fmt.Fprintf(&b, " %s=%s", a.Key, quoteLogValue(a.Value.String()))
		return true
	}
	for _, a := range h.attrs {
		attr(a)
	}
	r.Attrs(attr)
	b.WriteString(" (further occurrences are counted, not shown; -v shows each)\n")
	_, err := io.WriteString(h.w, b.String())
	return err
}

func quoteLogValue(s string) string {
	if s == "" || strings.ContainsAny(s, " \"=\\") || strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// WithAttrs implements slog.Handler.
func (h *warnings) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(slices.Clip(h.attrs), as...)
	return &c
}

// WithGroup implements slog.Handler.
func (h *warnings) WithGroup(name string) slog.Handler {
	c := *h
	if c.group != "" {
		name = c.group + "." + name
	}
	c.group = name
	return &c
}

// report writes, for each warning that happened more than once, how many
// times it did. It writes nothing when there were none.
func (h *warnings) report(w io.Writer) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.order {
		if n := h.counts[m]; n > 1 {
			fmt.Fprintf(w, "plumb: warning: %s: %d times in this run\n", m, n)
		}
	}
}

// exchangePrinter writes HTTP tries for people, one at a time.
type exchangePrinter struct {
	mu sync.Mutex
	w  io.Writer
}

// print writes ex: the request line, headers and body, then the response
// status, headers and body (as received, with control characters escaped:
// dumpSafe), the timing breakdown and the rule's action. Secrets are
// already masked in ex. label, if set, is shown with the step.
func (p *exchangePrinter) print(ex *engine.Exchange, label string) {
	var b strings.Builder
	who := ex.Step
	if label != "" {
		who = label + ": " + who
	}
	kind := ""
	if ex.Fallback {
		kind = "fallback "
	}
	fmt.Fprintf(&b, "> %s %s  (%s, %sattempt %d)\n", dumpSafe(ex.Method, false), dumpSafe(ex.URL, false), dumpSafe(who, false), kind, ex.Attempt)
	writeHeader(&b, "> ", ex.RequestHeader)
	writeBody(&b, "> ", ex.RequestBody)
	if ex.Err != "" {
		fmt.Fprintf(&b, "< error: %s\n", dumpSafe(ex.Err, false))
	} else {
		fmt.Fprintf(&b, "< %d %s\n", ex.Status, http.StatusText(ex.Status))
		writeHeader(&b, "< ", ex.ResponseHeader)
		writeBody(&b, "< ", ex.ResponseBody)
	}
	t := ex.Timing
	fmt.Fprintf(&b, "  timing: dns %s, connect %s, tls %s, first byte %s, total %s\n",
		phase(t.DNS), phase(t.Connect), phase(t.TLS), phase(t.FirstByte), fmtDur(time.Duration(t.Total)))
	if ex.Action != "" {
		fmt.Fprintf(&b, "  action: %s\n", dumpSafe(ex.Action, false))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = io.WriteString(p.w, b.String())
}

func phase(d engine.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmtDur(time.Duration(d))
}

func writeHeader(b *strings.Builder, prefix string, h http.Header) {
	for _, k := range slices.Sorted(maps.Keys(h)) {
		for _, v := range h[k] {
			fmt.Fprintf(b, "%s%s: %s\n", prefix, dumpSafe(k, false), dumpSafe(v, false))
		}
	}
}

func writeBody(b *strings.Builder, prefix, body string) {
	if body == "" {
		return
	}
	b.WriteString(strings.TrimRight(prefix, " ") + "\n")
	for _, line := range strings.Split(strings.TrimRight(dumpSafe(body, true), "\n"), "\n") {
		b.WriteString(prefix + line + "\n")
	}
}

// dumpSafe is s as the exchange dumps (-vv, plumb try) show it on a
// terminal (termtext.Escape): newlines kept when lines is true (a body,
// each of whose lines gets the dump's prefix), else escaped.
func dumpSafe(s string, lines bool) string { return termtext.Escape(s, lines) }
