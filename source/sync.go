package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

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
	// SkipPage skips the page an unfinished sync goes on at (one that
	// cannot be fetched or read, say): with page or offset pagination the
	// sync goes on at the page after it; with cursor, next_url or link
	// pagination the pages after it are reached only through it, so the
	// sync starts over from page one as with Restart. Sync returns
	// ErrNothingToSkip when no unfinished sync is saved. At most one of
	// From, Restart and SkipPage may be set.
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

// syncer is one sync: the feeder (leads, from RunAll's goroutine) reads
// the retry list and the pages; the calling goroutine takes the results,
// in order, and saves the state at each point whose records all have one.
type syncer struct {
	r     *engine.Runner
	spec  *Spec
	store *Store
	opt   Options
	now   func() time.Time
	rep   *Report

	state       State
	run         Resume // where the pages start
	start       any    // the state.cursor of the sync's requests
	stateView   map[string]any
	limiter     *rate.Limiter
	fetchCtx    context.Context
	cancelFetch context.CancelFunc

	// shared by the feeder and the calling goroutine
	mu      sync.Mutex
	meta    map[int]recMeta
	points  []point
	ended   string
	pageErr error
	fatal   error
	fetched int // page requests that answered

	// the feeder's
	pushed int
	high   any

	// the calling goroutine's
	failed      map[string]Failed
	cleared     []string
	saveErr     error
	writeErr    error
	keepCleared bool // the retry list may hold a record that succeeds
}

// Sync pulls the source's pages, runs each record through the runner's
// steps and calls emit with each result in order, from the calling
// goroutine. The state is saved after each page whose records all have an
// outcome (after Options.Flush). The error is for the state file only (a
// sync that could not start or save); why a sync ended is in the report.
func Sync(ctx context.Context, r *engine.Runner, spec *Spec, store *Store, opt Options, emit func(Record, *engine.Result) error) (*Report, error) {
	if got := r.Plan().Name(); got != spec.integration {
		return nil, fmt.Errorf("source: the runner runs integration %q, the source is %q's: bind the plan of the file the source was compiled from", got, spec.integration)
	}
	s := &syncer{r: r, spec: spec, store: store, opt: opt, now: opt.Now, rep: &Report{},
		meta: map[int]recMeta{}, failed: map[string]Failed{}}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.position(); err != nil {
		return nil, err
	}
	if spec.limit > 0 {
		s.limiter = rate.NewLimiter(spec.limit, 1)
	}
	s.fetchCtx, s.cancelFetch = context.WithCancel(ctx)
	defer s.cancelFetch()
	if opt.Stop != nil {
		go func() {
			select {
			case <-opt.Stop:
				s.cancelFetch() // a page being fetched is dropped: its records were not started
			case <-s.fetchCtx.Done():
			}
		}()
	}
	store.snapshotRunning(spec.Key)
	s.state.Last = Counts{}
	s.state.Ended = "" // "running or killed" until this sync ends
	s.results(ctx, emit)
	return s.finish(ctx)
}

// position loads the state and works out where the pages start.
func (s *syncer) position() error {
	n := 0
	for _, set := range []bool{s.opt.From != nil, s.opt.Restart, s.opt.SkipPage} {
		if set {
			n++
		}
	}
	if n > 1 {
		return errors.New("source: give at most one of Options.From, Restart and SkipPage")
	}
	var err error
	if s.state, err = s.store.Load(s.spec.Key); err != nil {
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
	case s.opt.Restart:
		st.Resume = nil
		s.rep.Restarted = true
	}
	run := st.Resume
	switch {
	case s.opt.From != nil:
		run, s.start = nil, s.opt.From
	case run != nil:
		s.start = run.Cursor
	case st.Cursor != nil:
		s.start = lookBack(st.Cursor, s.spec.lookback)
	case s.spec.incStart != "":
		s.start = s.spec.incStart
	}
	if run == nil {
		run = &Resume{Cursor: s.start, Page: s.spec.firstPage()}
	}
	s.run = *run
	s.stateView = map[string]any{"cursor": s.start}
	if s.start == nil {
		s.stateView["cursor"] = ""
	}
	s.high = st.Cursor
	return nil
}

func (s *syncer) stopped() bool {
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

func (s *syncer) setEnd(how string, err error) {
	s.mu.Lock()
	s.ended, s.pageErr = how, err
	s.mu.Unlock()
}

func (s *syncer) addPoint(p point) {
	s.mu.Lock()
	s.points = append(s.points, p)
	s.mu.Unlock()
}

// leads is what RunAll reads: the retry list, then the records of each
// page, decoded one at a time as workers free up.
func (s *syncer) leads(yield func(map[string]any, error) bool) {
	push := func(m recMeta, lead map[string]any, err error) bool {
		s.mu.Lock()
		s.meta[s.pushed] = m
		s.mu.Unlock()
		s.pushed++
		return yield(lead, err)
	}
	if s.retryLeads(push) {
		s.pageLeads(push)
	}
}

// retryLeads pushes the retry list; it reports whether the pages follow.
func (s *syncer) retryLeads(push func(recMeta, map[string]any, error) bool) bool {
	after := ""
	for {
		ids, recs, err := s.store.retryChunk(s.spec.Key, after, 256)
		if err != nil {
			s.mu.Lock()
			s.fatal = err
			s.mu.Unlock()
			return false
		}
		if len(ids) == 0 {
			break
		}
		for k, id := range ids {
			lead, err := decodeRecord(recs[k].Record)
			if !push(recMeta{id: id, retry: true}, lead, err) {
				return false
			}
		}
		after = ids[len(ids)-1]
		if s.stopped() {
			s.addPoint(point{last: s.pushed - 1, retry: true})
			s.setEnd("stopped", nil)
			return false
		}
	}
	s.addPoint(point{last: s.pushed - 1, retry: true})
	return true
}

// results takes the results in order, saving the state at each point
// whose records all have one.
func (s *syncer) results(ctx context.Context, emit func(Record, *engine.Result) error) {
	emitted := -1
	for idx, res := range s.r.RunAll(ctx, s.leads, engine.RunAllOptions{Concurrency: s.opt.Concurrency}) {
		if s.commitUpTo(idx, true); s.writeErr != nil {
			break
		}
		rec := s.record(idx, res)
		emitted = idx
		if s.writeErr = emit(rec, res); s.writeErr != nil {
			break
		}
		if s.commitUpTo(idx, false); s.writeErr != nil {
			break
		}
	}
	if s.writeErr == nil {
		s.commitUpTo(emitted+1, true) // pages without records after the last result
	}
}

// record counts a result and notes its record for the retry list.
func (s *syncer) record(idx int, res *engine.Result) Record {
	s.mu.Lock()
	m := s.meta[idx]
	delete(s.meta, idx)
	s.mu.Unlock()
	rep, state := s.rep, &s.state
	if m.retry {
		rep.Retried++
		s.keepCleared = true
	} else {
		rep.Records++
	}
	id := m.id
	if id == "" && s.spec.recordKey != nil && m.lead != nil {
		if v, ok := field(m.lead, s.spec.recordKey); ok {
			id = "key:" + fmt.Sprint(v)
		}
	}
	switch {
	case res.Outcome == engine.Error:
		rep.Errors++
		state.Last.Errors++
		state.Total.Errors++
		s.keepCleared = true
		s.fail(id, m, res.Reason)
	case id != "" && s.keepCleared:
		// a record that succeeds leaves the retry list; with an empty
		// one, there is nothing to remove (nor to hold a page long)
		s.cleared = append(s.cleared, id)
	}
	return Record{Index: idx + 1, Page: m.page, Retry: m.retry}
}

// fail notes a record whose steps ended in error for the retry list.
func (s *syncer) fail(id string, m recMeta, reason string) {
	var raw []byte // a retry record is kept as it is
	switch {
	case m.retry:
	case m.lead == nil:
		raw = []byte(m.raw)
	default:
		var err error
		if raw, err = json.Marshal(m.lead); err != nil {
			return
		}
	}
	if id == "" {
		sum := sha256.Sum256(raw)
		id = "sha:" + hex.EncodeToString(sum[:12])
	}
	s.failed[id] = Failed{Record: raw, Reason: reason, Attempts: 1, First: s.now(), Last: s.now()}
}

// commitUpTo saves the points whose records all have a result: those
// before idx (strict) or up to idx. The output is flushed first.
func (s *syncer) commitUpTo(idx int, strict bool) {
	s.mu.Lock()
	var due []point
	for len(s.points) > 0 && (s.points[0].last < idx || (!strict && s.points[0].last == idx)) {
		due = append(due, s.points[0])
		s.points = s.points[1:]
	}
	s.mu.Unlock()
	if len(due) == 0 {
		return
	}
	if s.opt.Flush != nil {
		if s.writeErr = s.opt.Flush(); s.writeErr != nil {
			return // the output did not get there: the state does not either
		}
	}
	state := &s.state
	for _, p := range due {
		if !p.retry {
			state.Cursor = p.cursor
			state.Resume = p.resume
			state.Last.Pages++
			state.Total.Pages++
			state.Last.Records += int64(p.records)
			state.Total.Records += int64(p.records)
			s.rep.Committed++
		}
		state.Updated = s.now()
		if s.saveErr == nil {
			s.saveErr = s.store.commit(s.spec.Key, state, s.failed, s.cleared)
		}
		clear(s.failed)
		s.cleared = s.cleared[:0]
	}
}

// finish saves how the sync ended.
func (s *syncer) finish(ctx context.Context) (*Report, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rep, state := s.rep, &s.state
	rep.Ended, rep.Err = s.ended, s.pageErr
	if s.fatal != nil {
		return rep, s.fatal
	}
	if s.writeErr != nil {
		rep.Ended, rep.Err = "error", fmt.Errorf("writing results: %w", s.writeErr)
	} else if len(s.points) > 0 || ctx.Err() != nil {
		if rep.Ended == "complete" || rep.Ended == "" {
			rep.Ended = "canceled"
		}
	}
	if rep.Ended == "" {
		rep.Ended = "canceled"
	}
	rep.Pages = s.fetched
	state.Finished, state.Ended = s.now(), rep.Ended
	if rep.Err != nil {
		state.Ended += ": " + rep.Err.Error()
	}
	saveErr := s.saveErr
	if saveErr == nil {
		saveErr = s.store.commit(s.spec.Key, state, nil, nil)
	}
	rep.State = *state
	if saveErr != nil {
		return rep, fmt.Errorf("saving the sync state to %s: %w", s.store.Path(), saveErr)
	}
	rep.Pending, _ = s.store.RetryCount(s.spec.Key)
	return rep, nil
}
