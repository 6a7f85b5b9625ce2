package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/plumbhq/plumb/engine"
)

// collect runs the records (the collector): it takes the results in
// order, saving the state at each point whose records all have one.
func (s *syncRun) collect(ctx context.Context, emit func(Record, *engine.Result) error) {
	emitted := -1
	for idx, res := range s.r.RunAll(ctx, s.leads, engine.RunAllOptions{Concurrency: s.opt.Concurrency}) {
		if s.saveUpTo(idx, true); s.writeErr != nil {
			break
		}
		rec := s.record(idx, res)
		emitted = idx
		if s.writeErr = emit(rec, res); s.writeErr != nil {
			break
		}
		if s.saveUpTo(idx, false); s.writeErr != nil {
			break
		}
	}
	if s.writeErr == nil {
		s.saveUpTo(emitted+1, true) // pages without records after the last result
	}
}

// record counts a result and notes its record for the retry list.
func (s *syncRun) record(idx int, res *engine.Result) Record {
	m := s.ledger.take(idx)
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
func (s *syncRun) fail(id string, m recMeta, reason string) {
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

// saveUpTo saves the state at the points whose records all have a
// result: those before idx (strict) or up to idx. The output is flushed
// first.
func (s *syncRun) saveUpTo(idx int, strict bool) {
	due := s.ledger.due(idx, strict)
	if len(due) == 0 {
		return
	}
	if s.opt.Flush != nil {
		if s.writeErr = s.opt.Flush(); s.writeErr != nil {
			return // the output did not get there: the state does not either
		}
	}
	for _, p := range due {
		s.save(p)
	}
}

// save saves the state at p, with the retry list's changes so far.
func (s *syncRun) save(p point) {
	state := &s.state
	if !p.retry {
		state.Cursor = p.cursor
		state.Resume = p.resume.masked(s.r.Redact) // no stored secret in the state file
		state.Last.Pages++
		state.Total.Pages++
		state.Last.Records += int64(p.records)
		state.Total.Records += int64(p.records)
		s.rep.Committed++
	}
	state.Updated = s.now()
	if s.saveErr == nil {
		s.saveErr = s.store.Commit(s.storeCtx, s.spec.Key, Commit{State: state, Failed: s.failed, Done: s.cleared})
	}
	clear(s.failed)
	s.cleared = s.cleared[:0]
}

// finish saves how the sync ended.
func (s *syncRun) finish(ctx context.Context) (*Report, error) {
	l := &s.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	rep, state := s.rep, &s.state
	rep.Ended, rep.Err = l.ended, l.pageErr
	if l.fatal != nil {
		return rep, l.fatal
	}
	if s.writeErr != nil {
		rep.Ended, rep.Err = "error", fmt.Errorf("%w: %w", ErrWriteResults, s.writeErr)
	} else if len(l.points) > 0 || ctx.Err() != nil {
		if rep.Ended == "complete" || rep.Ended == "" {
			rep.Ended = "canceled"
		}
	}
	if rep.Ended == "" {
		rep.Ended = "canceled"
	}
	rep.Pages = l.fetched
	state.Finished, state.Ended = s.now(), rep.Ended
	if rep.Err != nil {
		state.Ended += ": " + rep.Err.Error()
	}
	saveErr := s.saveErr
	if saveErr == nil {
		saveErr = s.store.Commit(s.storeCtx, s.spec.Key, Commit{State: state})
	}
	rep.State = *state
	if saveErr != nil {
		return rep, fmt.Errorf("saving the sync state: %w", saveErr)
	}
	rep.Pending, _ = s.store.RetryCount(s.storeCtx, s.spec.Key)
	return rep, nil
}
