package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
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
	// Stop, when closed, ends the sync after the page being worked on:
	// its records finish, its state is saved, no further page is fetched.
	// Cancelling the context instead cuts the running records short.
	Stop <-chan struct{}
	// OnPage is called (from the fetching goroutine) after each page
	// request.
	OnPage func(PageInfo)
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
	// path that is not a list, a cursor or next link that repeats.
	Err error
	// State is the state saved at the end.
	State State
}

// ErrLoop is the error (errors.Is) of a page whose cursor, next link or
// records repeat an earlier page's.
var ErrLoop = errors.New("pagination repeats itself")

type recMeta struct {
	page  int
	id    string // retry-list id (retry records; or by key)
	retry bool
	lead  map[string]any
}

type point struct {
	last    int // RunAll index of the page's last record (-1: none)
	retry   bool
	page    int
	records int
	cursor  any
	resume  *Resume
}

// Sync pulls the source's pages, runs each record through the runner's
// steps and calls emit with each result in order, from the calling
// goroutine. The state is saved after each page whose records all have an
// outcome. The error is for the state file only (a sync that could not
// start or save); why a sync ended is in the report.
func Sync(ctx context.Context, r *engine.Runner, spec *Spec, store *Store, opt Options, emit func(Record, *engine.Result) error) (*Report, error) {
	if got := r.Plan().Name(); got != spec.integration {
		return nil, fmt.Errorf("source: the runner runs integration %q, the source is %q's: bind the plan of the file the source was compiled from", got, spec.integration)
	}
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	state, err := store.Load(spec.Key)
	if err != nil {
		return nil, err
	}
	rep := &Report{}
	run := state.Resume
	var start any
	switch {
	case opt.From != nil:
		run, start = nil, opt.From
	case run != nil:
		start = run.Cursor
	case state.Cursor != nil:
		start = lookBack(state.Cursor, spec.lookback)
	case spec.incStart != "":
		start = spec.incStart
	}
	if run == nil {
		run = &Resume{Cursor: start, Page: spec.firstPage()}
	}
	stateView := map[string]any{"cursor": start}
	if start == nil {
		stateView["cursor"] = ""
	}
	var limiter *rate.Limiter
	if spec.limit > 0 {
		limiter = rate.NewLimiter(spec.limit, 1)
	}
	fetchCtx, cancelFetch := context.WithCancel(ctx)
	defer cancelFetch()
	if opt.Stop != nil {
		go func() {
			select {
			case <-opt.Stop:
				cancelFetch() // a page being fetched is dropped: its records were not started
			case <-fetchCtx.Done():
			}
		}()
	}
	stopped := func() bool {
		if opt.Stop == nil {
			return false
		}
		select {
		case <-opt.Stop:
			return true
		default:
			return false
		}
	}

	var (
		mu      sync.Mutex
		meta    = map[int]recMeta{}
		points  []point
		ended   string
		pageErr error
		fatal   error
		// fetchedPages counts the page requests that answered
		fetchedPages int
	)
	setEnd := func(how string, err error) {
		mu.Lock()
		ended, pageErr = how, err
		mu.Unlock()
	}
	high := state.Cursor
	leads := func(yield func(map[string]any, error) bool) {
		i := 0
		push := func(m recMeta, lead map[string]any, err error) bool {
			mu.Lock()
			meta[i] = m
			mu.Unlock()
			i++
			return yield(lead, err)
		}
		// the retry list first
		after := ""
		for {
			ids, recs, err := store.retryChunk(spec.Key, after, 256)
			if err != nil {
				mu.Lock()
				fatal = err
				mu.Unlock()
				return
			}
			if len(ids) == 0 {
				break
			}
			for k, id := range ids {
				lead, err := decodeRecord(recs[k].Record)
				if !push(recMeta{id: id, retry: true}, lead, err) {
					return
				}
			}
			after = ids[len(ids)-1]
			if stopped() {
				mu.Lock()
				points = append(points, point{last: i - 1, retry: true})
				mu.Unlock()
				setEnd("stopped", nil)
				return
			}
		}
		mu.Lock()
		points = append(points, point{last: i - 1, retry: true})
		mu.Unlock()

		pos := *run
		seen := map[uint64]bool{}
		if pos.Token != "" {
			seen[hash64(pos.Token)] = true
		}
		var prevRecs uint64
		for fetched := 0; ; fetched++ {
			if stopped() {
				setEnd("stopped", nil)
				return
			}
			if fetched >= spec.maxPages {
				setEnd("max_pages", nil)
				return
			}
			if limiter != nil {
				if err := limiter.Wait(fetchCtx); err != nil {
					setEnd(canceled(opt.Stop), nil)
					return
				}
			}
			n := pos.Pages + 1
			pg := r.FetchPage(fetchCtx, stateView, pos.Page, pos.Next)
			if pg.Outcome == engine.Success {
				mu.Lock()
				fetchedPages++
				mu.Unlock()
			}
			info := PageInfo{Number: n, URL: pg.URL, Status: pg.Status, Attempts: pg.Attempts, Outcome: pg.Outcome}
			if pg.Outcome != engine.Success {
				if fetchCtx.Err() != nil {
					setEnd(canceled(opt.Stop), nil)
				} else {
					setEnd("error", fmt.Errorf("page %d: %s", n, pg.Reason))
				}
				if opt.OnPage != nil {
					opt.OnPage(info)
				}
				return
			}
			recs, recHash, err := spec.records(pg)
			info.Records = len(recs)
			if opt.OnPage != nil {
				opt.OnPage(info)
			}
			if err != nil {
				setEnd("error", fmt.Errorf("page %d: %w", n, err))
				return
			}
			next := &Resume{Cursor: start, Pages: n}
			done := len(recs) == 0
			switch spec.pagType {
			case "":
				done = true
			case "page":
				next.Page = map[string]any{"number": toInt(pos.Page["number"]) + 1}
				if spec.size > 0 {
					next.Page["size"] = spec.size
				}
			case "offset":
				next.Page = map[string]any{"offset": toInt(pos.Page["offset"]) + len(recs), "limit": spec.size}
			default:
				tok, found, err := spec.token(pg)
				if err != nil {
					setEnd("error", fmt.Errorf("page %d: reading the next %s: %w", n, spec.pagType, err))
					return
				}
				if !found {
					done = true
					break
				}
				h := hash64(tok)
				if seen[h] {
					setEnd("error", fmt.Errorf("page %d: the next %s %q was already followed: %w (stopped rather than loop)", n, spec.tokenName(), tok, ErrLoop))
					return
				}
				seen[h] = true
				next.Token = tok
				if spec.pagType == "cursor" {
					next.Page = map[string]any{"cursor": tok}
				} else {
					next.Next = tok
					next.Page = map[string]any{}
				}
			}
			if len(recs) > 0 {
				if fetched > 0 && recHash == prevRecs {
					setEnd("error", fmt.Errorf("page %d holds the same records as page %d: %w (does the API read the page parameter?)", n, n-1, ErrLoop))
					return
				}
				prevRecs = recHash
			}
			if !done && spec.stop != nil {
				hold, err := spec.stopHolds(pg, pos.Page, stateView)
				if err != nil {
					setEnd("error", fmt.Errorf("page %d: stop_when: %w", n, err))
					return
				}
				done = hold
			}
			for _, rec := range recs {
				if spec.incField != nil {
					if v, ok := field(rec, spec.incField); ok && (high == nil || compareCursor(v, high) > 0) {
						high = v
					}
				}
				m := recMeta{page: n, lead: rec}
				if !push(m, rec, nil) {
					return
				}
			}
			p := point{last: i - 1, page: n, records: len(recs), cursor: high, resume: next}
			if done {
				p.resume = nil
			}
			mu.Lock()
			points = append(points, p)
			mu.Unlock()
			if done {
				setEnd("complete", nil)
				return
			}
			pos = *next
		}
	}

	// the results, in order
	state.Last = Counts{}
	state.Ended = "" // "running or killed" until this sync ends
	var (
		failed  = map[string]Failed{}
		cleared []string
		saveErr error
	)
	commitUpTo := func(idx int, strict bool) {
		mu.Lock()
		var due []point
		for len(points) > 0 && (points[0].last < idx || (!strict && points[0].last == idx)) {
			due = append(due, points[0])
			points = points[1:]
		}
		mu.Unlock()
		for _, p := range due {
			var st *State
			if !p.retry {
				state.Cursor = p.cursor
				state.Resume = p.resume
				state.Last.Pages++
				state.Total.Pages++
				state.Last.Records += int64(p.records)
				state.Total.Records += int64(p.records)
				rep.Committed++
			}
			state.Updated = now()
			st = &state
			if saveErr == nil {
				saveErr = store.commit(spec.Key, st, failed, cleared)
			}
			clear(failed)
			cleared = cleared[:0]
		}
	}
	emitted := -1
	var emitErr error
	for idx, res := range r.RunAll(ctx, leads, engine.RunAllOptions{Concurrency: opt.Concurrency}) {
		commitUpTo(idx, true)
		mu.Lock()
		m := meta[idx]
		delete(meta, idx)
		mu.Unlock()
		rec := Record{Index: idx + 1, Page: m.page, Retry: m.retry}
		if m.retry {
			rep.Retried++
		} else {
			rep.Records++
		}
		id := m.id
		if id == "" && spec.recordKey != nil && m.lead != nil {
			if v, ok := field(m.lead, spec.recordKey); ok {
				id = "key:" + fmt.Sprint(v)
			}
		}
		if res.Outcome == engine.Error {
			rep.Errors++
			state.Last.Errors++
			state.Total.Errors++
			raw, err := json.Marshal(m.lead)
			if m.retry {
				raw, err = nil, nil
			}
			if err == nil {
				if id == "" {
					sum := sha256.Sum256(raw)
					id = "sha:" + hex.EncodeToString(sum[:12])
				}
				f := Failed{Record: raw, Reason: res.Reason, Attempts: 1, First: now(), Last: now()}
				if m.retry {
					f.Record = nil // kept as it is
				}
				failed[id] = f
			}
		} else if id != "" {
			cleared = append(cleared, id)
		}
		emitted = idx
		if emitErr = emit(rec, res); emitErr != nil {
			break
		}
		commitUpTo(idx, false)
	}
	if emitErr == nil {
		commitUpTo(emitted+1, true) // pages without records after the last result
	}
	mu.Lock()
	defer mu.Unlock()
	rep.Ended, rep.Err = ended, pageErr
	if fatal != nil {
		return rep, fatal
	}
	if emitErr != nil {
		rep.Ended, rep.Err = "error", fmt.Errorf("writing results: %w", emitErr)
	} else if len(points) > 0 || ctx.Err() != nil {
		if rep.Ended == "complete" || rep.Ended == "" {
			rep.Ended = "canceled"
		}
	}
	if rep.Ended == "" {
		rep.Ended = "canceled"
	}
	rep.Pages = fetchedPages
	state.Finished, state.Ended = now(), rep.Ended
	if rep.Err != nil {
		state.Ended += ": " + rep.Err.Error()
	}
	if saveErr == nil {
		saveErr = store.commit(spec.Key, &state, nil, nil)
	}
	rep.State = state
	if saveErr != nil {
		return rep, fmt.Errorf("saving the sync state to %s: %w", store.Path(), saveErr)
	}
	rep.Pending, _ = store.RetryCount(spec.Key)
	return rep, nil
}

func canceled(stop <-chan struct{}) string {
	if stop != nil {
		select {
		case <-stop:
			return "stopped"
		default:
		}
	}
	return "canceled"
}

func (s *Spec) firstPage() map[string]any {
	switch s.pagType {
	case "page":
		p := map[string]any{"number": s.start}
		if s.size > 0 {
			p["size"] = s.size
		}
		return p
	case "offset":
		return map[string]any{"offset": s.start, "limit": s.size}
	case "cursor":
		return map[string]any{"cursor": ""}
	}
	return map[string]any{}
}

func (s *Spec) tokenName() string {
	switch s.pagType {
	case "cursor":
		return "cursor"
	case "link":
		return "Link rel=\"next\""
	}
	return "page URL"
}

// token reads the next cursor or link of a page.
func (s *Spec) token(pg *engine.Page) (string, bool, error) {
	switch s.pagType {
	case "cursor":
		return extract(s.cursor, s.format, pg.Status, pg.Header, pg.Body)
	case "next_url":
		return extract(s.next, s.format, pg.Status, pg.Header, pg.Body)
	case "link":
		l := nextLink(pg.Header)
		return l, l != "", nil
	}
	return "", false, nil
}

// records selects a page's records and hashes them (to catch an API that
// answers the same page again and again).
func (s *Spec) records(pg *engine.Page) ([]map[string]any, uint64, error) {
	recs, err := s.Records(pg.Status, pg.Header, pg.Body)
	if err != nil || len(recs) == 0 {
		return recs, 0, err
	}
	h := fnv.New64a()
	for _, r := range []map[string]any{recs[0], recs[len(recs)-1]} {
		var v any = r
		if s.recordKey != nil {
			v, _ = field(r, s.recordKey) // records are the same records whatever else changed
		}
		b, _ := json.Marshal(v)
		h.Write(b)
	}
	fmt.Fprint(h, len(recs))
	return recs, h.Sum64(), nil
}

func (s *Spec) stopHolds(pg *engine.Page, page, state map[string]any) (bool, error) {
	env := map[string]any{"captured": pg.Captured, "page": page, "state": state}
	if env["captured"] == nil {
		env["captured"] = map[string]any{}
	}
	if s.stopResp {
		headers := map[string]any{}
		for k, v := range pg.Header {
			if len(v) > 0 {
				headers[toLower(k)] = v[0]
			}
		}
		var body any = string(pg.Body)
		if d, err := decodeAny(pg.Body); err == nil {
			body = d
		}
		env["response"] = map[string]any{"status": pg.Status, "headers": headers, "body": body}
	}
	return s.stop.Eval(env)
}

func decodeAny(b []byte) (any, error) {
	var v any
	err := json.Unmarshal(b, &v)
	return v, err
}

func toLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

func toInt(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case int64:
		return int(n)
	case float64:
		return int(n)
	case json.Number:
		i, _ := n.Int64()
		return int(i)
	}
	return 0
}

func hash64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}
