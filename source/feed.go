package source

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/plumbhq/plumb/engine"
)

// leads is what RunAll reads (the feeder): the retry list, then the
// records of each page, decoded one at a time as workers free up.
func (s *syncRun) leads(yield func(map[string]any, error) bool) {
	if s.retryLeads(yield) {
		s.pageLeads(yield)
	}
}

// push hands one record to the steps.
func (s *syncRun) push(yield func(map[string]any, error) bool, m recMeta, lead map[string]any, err error) bool {
	s.ledger.hand(s.pushed, m)
	s.pushed++
	return yield(lead, err)
}

// retryLeads pushes the retry list; it reports whether the pages follow.
func (s *syncRun) retryLeads(yield func(map[string]any, error) bool) bool {
	after := ""
	for {
		recs, err := s.store.Retries(s.storeCtx, s.spec.Key, after, 256)
		if err != nil {
			s.ledger.fail(err)
			return false
		}
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			lead, err := decodeRecord(rec.Record)
			if !s.push(yield, recMeta{id: rec.ID, retry: true}, lead, err) {
				return false
			}
		}
		after = recs[len(recs)-1].ID
		if s.stopped() {
			s.ledger.mark(point{last: s.pushed - 1, retry: true})
			s.ledger.end("stopped", nil)
			return false
		}
	}
	s.ledger.mark(point{last: s.pushed - 1, retry: true})
	return true
}

// pageLeads fetches the pages from s.from on and pushes their records.
func (s *syncRun) pageLeads(yield func(map[string]any, error) bool) {
	pos := s.from
	if pos.Token != "" {
		s.seen[hash64(pos.Token)] = true
	}
	for fetched := 0; ; fetched++ {
		if !s.mayFetch(fetched) {
			return
		}
		n := pos.Pages + 1
		pg, recs, ok := s.fetchPage(pos, n)
		if !ok {
			return
		}
		next, done, err := s.turn(pg, pos, n, recs, fetched > 0)
		if err != nil {
			s.ledger.end("error", err)
			return
		}
		if !s.pushRecords(yield, recs, n) {
			return
		}
		p := point{last: s.pushed - 1, page: n, records: recs.n, cursor: s.high, resume: next}
		if done {
			p.resume = nil
		}
		s.ledger.mark(p)
		if done {
			s.ledger.end("complete", nil)
			return
		}
		pos = *next
	}
}

// mayFetch reports whether the next page may be fetched; when not, the
// sync's end is set. (The page waits for the rate: budget in FetchPage.)
func (s *syncRun) mayFetch(fetched int) bool {
	switch {
	case s.stopped():
		s.ledger.end("stopped", nil)
		return false
	case fetched >= s.spec.maxPages:
		s.ledger.end("max_pages", nil)
		return false
	}
	return true
}

// fetchPage asks for page n at pos and selects its records.
func (s *syncRun) fetchPage(pos Resume, n int) (*engine.Page, *pageRecords, bool) {
	pg := s.r.FetchPage(s.fetchCtx, s.stateView, pos.Page, pos.Next)
	if pg.Outcome == engine.Success {
		s.ledger.answered()
	}
	info := PageInfo{Number: n, URL: pg.URL, Status: pg.Status, Attempts: pg.Attempts, Outcome: pg.Outcome}
	if pg.Outcome != engine.Success {
		if s.fetchCtx.Err() != nil {
			s.ledger.end(canceled(s.opt.Stop), nil)
		} else {
			s.ledger.end("error", pageError(n, pos, pg, s.r.Redact))
		}
		s.onPage(info)
		return nil, nil, false
	}
	recs, err := s.spec.pageRecords(pg.Status, pg.Header, pg.Body)
	if recs != nil {
		info.Records = recs.n
	}
	s.onPage(info)
	if err != nil {
		s.ledger.end("error", fmt.Errorf("page %d: %w", n, err))
		return nil, nil, false
	}
	return pg, recs, true
}

func (s *syncRun) onPage(info PageInfo) {
	if s.opt.OnPage != nil {
		s.opt.OnPage(info)
	}
}

// turn works out, from page n's answer, where the page after it is and
// whether the sync is done: the pagination, a page that repeats the one
// before (again: not the sync's first), stop_when.
func (s *syncRun) turn(pg *engine.Page, pos Resume, n int, recs *pageRecords, again bool) (*Resume, bool, error) {
	f, err := s.spec.pager.next(pg, pos.Page, recs.n, s.seen)
	if err != nil {
		return nil, false, fmt.Errorf("page %d: %w", n, err)
	}
	next := &Resume{Cursor: s.start, Pages: n, Page: f.page, Next: f.url, Token: f.token}
	done := recs.n == 0 || f.none
	if recs.n > 0 {
		h := s.spec.recordsHash(recs)
		if at, ok := s.recent.page(h); again && ok {
			return nil, false, fmt.Errorf("page %d holds the same records as page %d: %w (does the API read the page parameter?)", n, at, ErrLoop)
		}
		s.recent.add(h, n)
	}
	if !done && s.spec.stop != nil {
		if done, err = s.spec.stopHolds(pg, pos.Page, s.stateView); err != nil {
			return nil, false, fmt.Errorf("page %d: stop_when: %w", n, err)
		}
	}
	return next, done, nil
}

// pageError says why page n could not be fetched; a next link that was
// not followed is named (secrets masked), with the page it came from.
func pageError(n int, pos Resume, pg *engine.Page, redact func(string) string) error {
	if pos.Next != "" && errors.Is(pg.Err, engine.ErrNextLink) {
		return &linkError{msg: fmt.Sprintf("page %d: the link to it from page %d, %q: %s", n, n-1, redact(pos.Next), pg.Reason)}
	}
	return fmt.Errorf("page %d: %s", n, pg.Reason)
}

// linkError is a page error that is errors.Is engine.ErrNextLink; its
// message is the masked reason.
type linkError struct{ msg string }

func (e *linkError) Error() string { return e.msg }
func (e *linkError) Unwrap() error { return engine.ErrNextLink }

// pushRecords decodes the records of page n one at a time, as RunAll
// takes them.
func (s *syncRun) pushRecords(yield func(map[string]any, error) bool, recs *pageRecords, n int) bool {
	k := 0
	for rec, err := range recs.each {
		k++
		m := recMeta{page: n, lead: rec}
		if err != nil {
			var bad *badRecord
			if errors.As(err, &bad) {
				m.raw = strings.Clone(bad.raw) // not a view of the whole page
			}
			err = fmt.Errorf("record %d of page %d: %w", k, n, err)
		}
		if rec != nil && s.spec.incField != nil {
			if v, ok := field(rec, s.spec.incField); ok && (s.high == nil || compareCursor(v, s.high) > 0) {
				s.high = v
			}
		}
		if !s.push(yield, m, rec, err) {
			return false
		}
	}
	return true
}

// skip is the position after the page at r, or nil when the pages after
// it are reached only through it (cursor, next_url, link) or the size of
// an offset page is not known.
func (s *Spec) skip(r *Resume) *Resume {
	page, ok := s.pager.skip(r.Page)
	if !ok {
		return nil
	}
	return &Resume{Cursor: r.Cursor, Pages: r.Pages + 1, Page: page}
}

// recordsHash hashes a page's records (its first and last, by key when
// there is one, and their number) to catch an API that answers the same
// page again and again.
func (s *Spec) recordsHash(p *pageRecords) uint64 {
	h := fnv.New64a()
	first, last := p.ends()
	for _, r := range []map[string]any{first, last} {
		var v any = r
		if s.recordKey != nil {
			v, _ = field(r, s.recordKey) // records are the same records whatever else changed
		}
		b, _ := json.Marshal(v)
		h.Write(b)
	}
	fmt.Fprint(h, p.n)
	return h.Sum64()
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
		env["response"] = map[string]any{"status": pg.Status, "headers": headers, "body": s.stopBody(pg.Body)}
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

// recentPages remembers which page held which records (by their hash) for
// the last recentWindow pages of a sync: a page that holds the same records
// as one of them is a loop, whether the API repeats the page before it or
// cycles through a few.
type recentPages struct {
	at    map[uint64]int // records' hash → page
	order []uint64       // the hashes, oldest first
}

// recentWindow is how many pages recentPages remembers.
const recentWindow = 64

// page returns the page among the last recentWindow that held records of
// hash h.
func (r *recentPages) page(h uint64) (int, bool) {
	n, ok := r.at[h]
	return n, ok
}

// add notes that page n held records of hash h, forgetting the oldest
// page past the window.
func (r *recentPages) add(h uint64, n int) {
	if r.at == nil {
		r.at = map[uint64]int{}
	}
	if len(r.order) == recentWindow {
		delete(r.at, r.order[0])
		r.order = r.order[1:]
	}
	r.order = append(r.order, h)
	r.at[h] = n
}
