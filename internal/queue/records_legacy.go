package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// legacyRecords answers, besides a records store, the results an earlier
// version stored in the results bucket (<name>_results) before there were
// records, until they expire: a job there is done.
type legacyRecords struct {
	records
	q       *Queue
	results jetstream.KeyValue
}

// withLegacy wraps s with the results bucket of an earlier version, if one
// is left.
func (q *Queue) withLegacy(ctx context.Context, s records) (records, error) {
	kv, err := q.js.KeyValue(ctx, q.cfg.Name+"_results")
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("queue: looking for the results of an earlier version: %w", err)
	}
	return &legacyRecords{records: s, q: q, results: kv}, nil
}

func (s *legacyRecords) get(ctx context.Context, id string) (Record, uint64, error) {
	rec, rev, err := s.records.get(ctx, id)
	if !errors.Is(err, ErrNotFound) {
		return rec, rev, err
	}
	e, lerr := s.results.Get(ctx, id)
	if lerr != nil {
		return Record{}, 0, err
	}
	return Record{ID: id, State: StateDone, Result: e.Value(), Updated: e.Created()}, 0, nil
}

func (s *legacyRecords) finished(ctx context.Context, since time.Time, fn func(seq uint64) bool) error {
	more := true
	err := s.records.finished(ctx, since, func(seq uint64) bool {
		more = fn(seq)
		return more
	})
	if err != nil || !more {
		return err
	}
	st, err := s.q.js.Stream(ctx, "KV_"+s.results.Bucket())
	if err != nil {
		return err
	}
	return scanDone(ctx, st, since, fn)
}

func (s *legacyRecords) close() error {
	if c, ok := s.records.(interface{ close() error }); ok {
		return c.close()
	}
	return nil
}

func (s *legacyRecords) maintain() error {
	if m, ok := s.records.(interface{ maintain() error }); ok {
		return m.maintain()
	}
	return nil
}
