package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"

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
never loaded whole; a row (NDJSON line or CSV record) may be up to 8 MiB.
A malformed or longer row is reported as an error result naming its
line, and the other rows still run; a CSV quote that is never closed makes
the rest unreadable (exit 2, naming the line where it opened). Reading
from stdin (--leads -), each result is written as soon as it is known.

--dry-run renders every lead's requests (secrets masked) and prints them
instead of sending anything; --output json or ndjson prints them as JSON.

Batches: when the integration has batch: steps, at least the largest batch
size of leads run at once (max of --concurrency and the size), so batches
fill up; when the input ends (or reading stops on an error or an interrupt)
the last, partial batches are sent as soon as every running lead waits in
one, instead of waiting out their wait:.

--cache FILE keeps the answers that fallback cache: links and response
cache: sections reuse in a bbolt database file, so a later run can answer
from them; only one plumb process can use the file at a time. The file is
checked when opened: a damaged one is refused (exit 2) unless
--cache-bad=move, which renames it to FILE.corrupt-TIME and starts empty.
Without -v, warnings (a cache write that failed, the cache file removed
during the run) are shown once on stderr and counted at the end.
--token-dir DIR is where OAuth2 authorization_code tokens from
'plumb auth login' are read (default $PLUMB_TOKEN_DIR, else
<user config dir>/plumb/tokens).

-v logs every HTTP attempt on stderr; -vv also prints every request and
response in full with a timing breakdown. --log-format json (or text) and
--log-level write slog lines instead, each naming the integration, the lead
(its start order in this run: 1, 2, …) and the step: every try at debug,
each lead's end at info. Durations are in milliseconds (duration_ms).

Traces: with OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) set, each
lead's span, its steps' and tries' are sent over OTLP/HTTP
(docs/service.md#logs-and-traces lists the variables).

Exit status: 0 every lead ran and none ended in error (failure and skip are
normal outcomes), 1 some lead ended in error (including malformed rows),
2 bad usage, integration, settings or input file, 130 interrupted by
SIGINT (Ctrl-C) or SIGTERM: the leads read so far are finished or
cancelled and reported, and the output is complete (a JSON array is
closed).`

// runFlags are the flags of plumb run.
type runFlags struct {
	lead, leads, leadsFormat string
	settingsFlags
	storeFlags
	concurrency int
	maxErrors   int
	output      string
	verbose     verbosity
	logs        logFlags
	dryRun      bool
	metricsAddr string
}

func runCmd(ctx context.Context, s *stdio, args []string) int {
	fs := newFlagSet(s, "run", "[flags] INTEGRATION.yaml", runDoc)
	var f runFlags
	fs.StringVar(&f.lead, "lead", "", "run one lead: a JSON object in `FILE` (- for stdin)")
	fs.StringVar(&f.leads, "leads", "", "run every lead of `FILE`, NDJSON or CSV (- for stdin)")
	fs.StringVar(&f.leadsFormat, "leads-format", "auto", "format of --leads: auto (.csv is CSV, else NDJSON), ndjson or csv")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://`HOST:PORT`/metrics during the run")
	f.settingsFlags.register(fs)
	f.storeFlags.register(fs)
	fs.IntVar(&f.concurrency, "concurrency", 1, "run up to `N` leads at once (at least the largest batch: size of the integration)")
	fs.IntVar(&f.maxErrors, "max-errors", 0, "stop after `N` leads in a row could not reach the partner (connection, timeout, TLS, open breaker); the rest of the input is reported as not run (0: never stop)")
	fs.StringVar(&f.output, "output", "text", "output format: text, json (one array) or ndjson (one result per line)")
	f.verbose.register(fs)
	f.logs.register(fs, "", "", "log lines on stderr as `text` (logfmt) or json, each naming the integration, lead and step (default: warnings only, once each, unless -v or --log-level)",
		"log `level` on stderr: debug (every try), info (each lead's end), warn or error (default warn; debug with -v)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "print the rendered requests of every lead without sending anything")
	pos, err := parseArgs(s, fs, args)
	if err != nil {
		return exitForParse(err)
	}
	bad := usageError(s, "run")
	file, problem := f.check(pos)
	if problem != "" {
		return bad("%s", problem)
	}

	tuneGC(batchGCPercent)
	single := f.lead != ""
	// the progress line is on stderr; every other write to the terminal
	// erases it first
	prog := newProgress(s.stderr, !single && !f.dryRun && isTerminal(s.stderr))
	opts, warns, log, err := f.logs.runLogging(prog.guard(s.stderr), f.verbose)
	if err != nil {
		return bad("%v", err)
	}
	// the exporter stops after the runner is closed (defers run last first)
	tr, stopTracing, err := startTracing(s, "plumb", log)
	if err != nil {
		return bad("%v", err)
	}
	defer stopTracing()
	opts = append(opts, traceOptions(tr)...)
	setup := &planSetup{s: s, cmd: "run", file: file}
	defer setup.close()
	if f.metricsAddr != "" {
		m, stop, err := serveMetrics(s, f.metricsAddr)
		if err != nil {
			s.errorf("run: --metrics-addr: %v", err)
			return ExitUsage
		}
		defer stop()
		opts = append(opts, engine.WithEvents(m))
	}
	if !setup.load(&f.storeFlags, opts...) || !setup.resolve(&f.settingsFlags) {
		return ExitUsage
	}
	plan, settings := setup.plan, setup.settings

	name := f.leads
	if single {
		name = f.lead
	}
	src, closeSrc, err := openLeads(s, name, single, f.leadsFormat)
	if err != nil {
		s.errorf("run: %v", err)
		return ExitUsage
	}
	defer closeSrc()
	if f.dryRun {
		return dryRunLeads(s, settings, src, f.output)
	}

	out := newOutput(f.output, prog.guard(s.stdout), prog.guard(s.stderr))
	prog.size = inputSize(src)
	stream := !single && name == "-"
	sum := newSummary()
	// Batches fill up only when enough leads wait in them at once.
	workers := max(f.concurrency, plan.BatchSize())
	// leads from a pipe may come one at a time: then each result goes out
	// as soon as it is known
	emit := emitter(sum, out, prog, stream)
	var stop *stopper
	if f.maxErrors > 0 {
		stop = &stopper{max: f.maxErrors}
		emit = stop.watch(emit)
	}
	readErr, emitErr, interrupted := runLeads(ctx, settings, src, workers, stop, emit)
	prog.clear()
	if emitErr == nil {
		emitErr = out.finish(sum)
	}
	warns.report(s.stderr)
	if stop.stopped() {
		s.errorf("run: stopped after %d leads in a row could not reach the partner (--max-errors %d): %s after them not run, reported as errors (class canceled)",
			f.maxErrors, f.maxErrors, plural(stop.notRun, "lead"))
	}
	switch {
	case emitErr != nil:
		s.errorf("run: writing results: %v", emitErr)
		return ExitUsage
	case readErr != nil:
		s.errorf("run: reading leads from %s: %v (the leads before it were run and reported)", name, readErr)
		return ExitUsage
	case interrupted:
		s.errorf("run: interrupted after %s; the rest of the input was not read", plural(sum.total, "lead"))
		return ExitInterrupt
	case ctx.Err() != nil:
		// the whole input was read, but leads still running were cut short
		s.errorf("run: interrupted after %s; the leads still running were cancelled", plural(sum.total, "lead"))
		return ExitInterrupt
	case sum.counts[engine.Error] > 0:
		return ExitLeadError
	}
	return ExitOK
}

// check reads the integration argument and checks the flags together;
// problem is empty when they are usable.
func (f *runFlags) check(pos []string) (file, problem string) {
	file, problem = integrationArg(pos)
	switch {
	case problem != "":
	case (f.lead == "") == (f.leads == ""):
		problem = "give exactly one of --lead FILE or --leads FILE"
	case f.concurrency < 1:
		problem = fmt.Sprintf("--concurrency must be at least 1, got %d", f.concurrency)
	case f.maxErrors < 0:
		problem = fmt.Sprintf("--max-errors must be 0 (never stop) or more, got %d", f.maxErrors)
	case f.output != "text" && f.output != "json" && f.output != "ndjson":
		problem = fmt.Sprintf("--output must be text, json or ndjson, got %q", f.output)
	case f.leadsFormat != "auto" && f.leadsFormat != "ndjson" && f.leadsFormat != "csv":
		problem = fmt.Sprintf("--leads-format must be auto, ndjson or csv, got %q", f.leadsFormat)
	case f.lead == "-" && f.leads == "-":
		problem = "only one input can read stdin"
	}
	return file, problem
}

// GC targets when GOGC is not set. Go's default of 100, with its 4 MiB
// minimum heap, collects every few MB allocated when the live heap is
// small, and each collection scans the whole live heap.
//
// batchGCPercent is plumb run's, bench's and sync's: their live heap is a
// megabyte or two (the compiled plan, bounded by the concurrency and the
// reorder buffer otherwise), so 400 collects a quarter as often as 100
// for about 8 MiB of peak RSS (BENCHMARKS.md: CPU per lead of the
// three-step flow 6–7 % lower than at 200, 41 → 48 MiB peak).
const batchGCPercent = 400

// serveGCPercent is plumb serve's: its live heap (the embedded NATS
// server, the history index, answers in flight) is tens of MB, which a
// higher target would multiply (BENCHMARKS.md: 200 against 100, CPU per
// /run lead 162 → 139 µs, peak RSS 89.6 → 113 MiB).
const serveGCPercent = 200

// memoryLimit is the soft memory limit of plumb run, bench, sync and
// serve when GOMEMLIMIT is not set. The live data is bounded by the
// runner's response memory budget (answers being read and what running
// leads captured from them, engine.DefaultResponseMemory) plus RunAll's
// reorder buffer (64 MiB); a GC target of 400 alone would let the heap
// grow to five times that before a collection. Near the limit the GC
// collects harder instead.
const memoryLimit = 1 << 30

// tuneGC sets the GC target percent and memoryLimit unless the user chose
// with GOGC and GOMEMLIMIT.
func tuneGC(percent int) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(percent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
}

// runLeads runs every lead of src through runner.RunAll with up to n leads
// in flight and calls emit for each result in input order, from the calling
// goroutine. Leads are read only as workers free up; results finished
// behind a slow lead wait in RunAll's reorder buffer (bounded in bytes).
// Malformed rows become error results without running. When ctx is done,
// reading stops; the leads already read still get a result (the engine
// ends them quickly) and interrupted is true. If emit fails, reading stops
// and its error is returned as emitErr.
//
// With stop (--max-errors), a lead is read only while fewer than n read
// leads have no result emitted yet, so the stop is decided on every result
// before it: at n = 1 no lead starts once the one before it made the run
// stop (RunAll reads the next lead as soon as one is handed to a worker).
func runLeads(ctx context.Context, runner *engine.Runner, src leadSource, n int, stop *stopper, emit func(item, *engine.Result) error) (readErr, emitErr error, interrupted bool) {
	var (
		mu       sync.Mutex
		items    = map[int]item{} // read, not yet emitted
		srcErr   error
		complete bool
		slots    chan struct{} // with stop: one per lead read and not emitted
		done     = make(chan struct{})
	)
	defer close(done)
	if stop != nil {
		slots = make(chan struct{}, n)
	}
	leads := func(yield func(map[string]any, error) bool) {
		for i := 0; ; i++ {
			if slots != nil {
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					return
				case <-done:
					return
				}
			}
			it, err := src.Next()
			if err != nil {
				mu.Lock()
				if err == io.EOF {
					complete = true
				} else {
					srcErr = err
				}
				mu.Unlock()
				return
			}
			if it.err == nil && stop.stopped() {
				it.notRun = stop.err()
			}
			mu.Lock()
			items[i] = it
			mu.Unlock()
			bad := it.err
			if it.notRun != nil {
				bad = it.notRun // not run: RunAll gives it an error result in its place
			}
			if !yield(it.lead, bad) {
				return
			}
		}
	}
	for i, res := range runner.RunAll(ctx, leads, engine.RunAllOptions{Concurrency: n}) {
		mu.Lock()
		it := items[i]
		delete(items, i)
		mu.Unlock()
		switch {
		case it.err != nil:
			res.Reason = it.err.Error()
		case it.notRun != nil:
			res.Reason, res.Class, res.Err, res.Lead = it.notRun.Error(), engine.ClassCanceled, it.notRun, it.lead
		}
		emitErr = emit(it, res)
		if slots != nil {
			<-slots
		}
		if emitErr != nil {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return srcErr, emitErr, !complete && srcErr == nil && emitErr == nil && ctx.Err() != nil
}

// stopper is --max-errors: it watches the results in input order and,
// after max leads in a row that could not reach the partner, stops the
// run: the leads read after that are not run but each reported as an
// error, so every lead of the input has a result.
type stopper struct {
	max    int
	row    int // leads in a row that could not reach the partner
	notRun int // leads reported as not run
	done   atomic.Bool
}

// unreachable tells the classes that mean the partner could not be
// reached at all.
func unreachable(c engine.Class) bool {
	switch c {
	case engine.ClassConnection, engine.ClassTimeout, engine.ClassTLS, engine.ClassBreaker:
		return true
	}
	return false
}

// watch counts each result before emit writes it.
func (s *stopper) watch(emit func(item, *engine.Result) error) func(item, *engine.Result) error {
	return func(it item, r *engine.Result) error {
		switch {
		case it.notRun != nil:
			s.notRun++
		case r.Outcome == engine.Error && unreachable(r.Class):
			if s.row++; s.row >= s.max {
				s.done.Store(true)
			}
		default:
			s.row = 0
		}
		return emit(it, r)
	}
}

// stopped reports whether the run stopped (false for a nil stopper).
func (s *stopper) stopped() bool { return s != nil && s.done.Load() }

// err is the reason of a lead not run.
func (s *stopper) err() error {
	return fmt.Errorf("not run: stopped after %d leads in a row could not reach the partner (--max-errors %d)", s.max, s.max)
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
