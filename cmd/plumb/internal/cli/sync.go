package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/source"
	"github.com/plumbhq/plumb/steps"
)

const syncDoc = `
Pull the records of the integration's source: section page by page and run
each one through its steps as the lead, then print what became of each
record and the same summary as plumb run. The sync state (the incremental
cursor, where an unfinished sync goes on, counts) and a retry list of the
records whose steps ended in error are kept in a bbolt state file.

The state of a page is saved only once every record of the page has an
outcome, so a sync that is killed goes on from the first page whose records
were not all handled (at-least-once: records of that page run again; look
records up before creating them). Records that ended in error are kept in
the retry list and run again, first, by the next sync, until they end in
success, failure or skip. The next sync's first request reads the highest
cursor_field value seen (minus lookback) as state.cursor.

--state FILE is the state file (default: the integration file's name with
.sync.db instead of .yaml, beside it). Only one sync can use a state file
at a time. --reset forgets the state and the retry list first; --from
CURSOR starts a new sync whose requests read CURSOR as state.cursor (an
unfinished sync is not resumed; the saved cursor only moves forward).

A page that cannot be fetched or read (a 4xx, a next link to another
host) ends the sync in error; the pages before it are saved and every
later sync tries that page again. Fix the cause and sync again, or:
--skip-page skips it (with page or offset pagination the sync goes on at
the page after it; with cursor, next_url or link pagination the pages after
it are reached only through it, so the sync starts over from page one);
--restart starts over from page one at the saved cursor. Both keep the
cursor, the retry list and the counts.

Records are streamed: one page, the records running and the results
waiting to be printed in order are in memory, whatever the number of
records. The output is flushed (and fsynced, when it is a file) before each
save of the state: after a crash it holds every record of every saved page.
On a terminal, a progress line shows pages, records and the rate.
Ctrl-C (or SIGTERM) stops after the page being worked on: its records
finish, the state is saved, the output is complete; a second Ctrl-C
cancels the records still running (they go to the retry list only if their
page is saved).

'plumb sync status [--state FILE] INTEGRATION.yaml' prints the saved
state: the cursor, where an unfinished sync goes on, the last sync's pages,
records and errors and when it ended, and the retry list. While a sync runs
it reads the state as of that sync's last save.

Exit status: 0 the sync completed (or stopped at max_pages) and no record
ended in error, 1 some record ended in error or a page could not be fetched
or read (the work before it is saved), 2 bad usage, integration, settings or
state file, 130 interrupted.`

type syncFlags struct {
	settingsFlags
	storeFlags
	state       string
	reset       bool
	from        string
	skipPage    bool
	restart     bool
	concurrency int
	output      string
	verbose     verbosity
}

// defaultStateFile is FILE with .sync.db instead of its extension.
func defaultStateFile(file string) string {
	return strings.TrimSuffix(file, filepath.Ext(file)) + ".sync.db"
}

func syncCmd(ctx context.Context, s *stdio, args []string) int {
	if len(args) > 0 && args[0] == "status" {
		return syncStatusCmd(s, args[1:])
	}
	f, file, code := parseSyncFlags(s, args)
	if f == nil {
		return code
	}
	tuneGC(batchGCPercent)
	setup := &planSetup{s: s, cmd: "sync", file: file}
	defer setup.close()
	opts, warns := f.verbose.options(s.stderr)
	if !setup.load(&f.storeFlags, opts...) {
		return ExitUsage
	}
	spec, code := compileSpec(s, setup.plan)
	if spec == nil {
		return code
	}
	if !setup.resolve(&f.settingsFlags) {
		return ExitUsage
	}
	store, ok := openSyncStore(s, f, file, spec.Key)
	if !ok {
		return ExitUsage
	}
	defer store.Close()
	work, stop, release := watchInterrupts(ctx, s)
	defer release()
	j := &syncJob{s: s, f: f, setup: setup, spec: spec, store: store}
	res := j.run(work, stop)
	warns.report(s.stderr)
	return j.exit(res)
}

// parseSyncFlags parses plumb sync's flags and checks them: the flags and
// the integration file, or nil and the exit code.
func parseSyncFlags(s *stdio, args []string) (*syncFlags, string, int) {
	fs := newFlagSet(s, "sync", "[flags] INTEGRATION.yaml | status [--state FILE] INTEGRATION.yaml", syncDoc)
	f := &syncFlags{}
	fs.StringVar(&f.state, "state", "", "keep the sync state in the bbolt `FILE` (default: INTEGRATION.sync.db beside the integration)")
	fs.BoolVar(&f.reset, "reset", false, "forget the saved state and retry list first: sync from the start")
	fs.StringVar(&f.from, "from", "", "start a new sync whose requests read `CURSOR` as state.cursor")
	fs.BoolVar(&f.skipPage, "skip-page", false, "skip the page an unfinished sync goes on at (one that fails at every sync); keeps the cursor and the retry list")
	fs.BoolVar(&f.restart, "restart", false, "start over from page one at the saved cursor, not where an unfinished sync stopped; keeps the cursor and the retry list")
	f.settingsFlags.register(fs)
	f.storeFlags.register(fs)
	fs.IntVar(&f.concurrency, "concurrency", 1, "run up to `N` records at once (at least the largest batch: size of the integration)")
	fs.StringVar(&f.output, "output", "text", "output format: text, json (one array) or ndjson (one result per line)")
	f.verbose.register(fs)
	pos, err := parseArgs(s, fs, args)
	if err != nil {
		return nil, "", exitForParse(err)
	}
	bad := usageError(s, "sync")
	file, problem := integrationArg(pos)
	switch {
	case problem != "":
		return nil, "", bad("%s", problem)
	case f.concurrency < 1:
		return nil, "", bad("--concurrency must be at least 1, got %d", f.concurrency)
	case f.output != "text" && f.output != "json" && f.output != "ndjson":
		return nil, "", bad("--output must be text, json or ndjson, got %q", f.output)
	case countSet(f.reset, f.from != "", f.skipPage, f.restart) > 1:
		return nil, "", bad("give one of --reset, --from, --skip-page and --restart (each decides where the sync starts)")
	}
	return f, file, ExitOK
}

// openSyncStore opens the state file of --state (default: beside the
// integration file) and, with --reset, forgets the source key's state.
func openSyncStore(s *stdio, f *syncFlags, file, key string) (*source.Store, bool) {
	if f.state == "" {
		f.state = defaultStateFile(file)
	}
	store, err := source.OpenStore(f.state)
	if err != nil {
		s.errorf("sync: %v", err)
		return nil, false
	}
	if f.reset {
		if err := store.Reset(context.Background(), key); err != nil {
			store.Close()
			s.errorf("sync: --reset: %v", err)
			return nil, false
		}
	}
	return store, true
}

// watchInterrupts watches for Ctrl-C and SIGTERM: the first closes stop
// (the sync stops after the current page), the second cancels the
// returned context (the records still running). The end of ctx counts as
// a first interrupt. release stops the watch.
func watchInterrupts(ctx context.Context, s *stdio) (work context.Context, stop <-chan struct{}, release func()) {
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stopped := make(chan struct{})
	var stopOnce sync.Once
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	watchDone := make(chan struct{})
	go func() {
		n, done := 0, ctx.Done()
		for {
			select {
			case <-sigs:
				n++
			case <-done:
				done = nil
			case <-watchDone:
				return
			}
			stopOnce.Do(func() {
				close(stopped)
				s.errorf("sync: stopping after the page being worked on (its state is then saved); interrupt again to cancel its records")
			})
			if n >= 2 {
				cancel()
			}
		}
	}()
	return work, stopped, func() {
		close(watchDone)
		signal.Stop(sigs)
		cancel()
	}
}

// syncJob is one plumb sync once its integration, settings and state file
// are ready.
type syncJob struct {
	s     *stdio
	f     *syncFlags
	setup *planSetup
	spec  *source.Spec
	store *source.Store
}

// syncResult is what a sync that ran left to report.
type syncResult struct {
	rep *source.Report
	sum *summary
	// err is Sync's error; emitErr the error writing the results
	err, emitErr error
}

// run runs the sync, printing each record's result, and finishes the
// output.
func (j *syncJob) run(work context.Context, stop <-chan struct{}) syncResult {
	opt := source.Options{Concurrency: max(j.f.concurrency, j.setup.plan.BatchSize()), SkipPage: j.f.skipPage, Restart: j.f.restart, Stop: stop}
	if j.f.from != "" {
		opt.From = j.f.from
	}
	out := newOutput(j.f.output, j.s.stdout, j.s.stderr)
	prog := &syncProgress{progress: newProgress(j.s.stderr, isTerminal(j.s.stderr))}
	opt.OnPage = prog.page
	sum := newSummary()
	emit := emitter(sum, out, prog, false)
	// the results reach the output (and the disk) before the state that
	// counts them as done
	durable := fileSyncer(j.s.stdout)
	opt.Flush = func() error {
		if err := out.flush(); err != nil {
			return err
		}
		return durable()
	}
	rep, err := source.Sync(work, j.setup.settings, j.spec, j.store, opt, func(rec source.Record, r *engine.Result) error {
		return emit(item{index: rec.Index, lead: r.Lead}, r)
	})
	prog.clear()
	return syncResult{rep: rep, sum: sum, err: err, emitErr: finishSyncOutput(out, sum, rep)}
}

// finishSyncOutput ends the output with the summary, unless the sync
// ended because its results could not be written: then that error.
func finishSyncOutput(out output, sum *summary, rep *source.Report) error {
	if rep != nil && errors.Is(rep.Err, source.ErrWriteResults) {
		return rep.Err
	}
	return out.finish(sum)
}

// exit reports how the sync ended on stderr and returns the exit code.
func (j *syncJob) exit(res syncResult) int {
	s, redact, rep, err := j.s, j.setup.settings.Redact, res.rep, res.err
	if err != nil {
		s.errorf("sync: %v", err)
		if rep == nil {
			return ExitUsage
		}
	}
	if res.emitErr != nil {
		if errors.Is(res.emitErr, source.ErrWriteResults) {
			s.errorf("sync: %v", res.emitErr) // says "writing results" already
		} else {
			s.errorf("sync: writing results: %v", res.emitErr)
		}
		return ExitUsage
	}
	reportPosition(s, rep, redact)
	fmt.Fprintln(s.stderr, syncLine(rep, j.store.Path()))
	if err := j.store.SnapshotErr(); err != nil {
		s.errorf("sync: warning: the status snapshot %s could not be written (%v): plumb sync status could not show this sync's state while it ran", source.StatusPath(j.store.Path()), err)
	}
	if err != nil {
		return ExitUsage
	}
	return syncEnd(s, rep, res.sum, redact)
}

// syncEnd says why a sync that ran did not complete and returns the exit
// code.
func syncEnd(s *stdio, rep *source.Report, sum *summary, redact func(string) string) int {
	switch {
	case rep.Ended == "stopped" || rep.Ended == "canceled":
		s.errorf("sync: interrupted after %d pages; the state of the pages whose records all ran is saved", rep.Committed)
		return ExitInterrupt
	case rep.Err != nil:
		// a write error returned before: the page is not the cause
		s.errorf("sync: %s", termSafe(redact(rep.Err.Error())))
		if r := rep.State.Resume; r != nil {
			s.errorf("sync: the pages before page %d are saved; every sync tries page %d again: fix the cause and sync again, or skip the page with --skip-page, or start over from page one with --restart (both keep the cursor and the retry list)", r.Pages+1, r.Pages+1)
		}
		return ExitLeadError
	case sum.counts[engine.Error] > 0:
		return ExitLeadError
	}
	return ExitOK
}

// countSet counts the flags set.
func countSet(flags ...bool) int {
	n := 0
	for _, f := range flags {
		if f {
			n++
		}
	}
	return n
}

// fileSyncer returns what makes the writes to w durable: fsync when w is
// a regular file, else nothing (a pipe or a terminal has nothing to sync).
func fileSyncer(w io.Writer) func() error {
	f, ok := w.(*os.File)
	if !ok {
		return func() error { return nil }
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return func() error { return nil }
	}
	return f.Sync
}

// reportPosition says where a sync started when --skip-page or --restart
// moved it.
func reportPosition(s *stdio, rep *source.Report, redact func(string) string) {
	if sk := rep.Skipped; sk != nil {
		what := ""
		if sk.Token != "" {
			what = fmt.Sprintf(" (%s)", sk.Token)
		}
		line := fmt.Sprintf("sync: skipped page %d%s", sk.Pages+1, what)
		if rep.Restarted {
			line += "; the pages after it are reached only through it, so this sync started over from page one at the saved cursor"
		}
		fmt.Fprintln(s.stderr, termSafe(redact(line)))
	} else if rep.Restarted {
		fmt.Fprintln(s.stderr, "sync: started over from page one at the saved cursor")
	}
}

// loadSpec loads the integration and compiles its source: section.
func loadSpec(s *stdio, file string) (*source.Spec, int) {
	plan, err := engine.Load(file)
	if err != nil {
		fmt.Fprintln(s.stderr, err.Error())
		return nil, ExitUsage
	}
	return compileSpec(s, plan)
}

// compileSpec compiles the source: section of the loaded integration.
func compileSpec(s *stdio, plan *engine.Plan) (*source.Spec, int) {
	spec, err := source.Compile(plan)
	if err != nil {
		var list steps.ErrorList
		if errors.As(err, &list) {
			fmt.Fprintln(s.stderr, err.Error())
		} else {
			s.errorf("sync: %v (add one: see docs/format.md, Sources and sync)", err)
		}
		return nil, ExitUsage
	}
	return spec, ExitOK
}

// syncLine is the sync's own summary line.
func syncLine(rep *source.Report, path string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "sync: %s: %d pages, %d records", rep.Ended, rep.Pages, rep.Records)
	if rep.Retried > 0 {
		fmt.Fprintf(&b, ", %d retried", rep.Retried)
	}
	fmt.Fprintf(&b, ", %d errors", rep.Errors)
	if rep.State.Cursor != nil {
		fmt.Fprintf(&b, "; cursor %v", rep.State.Cursor)
	}
	if r := rep.State.Resume; r != nil {
		fmt.Fprintf(&b, "; next sync goes on at page %d", r.Pages+1)
	}
	if rep.Pending > 0 {
		fmt.Fprintf(&b, "; %d records in the retry list", rep.Pending)
	}
	fmt.Fprintf(&b, "; state saved in %s", path)
	return termSafe(b.String())
}

// syncProgress adds pages to the progress line.
type syncProgress struct {
	*progress
	mu    sync.Mutex
	pages int
}

func (p *syncProgress) page(info source.PageInfo) {
	p.mu.Lock()
	p.pages = info.Number
	p.mu.Unlock()
}

func (p *syncProgress) update(s *summary) {
	p.mu.Lock()
	pages := p.pages
	p.mu.Unlock()
	p.last = time.Now()
	rate := float64(s.total) / time.Since(p.started).Seconds()
	p.draw(fmt.Sprintf("page %d, %d records: %d success, %d failure, %d error, %d skip (%.0f records/s)",
		pages, s.total, s.counts[engine.Success], s.counts[engine.Failure], s.counts[engine.Error], s.counts[engine.Skip], rate))
}

func syncStatusCmd(s *stdio, args []string) int {
	fs := newFlagSet(s, "sync status", "[--state FILE] [--output text|json] INTEGRATION.yaml", "Print the saved sync state of an integration's source.")
	state := fs.String("state", "", "the state `FILE` (default: INTEGRATION.sync.db beside the integration)")
	output := fs.String("output", "text", "text or json")
	pos, err := parseArgs(s, fs, args)
	if err != nil {
		return exitForParse(err)
	}
	bad := usageError(s, "sync status")
	file, problem := integrationArg(pos)
	switch {
	case problem != "":
		return bad("%s", problem)
	case *output != "text" && *output != "json":
		return bad("--output must be text or json, got %q", *output)
	}
	spec, code := loadSpec(s, file)
	if spec == nil {
		return code
	}
	if *state == "" {
		*state = defaultStateFile(file)
	}
	if _, err := os.Stat(*state); err != nil {
		s.errorf("sync status: %s: no state file (no sync has run with it)", *state)
		return ExitUsage
	}
	// never the sync's lock: while a sync holds the file, its snapshot
	st, err := source.ReadStatus(*state, spec.Key)
	if err != nil {
		s.errorf("sync status: %v", err)
		return ExitUsage
	}
	if *output == "json" {
		b, _ := json.MarshalIndent(struct {
			Source string `json:"source"`
			File   string `json:"file"`
			source.State
			Retry   int  `json:"retry"`
			Live    bool `json:"live,omitempty"`
			Running bool `json:"running,omitempty"`
			PID     int  `json:"pid,omitempty"`
		}{spec.Key, *state, st.State, st.Retry, st.Live, st.Running, st.PID}, "", "  ")
		fmt.Fprintf(s.stdout, "%s\n", b)
		return ExitOK
	}
	writeStatus(s.stdout, spec.Key, *state, st)
	return ExitOK
}

func writeStatus(w io.Writer, key, path string, status source.Status) {
	st := status.State
	fmt.Fprintf(w, "%s in %s\n", key, path)
	switch {
	case status.Running:
		fmt.Fprintf(w, "  running:   a sync (pid %d) is running; the state as of its last save, %s\n", status.PID, status.Saved.UTC().Format(time.RFC3339))
	case status.Live:
		fmt.Fprintf(w, "  in use:    another process (pid %d) holds the state file; the state as of %s\n", status.PID, status.Saved.UTC().Format(time.RFC3339))
	}
	if st.Updated.IsZero() {
		fmt.Fprintln(w, "  no sync yet")
		return
	}
	if st.Cursor != nil {
		fmt.Fprintf(w, "  cursor:    %v\n", termSafe(fmt.Sprint(st.Cursor)))
	} else {
		fmt.Fprintln(w, "  cursor:    none")
	}
	if r := st.Resume; r != nil {
		fmt.Fprintf(w, "  resume:    an unfinished sync goes on at page %d", r.Pages+1)
		if r.Token != "" {
			fmt.Fprintf(w, " (%s)", termSafe(r.Token))
		}
		fmt.Fprintln(w)
	}
	ended := st.Ended
	if ended == "" {
		ended = "running or killed"
	}
	fmt.Fprintf(w, "  last sync: %s, %d pages, %d records, %d errors, saved %s\n", termSafe(ended), st.Last.Pages, st.Last.Records, st.Last.Errors, st.Updated.UTC().Format(time.RFC3339))
	if r := st.Resume; r != nil && strings.HasPrefix(st.Ended, "error") {
		fmt.Fprintf(w, "  next:      every sync tries page %d again: fix the cause, or plumb sync --skip-page skips it, --restart starts over from page one (both keep the cursor and the retry list)\n", r.Pages+1)
	}
	fmt.Fprintf(w, "  total:     %d pages, %d records, %d errors\n", st.Total.Pages, st.Total.Records, st.Total.Errors)
	fmt.Fprintf(w, "  retry:     %d records\n", status.Retry)
}
