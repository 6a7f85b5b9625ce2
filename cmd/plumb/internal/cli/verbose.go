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

// logger returns the attempt logger for the verbosity: nil below 1.
func (v verbosity) logger(w io.Writer) *slog.Logger {
	if v < 1 {
		return nil
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// options returns the engine options for the verbosity, writing to w.
func (v verbosity) options(w io.Writer) []engine.Option {
	var opts []engine.Option
	if l := v.logger(w); l != nil {
		opts = append(opts, engine.WithLogger(l))
	}
	if v >= 2 {
		p := &exchangePrinter{w: w}
		opts = append(opts, engine.WithObserver(func(_ context.Context, ex *engine.Exchange) { p.print(ex, "") }))
	}
	return opts
}

// exchangePrinter writes HTTP tries for people, one at a time.
type exchangePrinter struct {
	mu sync.Mutex
	w  io.Writer
}

// print writes ex: the request line, headers and body, then the response
// status, headers and body (raw), the timing breakdown and the rule's
// action. Secrets are already masked in ex. label, if set, is shown with
// the step.
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
	fmt.Fprintf(&b, "> %s %s  (%s, %sattempt %d)\n", ex.Method, ex.URL, who, kind, ex.Attempt)
	writeHeader(&b, "> ", ex.RequestHeader)
	writeBody(&b, "> ", ex.RequestBody)
	if ex.Err != "" {
		fmt.Fprintf(&b, "< error: %s\n", ex.Err)
	} else {
		fmt.Fprintf(&b, "< %d %s\n", ex.Status, http.StatusText(ex.Status))
		writeHeader(&b, "< ", ex.ResponseHeader)
		writeBody(&b, "< ", ex.ResponseBody)
	}
	t := ex.Timing
	fmt.Fprintf(&b, "  timing: dns %s, connect %s, tls %s, first byte %s, total %s\n",
		phase(t.DNS), phase(t.Connect), phase(t.TLS), phase(t.FirstByte), fmtDur(time.Duration(t.Total)))
	if ex.Action != "" {
		fmt.Fprintf(&b, "  action: %s\n", ex.Action)
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
			fmt.Fprintf(b, "%s%s: %s\n", prefix, k, v)
		}
	}
}

func writeBody(b *strings.Builder, prefix, body string) {
	if body == "" {
		return
	}
	b.WriteString(strings.TrimRight(prefix, " ") + "\n")
	for _, line := range strings.Split(strings.TrimRight(body, "\n"), "\n") {
		b.WriteString(prefix + line + "\n")
	}
}
