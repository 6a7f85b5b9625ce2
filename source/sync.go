package source

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/plumbhq/plumb/engine"
)

// Options tune a sync.
type Options struct {
	// Concurrency is how many records run through the steps at once
	// (default 1; raised to the largest batch size).
	Concurrency int
	// From, when not nil, starts a new sync whose requests read it as
	// state.cursor (an unfinished sync is not resumed).
	From any
	// Restart starts a new sync from page one whose requests read the
	// saved cursor (minus lookback) as state.cursor, as after a complete
	// sync: an unfinished sync is not resumed. The cursor, the retry list
	// and the counts are kept.
	Restart bool
	// Full starts a new sync from page one whose requests read
	// incremental.start as state.cursor (as the first sync did): every
	// record is read again. The retry list and the counts are kept.
	Full bool
	// SkipPage skips the page an unfinished sync goes on at (one that
	// cannot be fetched or read, say): with page or offset pagination the
	// sync goes on at the page after it; with cursor, next_url or link
	// pagination the pages after it are reached only through it, so the
	// sync starts over from page one as with Restart. Sync returns
	// ErrNothingToSkip when no unfinished sync is saved. At most one of
	// From, Restart, Full and SkipPage may be set.
	SkipPage bool
	// Stop, when closed, ends the sync after the page being worked on:
	// its records finish, its state is saved, no further page is fetched.
	// Cancelling the context instead cuts the running records short.
	Stop <-chan struct{}
	// OnPage is called (from the fetching goroutine) after each page
	// request.
	OnPage func(PageInfo)
	// Flush, when set, is called (from the calling goroutine) before each
	// save of the state, once every result of what is about to be saved
	// has been given to emit: a program that buffers its output writes it
	// out there, so that the saved state never runs ahead of the output
	// (after a crash, the output holds every record of every saved page;
	// the records of a page not yet saved may be in it too, and run again
	// next time). An error from Flush ends the sync as an error from emit
	// does, and nothing more is saved.
	Flush func() error
	// Now is the clock of the saved times (default time.Now).
	Now func() time.Time
}

// PageInfo describes one page request.
type PageInfo struct {
	Number   int // 1-based within the sync (counting resumed pages)
	Records  int
	URL      string
	Status   int
	Attempts int
	Outcome  engine.Outcome
}

// Record says where a result's record came from.
type Record struct {
	// Index is the 1-based position of the record in this sync.
	Index int
	// Page is the page it came from (counting resumed pages); 0 for a
	// record of the retry list.
	Page int
	// Retry marks a record from the retry list.
	Retry bool
}

// Report is what a sync did.
type Report struct {
	// Pages and Records count what this sync fetched; Committed the pages
	// whose state was saved.
	Pages, Records, Committed int
	// Retried counts the records run again from the retry list; Errors
	// the records that ended in error (kept in the retry list); Pending
	// the records in the retry list at the end.
	Retried, Errors, Pending int
	// Ended is complete, stopped (Options.Stop), max_pages, canceled
	// or error.
	Ended string
	// Err is why the sync ended in error: a page that failed, a records
	// path that is not a list, a cursor or next link that repeats or was
	// not followed (errors.Is engine.ErrNextLink), writing the results.
	Err error
	// Skipped is the unfinished sync's position that Options.SkipPage
	// skipped; Restarted is set when the sync started over from page one
	// (Options.Restart, or a skipped page the pages after it depend on).
	Skipped   *Resume
	Restarted bool
	// State is the state saved at the end.
	State State
}

// ErrLoop is the error (errors.Is) of a page whose cursor, next link or
// records repeat an earlier page's.
var ErrLoop = errors.New("pagination repeats itself")

// ErrNothingToSkip is returned by Sync with Options.SkipPage when no
// unfinished sync is saved.
var ErrNothingToSkip = errors.New("no unfinished sync is saved: there is no page to skip")

// Sync pulls the source's pages, runs each record through the runner's
// steps and calls emit with each result in order, from the calling
// goroutine. The runner must be bound from the plan spec was compiled
// from. The state is saved when the sync starts (State.Ended empty:
// running, or killed) and after each page whose records all have an
// outcome (after Options.Flush). The error is for the state store only (a
// sync that could not start or save); why a sync ended is in the report.
// The store's calls get ctx without its cancellation: a cancelled sync
// still saves how it ended.
func Sync(ctx context.Context, r *engine.Runner, spec *Spec, store StateStore, opt Options, emit func(Record, *engine.Result) error) (*Report, error) {
	if emit == nil {
		return nil, errors.New("source: Sync needs an emit function for the results")
	}
	s, err := newRun(context.WithoutCancel(ctx), r, spec, store, opt)
	if err != nil {
		return nil, err
	}
	s.fetchCtx, s.cancelFetch = context.WithCancel(ctx)
	defer s.cancelFetch()
	if opt.Stop != nil {
		go s.watchStop()
	}
	if err := s.begin(); err != nil {
		return nil, err
	}
	s.collect(ctx, emit)
	return s.finish(ctx)
}

// begin saves that a sync runs: Ended empty until it ends, its start
// (kept when it goes on with a killed sync's pages).
func (s *syncRun) begin() error {
	st := &s.state
	killed := st.Ended == "" && !st.Updated.IsZero()
	if !(killed && s.resumed) || st.Started.IsZero() {
		st.Started = s.now()
	}
	st.Last, st.Ended = Counts{}, ""
	st.Updated = s.now()
	if err := s.store.Commit(s.storeCtx, s.spec.Key, Commit{State: st}); err != nil {
		return fmt.Errorf("saving the sync state: %w", err)
	}
	return nil
}

// syncRun is one sync. Two goroutines work on it: the feeder (RunAll's,
// through leads) reads the retry list and the pages and hands their
// records to the steps; the collector (the calling goroutine, through
// collect) takes the results in order and saves the state at each point
// whose records all have one. They share only the ledger.
type syncRun struct {
	r        *engine.Runner
	spec     *Spec
	store    StateStore
	storeCtx context.Context // the store's calls: not cancelled with the sync
	opt      Options
	now      func() time.Time
	rep      *Report
	resumed  bool // the pages go on from a saved position

	// set by newRun, read-only after
	from        Resume         // where the pages start
	start       any            // the state.cursor of the sync's requests
	stateView   map[string]any // what the requests read as state.*
	fetchCtx    context.Context
	cancelFetch context.CancelFunc

	ledger ledger

	// the feeder's
	pushed int         // records handed to the steps
	high   any         // the highest cursor_field value so far
	seen   followed    // the cursors and links followed
	recent recentPages // the records' hashes of the last pages

	// the collector's
	state       State
	failed      map[string]Failed
	cleared     []string
	saveErr     error
	writeErr    error
	keepCleared bool // the retry list may hold a record that succeeds
}

// newRun checks what Sync was given, loads the state and works out where
// the pages start.
func newRun(storeCtx context.Context, r *engine.Runner, spec *Spec, store StateStore, opt Options) (*syncRun, error) {
	switch {
	case spec == nil || spec.plan == nil:
		return nil, errors.New("source: no source to sync: compile one with source.Compile")
	case r == nil || store == nil:
		return nil, errors.New("source: Sync needs a runner and a store")
	case r.Plan() != spec.plan:
		return nil, fmt.Errorf("source: the runner (integration %q) is not bound from the plan the source was compiled from: bind the plan of the file the source was compiled from", r.Plan().Name())
	}
	s := &syncRun{r: r, spec: spec, store: store, storeCtx: storeCtx, opt: opt, now: opt.Now, rep: &Report{},
		ledger: ledger{meta: map[int]recMeta{}}, failed: map[string]Failed{}, seen: followed{}}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.position(); err != nil {
		return nil, err
	}
	return s, nil
}

// watchStop drops the page being fetched when Options.Stop closes: its
// records were not started.
func (s *syncRun) watchStop() {
	select {
	case <-s.opt.Stop:
		s.cancelFetch()
	case <-s.fetchCtx.Done():
	}
}

// position loads the state and works out where the pages start.
func (s *syncRun) position() error {
	if countSet(s.opt.From != nil, s.opt.Restart, s.opt.Full, s.opt.SkipPage) > 1 {
		return errors.New("source: give at most one of Options.From, Restart, Full and SkipPage")
	}
	var err error
	if s.state, err = s.store.Load(s.storeCtx, s.spec.Key); err != nil {
		return err
	}
	st := &s.state
	switch {
	case s.opt.SkipPage:
		if st.Resume == nil {
			return fmt.Errorf("%s: %w", s.spec.Key, ErrNothingToSkip)
		}
		skipped := *st.Resume
		s.rep.Skipped = &skipped
		st.Resume = s.spec.skip(st.Resume)
		s.rep.Restarted = st.Resume == nil
	case s.opt.Restart || s.opt.Full:
		st.Resume = nil
		s.rep.Restarted = true
	}
	run := st.Resume
	s.resumed = run != nil && s.opt.From == nil
	switch {
	case s.opt.From != nil:
		run, s.start = nil, s.opt.From
	case s.opt.Full:
		s.start = nil
		if s.spec.incStart != "" {
			s.start = s.spec.incStart
		}
	case run != nil:
		s.start = run.Cursor
	case st.Cursor != nil:
		s.start = lookBack(st.Cursor, s.spec.lookback)
	case s.spec.incStart != "":
		s.start = s.spec.incStart
	}
	if run == nil {
		run = &Resume{Cursor: s.start, Page: s.spec.pager.first()}
	}
	s.from = *run
	s.stateView = map[string]any{"cursor": s.start}
	if s.start == nil {
		s.stateView["cursor"] = ""
	}
	s.high = st.Cursor
	return nil
}

func countSet(flags ...bool) int {
	n := 0
	for _, f := range flags {
		if f {
			n++
		}
	}
	return n
}

// stopped reports whether Options.Stop is closed.
func (s *syncRun) stopped() bool {
	if s.opt.Stop == nil {
		return false
	}
	select {
	case <-s.opt.Stop:
		return true
	default:
		return false
	}
}

// recMeta is what the results keep of a record while it runs.
type recMeta struct {
	page  int
	id    string // retry-list id (retry records; or by key)
	retry bool
	lead  map[string]any
	raw   string // a record that could not be decoded
}

// point is a place in the sequence of records where state can be saved:
// the end of the retry list or of a page.
type point struct {
	last    int // RunAll index of the page's last record (-1: none)
	retry   bool
	page    int
	records int
	cursor  any
	resume  *Resume
}

// ledger is what the feeder and the collector share, under its mutex:
// the records being run, the points not saved yet, and how the feeding
// ended.
type ledger struct {
	mu      sync.Mutex
	meta    map[int]recMeta // by RunAll index
	points  []point
	ended   string
	pageErr error // why the pages ended in error
	fatal   error // the retry list could not be read
	fetched int   // page requests that answered
}

// hand notes the record RunAll gets at idx.
func (l *ledger) hand(idx int, m recMeta) {
	l.mu.Lock()
	l.meta[idx] = m
	l.mu.Unlock()
}

// take returns (and forgets) the record of RunAll's result idx.
func (l *ledger) take(idx int) recMeta {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.meta[idx]
	delete(l.meta, idx)
	return m
}

// mark adds a point the state may be saved at.
func (l *ledger) mark(p point) {
	l.mu.Lock()
	l.points = append(l.points, p)
	l.mu.Unlock()
}

// due takes the points whose records all have a result: those before idx
// (strict) or up to idx.
func (l *ledger) due(idx int, strict bool) []point {
	l.mu.Lock()
	defer l.mu.Unlock()
	var due []point
	for len(l.points) > 0 && (l.points[0].last < idx || (!strict && l.points[0].last == idx)) {
		due = append(due, l.points[0])
		l.points = l.points[1:]
	}
	return due
}

// end notes how the feeding ended.
func (l *ledger) end(how string, err error) {
	l.mu.Lock()
	l.ended, l.pageErr = how, err
	l.mu.Unlock()
}

// fail notes that the retry list could not be read.
func (l *ledger) fail(err error) {
	l.mu.Lock()
	l.fatal = err
	l.mu.Unlock()
}

// answered counts a page request that answered.
func (l *ledger) answered() {
	l.mu.Lock()
	l.fetched++
	l.mu.Unlock()
}
