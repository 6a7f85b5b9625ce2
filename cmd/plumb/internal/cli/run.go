package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/plumbhq/plumb/engine"
)

const runDoc = `
Run an integration for one lead (--lead) or for every lead of a file
(--leads), and print what became of each lead in input order, then a
summary (counts per outcome, p50/p95/p99 latency).

Settings are resolved in this order: --sandbox (base_url only), --set,
--settings file, the environment variable a setting declares with env:,
its default.

Leads files: NDJSON (one JSON object per line, blank lines ignored) or CSV
with a header row (cells are strings; a column named a.b makes a nested
field), chosen by the .csv extension or --leads-format. They are streamed,
never loaded whole. A malformed row is reported as an error result naming
its line, and the other rows still run.

Exit status: 0 every lead ran and none ended in error (failure and skip are
normal outcomes), 1 some lead ended in error (including malformed rows),
2 bad usage, integration, settings or input file, 130 interrupted.`

// runFlags are the flags of plumb run.
type runFlags struct {
	lead, leads, leadsFormat string
	settings                 string
	set                      setFlags
	concurrency              int
	output                   string
	sandbox, verbose         bool
}

// setFlags collects repeated --set key=value flags.
type setFlags []string

func (f *setFlags) String() string { return strings.Join(*f, ",") }

func (f *setFlags) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("want key=value, got %q", v)
	}
	*f = append(*f, v)
	return nil
}

func runCmd(ctx context.Context, s *stdio, args []string) int {
	fs := newFlagSet(s, "run", "[flags] INTEGRATION.yaml", runDoc)
	var f runFlags
	fs.StringVar(&f.lead, "lead", "", "run one lead: a JSON object in `FILE` (- for stdin)")
	fs.StringVar(&f.leads, "leads", "", "run every lead of `FILE`, NDJSON or CSV (- for stdin)")
	fs.StringVar(&f.leadsFormat, "leads-format", "auto", "format of --leads: auto (.csv is CSV, else NDJSON), ndjson or csv")
	fs.StringVar(&f.settings, "settings", "", "read setting values from a YAML or JSON `FILE`")
	fs.Var(&f.set, "set", "set a setting: `key=value` (repeatable; overrides --settings)")
	fs.IntVar(&f.concurrency, "concurrency", 1, "run up to `N` leads at once")
	fs.StringVar(&f.output, "output", "text", "output format: text, json (one array) or ndjson (one result per line)")
	fs.BoolVar(&f.sandbox, "sandbox", false, "serve the examples' fake partner API on 127.0.0.1 and point the base_url setting at it")
	fs.BoolVar(&f.verbose, "verbose", false, "log every HTTP attempt to stderr (secrets masked)")
	pos, err := parseArgs(s, fs, args)
	if err != nil {
		return exitForParse(err)
	}
	bad := func(format string, args ...any) int {
		s.errorf("run: "+format, args...)
		fmt.Fprintln(s.stderr, "Run 'plumb run -h' for usage.")
		return ExitUsage
	}
	switch {
	case len(pos) == 0:
		return bad("no integration file given")
	case len(pos) > 1:
		return bad("one integration file at a time, got %d: %s", len(pos), strings.Join(pos, " "))
	case (f.lead == "") == (f.leads == ""):
		return bad("give exactly one of --lead FILE or --leads FILE")
	case f.concurrency < 1:
		return bad("--concurrency must be at least 1, got %d", f.concurrency)
	case f.output != "text" && f.output != "json" && f.output != "ndjson":
		return bad("--output must be text, json or ndjson, got %q", f.output)
	case f.leadsFormat != "auto" && f.leadsFormat != "ndjson" && f.leadsFormat != "csv":
		return bad("--leads-format must be auto, ndjson or csv, got %q", f.leadsFormat)
	case f.lead == "-" && f.leads == "-":
		return bad("only one input can read stdin")
	}

	var opts []engine.Option
	if f.verbose {
		opts = append(opts, engine.WithLogger(slog.New(slog.NewTextHandler(s.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	plan, err := engine.Load(pos[0], opts...)
	if err != nil {
		fmt.Fprintln(s.stderr, err.Error())
		return ExitUsage
	}
	given, err := givenSettings(plan, f.settings, f.set)
	if err != nil {
		s.errorf("run: %v", err)
		return ExitUsage
	}
	if f.sandbox {
		if _, ok := plan.Integration().Settings.Get("base_url"); !ok {
			s.errorf("run: --sandbox: %s declares no base_url setting to point at the sandbox", pos[0])
			return ExitUsage
		}
		url, stop, err := startSandbox()
		if err != nil {
			s.errorf("run: %v", err)
			return ExitUsage
		}
		defer stop()
		given["base_url"] = url
	}
	settings, err := plan.Settings(given, s.env)
	if err != nil {
		fmt.Fprintln(s.stderr, err.Error())
		return ExitUsage
	}

	name, single := f.leads, false
	if f.lead != "" {
		name, single = f.lead, true
	}
	src, closeSrc, err := openLeads(s, name, single, f.leadsFormat)
	if err != nil {
		s.errorf("run: %v", err)
		return ExitUsage
	}
	defer closeSrc()

	out := newOutput(f.output, s.stdout, s.stderr, settings.Redact)
	prog := newProgress(s.stderr, !single && isTerminal(s.stderr))
	sum := newSummary()
	readErr, emitErr, interrupted := runLeads(ctx, plan, settings, src, f.concurrency, func(it item, r *engine.Result) error {
		sum.add(it, r)
		if err := out.result(it, r); err != nil {
			return err
		}
		if prog.due() {
			// results reach the terminal before the line is redrawn under them
			prog.clear()
			if err := out.flush(); err != nil {
				return err
			}
			prog.update(sum)
		}
		return nil
	})
	prog.clear()
	if emitErr == nil {
		emitErr = out.finish(sum)
	}
	switch {
	case emitErr != nil:
		s.errorf("run: writing results: %v", emitErr)
		return ExitUsage
	case readErr != nil:
		s.errorf("run: reading leads from %s: %v (the leads before it were run and reported)", name, readErr)
		return ExitUsage
	case interrupted:
		s.errorf("run: interrupted after %d leads; the rest of the input was not read", sum.total)
		return ExitInterrupt
	case sum.counts[engine.Error] > 0:
		return ExitLeadError
	}
	return ExitOK
}

// givenSettings merges the --settings file and the --set flags. A --set
// value is taken verbatim for string, number and bool settings (the engine
// converts it to the declared type) and parsed as YAML for list and object
// settings.
func givenSettings(plan *engine.Plan, file string, sets []string) (map[string]any, error) {
	given := map[string]any{}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--settings: %w", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("--settings %s: %w", file, err)
		}
		for k, v := range m {
			given[k] = v
		}
	}
	decls := plan.Integration().Settings
	for _, kv := range sets {
		k, v, _ := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		given[k] = v
		if d, ok := decls.Get(k); ok && d != nil && (d.Type == "list" || d.Type == "object") {
			var x any
			if err := yaml.Unmarshal([]byte(v), &x); err != nil {
				return nil, fmt.Errorf("--set %s: %w", k, err)
			}
			given[k] = x
		}
	}
	return given, nil
}

// runLeads runs plan for every lead of src with up to n leads in flight and
// calls emit for each result in input order, from the calling goroutine.
// Memory is bounded by n: at most 2n leads are read ahead of the oldest one
// still running. Malformed rows become error results without running.
// When ctx is done, reading stops; the leads already read still get a
// result (the engine ends them quickly) and interrupted is true. If emit
// fails, reading stops and its error is returned as emitErr.
func runLeads(ctx context.Context, plan *engine.Plan, settings engine.Settings, src leadSource, n int, emit func(item, *engine.Result) error) (readErr, emitErr error, interrupted bool) {
	type job struct {
		item
		res  *engine.Result
		done chan struct{}
	}
	stop, cancelRead := context.WithCancel(ctx)
	defer cancelRead()
	order := make(chan *job, 2*n)
	work := make(chan *job)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				j.res = plan.Run(ctx, j.lead, settings)
				close(j.done)
			}
		}()
	}
	var srcErr error
	var stopped bool
	go func() {
		defer close(order)
		defer close(work)
		for {
			if stop.Err() != nil {
				stopped = true
				return
			}
			it, err := src.Next()
			if err != nil {
				if err != io.EOF {
					srcErr = err
				}
				return
			}
			j := &job{item: it, done: make(chan struct{})}
			if it.err != nil {
				j.res = &engine.Result{Outcome: engine.Error, Reason: it.err.Error(), Steps: []engine.StepResult{}}
				close(j.done)
				order <- j
				continue
			}
			order <- j
			work <- j
		}
	}()
	for j := range order {
		<-j.done
		if emitErr != nil {
			continue
		}
		if emitErr = emit(j.item, j.res); emitErr != nil {
			cancelRead()
		}
	}
	wg.Wait()
	return srcErr, emitErr, stopped && ctx.Err() != nil
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
