package source

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/steps"
)

// pageLeads fetches the pages from s.run on and pushes their records.
func (s *syncer) pageLeads(push func(recMeta, map[string]any, error) bool) {
	pos := s.run
	seen := map[uint64]bool{}
	if pos.Token != "" {
		seen[hash64(pos.Token)] = true
	}
	var prevRecs uint64
	for fetched := 0; ; fetched++ {
		if !s.mayFetch(fetched) {
			return
		}
		n := pos.Pages + 1
		pg, recs, ok := s.fetch(pos, n)
		if !ok {
			return
		}
		next, done, err := s.advance(pg, pos, n, recs, seen)
		if err == nil && recs.n > 0 {
			h := s.spec.recordsHash(recs)
			if fetched > 0 && h == prevRecs {
				err = fmt.Errorf("page %d holds the same records as page %d: %w (does the API read the page parameter?)", n, n-1, ErrLoop)
			}
			prevRecs = h
		}
		if err == nil && !done && s.spec.stop != nil {
			done, err = s.spec.stopHolds(pg, pos.Page, s.stateView)
			if err != nil {
				err = fmt.Errorf("page %d: stop_when: %w", n, err)
			}
		}
		if err != nil {
			s.setEnd("error", err)
			return
		}
		if !s.pushRecords(push, recs, n) {
			return
		}
		p := point{last: s.pushed - 1, page: n, records: recs.n, cursor: s.high, resume: next}
		if done {
			p.resume = nil
		}
		s.addPoint(p)
		if done {
			s.setEnd("complete", nil)
			return
		}
		pos = *next
	}
}

// mayFetch reports whether the next page may be fetched (waiting for the
// rate limit); when not, the sync's end is set.
func (s *syncer) mayFetch(fetched int) bool {
	switch {
	case s.stopped():
		s.setEnd("stopped", nil)
		return false
	case fetched >= s.spec.maxPages:
		s.setEnd("max_pages", nil)
		return false
	case s.limiter != nil:
		if err := s.limiter.Wait(s.fetchCtx); err != nil {
			s.setEnd(canceled(s.opt.Stop), nil)
			return false
		}
	}
	return true
}

// fetch asks for page n at pos and selects its records.
func (s *syncer) fetch(pos Resume, n int) (*engine.Page, *pageRecords, bool) {
	pg := s.r.FetchPage(s.fetchCtx, s.stateView, pos.Page, pos.Next)
	if pg.Outcome == engine.Success {
		s.mu.Lock()
		s.fetched++
		s.mu.Unlock()
	}
	info := PageInfo{Number: n, URL: pg.URL, Status: pg.Status, Attempts: pg.Attempts, Outcome: pg.Outcome}
	if pg.Outcome != engine.Success {
		if s.fetchCtx.Err() != nil {
			s.setEnd(canceled(s.opt.Stop), nil)
		} else {
			s.setEnd("error", pageError(n, pos, pg, s.r.Redact))
		}
		if s.opt.OnPage != nil {
			s.opt.OnPage(info)
		}
		return nil, nil, false
	}
	recs, err := s.spec.pageRecords(pg.Status, pg.Header, pg.Body)
	if recs != nil {
		info.Records = recs.n
	}
	if s.opt.OnPage != nil {
		s.opt.OnPage(info)
	}
	if err != nil {
		s.setEnd("error", fmt.Errorf("page %d: %w", n, err))
		return nil, nil, false
	}
	return pg, recs, true
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

// advance works out where the page after page n (at pos) is, and whether
// there is one.
func (s *syncer) advance(pg *engine.Page, pos Resume, n int, recs *pageRecords, seen map[uint64]bool) (*Resume, bool, error) {
	next := &Resume{Cursor: s.start, Pages: n}
	done := recs.n == 0
	spec := s.spec
	switch spec.pagType {
	case "":
		done = true
	case steps.PaginatePage:
		next.Page = map[string]any{"number": toInt(pos.Page["number"]) + 1}
		if spec.size > 0 {
			next.Page["size"] = spec.size
		}
	case steps.PaginateOffset:
		next.Page = map[string]any{"offset": toInt(pos.Page["offset"]) + recs.n, "limit": spec.size}
	default:
		tok, found, err := spec.token(pg)
		if err != nil {
			return nil, false, fmt.Errorf("page %d: reading the next %s: %w", n, spec.pagType, err)
		}
		if !found {
			return next, true, nil
		}
		h := hash64(tok)
		if seen[h] {
			return nil, false, fmt.Errorf("page %d: the next %s %q was already followed: %w (stopped rather than loop)", n, spec.tokenName(), tok, ErrLoop)
		}
		seen[h] = true
		next.Token = tok
		if spec.pagType == steps.PaginateCursor {
			next.Page = map[string]any{"cursor": tok}
		} else {
			next.Next = tok
			next.Page = map[string]any{}
		}
	}
	return next, done, nil
}

// pushRecords decodes the records of page n one at a time, as RunAll
// takes them.
func (s *syncer) pushRecords(push func(recMeta, map[string]any, error) bool, recs *pageRecords, n int) bool {
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
		if !push(m, rec, err) {
			return false
		}
	}
	return true
}

// skip is the position after the page at r, or nil when the pages after
// it are reached only through it (cursor, next_url, link) or the size of
// an offset page is not known.
func (s *Spec) skip(r *Resume) *Resume {
	next := &Resume{Cursor: r.Cursor, Pages: r.Pages + 1}
	switch s.pagType {
	case steps.PaginatePage:
		next.Page = map[string]any{"number": toInt(r.Page["number"]) + 1}
		if s.size > 0 {
			next.Page["size"] = s.size
		}
		return next
	case steps.PaginateOffset:
		if s.size <= 0 {
			return nil
		}
		next.Page = map[string]any{"offset": toInt(r.Page["offset"]) + s.size, "limit": s.size}
		return next
	}
	return nil
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

func (s *Spec) firstPage() map[string]any {
	switch s.pagType {
	case steps.PaginatePage:
		p := map[string]any{"number": s.start}
		if s.size > 0 {
			p["size"] = s.size
		}
		return p
	case steps.PaginateOffset:
		return map[string]any{"offset": s.start, "limit": s.size}
	case steps.PaginateCursor:
		return map[string]any{"cursor": ""}
	}
	return map[string]any{}
}

func (s *Spec) tokenName() string {
	switch s.pagType {
	case steps.PaginateCursor:
		return "cursor"
	case steps.PaginateLink:
		return "Link rel=\"next\""
	}
	return "page URL"
}

// token reads the next cursor or link of a page.
func (s *Spec) token(pg *engine.Page) (string, bool, error) {
	switch s.pagType {
	case steps.PaginateCursor:
		return extract(s.cursor, s.format, pg.Status, pg.Header, pg.Body)
	case steps.PaginateNextURL:
		return extract(s.next, s.format, pg.Status, pg.Header, pg.Body)
	case steps.PaginateLink:
		l := nextLink(pg.Header)
		return l, l != "", nil
	}
	return "", false, nil
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
