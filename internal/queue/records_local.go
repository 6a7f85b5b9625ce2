package queue

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/plumbhq/plumb/internal/queue/recordlog"
)

// localRecords keeps an embedded queue's records in segment files under
// DataDir/leads (package recordlog): a batch is one write and one
// fdatasync, and a record is read back from disk by its id, so the memory
// the records take does not grow with how many are kept. The embedded
// queue is its data directory's only process (the directory is locked),
// so the committer is the only writer and checks revisions itself.
type localRecords struct {
	q   *Queue
	log *recordlog.Log
}

func (q *Queue) openLocalRecords() (*localRecords, error) {
	opts := recordlog.Options{Dir: filepath.Join(q.cfg.DataDir, "leads"), TTL: q.cfg.ResultTTL}
	if hook := q.cfg.CommitHook; hook != nil {
		opts.Written = func(entries []recordlog.Entry, path string, off, n int64) {
			ids := make([]string, len(entries))
			for i, e := range entries {
				ids[i] = e.Key
			}
			hook(CommitPoint{IDs: ids, File: path, Offset: off, Length: n})
		}
	}
	l, err := recordlog.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("queue: records: %w", err)
	}
	return &localRecords{q: q, log: l}, nil
}

func (s *localRecords) get(_ context.Context, id string) (Record, uint64, error) {
	b, ver, err := s.log.Get(id)
	if errors.Is(err, recordlog.ErrNotFound) {
		return Record{}, 0, fmt.Errorf("%w: no record of %s", ErrNotFound, id)
	}
	if err != nil {
		return Record{}, 0, err
	}
	rec, err := decodeRecord(b)
	return rec, ver, err
}

func (s *localRecords) put(_ context.Context, ws []*recordWrite) {
	entries := make([]recordlog.Entry, 0, len(ws))
	todo := make([]*recordWrite, 0, len(ws))
	seen := make(map[string]bool, len(ws))
	for _, w := range ws {
		if seen[w.rec.ID] {
			w.err = errConflict // another write of the batch comes first
			continue
		}
		seen[w.rec.ID] = true
		if err := s.check(w); err != nil {
			w.err = err
			continue
		}
		b, err := w.rec.encode()
		if err != nil {
			w.err = err
			continue
		}
		if max := s.q.nc.MaxPayload(); int64(len(b)) > max {
			// what a cluster's bucket would refuse: the same limit here
			w.err = fmt.Errorf("%w: a record of %d bytes (at most %d)", nats.ErrMaxPayload, len(b), max)
			continue
		}
		entries, todo = append(entries, recordlog.Entry{Key: w.rec.ID, Value: b}), append(todo, w)
	}
	vers, err := s.log.Append(entries)
	if err != nil {
		err = s.q.writeFailed(err)
	}
	for i, w := range todo {
		w.err = err
		if err == nil {
			w.rev = vers[i]
		}
	}
}

// check compares the id's record with the revision w expects. A fresh
// write (the first run of a job stored since Open) is checked against the
// recent records only: its job can have no older one, unless its id was
// used by an earlier job, whose record it then replaces.
func (s *localRecords) check(w *recordWrite) error {
	if w.fresh {
		if _, ok := s.log.Recent(w.rec.ID); ok {
			return errConflict
		}
		return nil
	}
	_, ver, err := s.log.Get(w.rec.ID)
	switch {
	case errors.Is(err, recordlog.ErrNotFound):
		ver = 0
	case err != nil:
		return err
	}
	if ver != w.prev {
		return errConflict
	}
	return nil
}

func (s *localRecords) finished(_ context.Context, since time.Time, fn func(seq uint64) bool) error {
	return s.log.Scan(since, func(_ string, value []byte, _ time.Time) bool {
		rec, err := decodeRecord(value)
		if err != nil || rec.State != StateDone {
			return true
		}
		return fn(rec.Seq)
	})
}

func (s *localRecords) close() error { return s.log.Close() }

func (s *localRecords) maintain() error { return s.log.Maintain() }
