package queue

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// State is where a job is in its life.
type State string

// Job states reported by Status.
const (
	// StateQueued: in the jobs stream, waiting for a worker (also between
	// retries; Status.LastError then says why the last attempt failed).
	StateQueued State = "queued"
	// StateRunning: a worker is running it.
	StateRunning State = "running"
	// StateDone: its result is stored (GetResult).
	StateDone State = "done"
	// StateDead: dead-lettered (Dead, Retry).
	StateDead State = "dead"
	// StateLost (lost.go): accepted, then lost from a damaged jobs stream.
)

// Status describes one job.
type Status struct {
	ID    string
	State State
	// Attempts made so far (deliveries), when known.
	Attempts int
	// LastError of the last failed attempt, if any.
	LastError string
	// Updated is when the state was last recorded, when known.
	Updated time.Time
}

// PutResult stores result as the result of job id (kept for
// Config.ResultTTL), replacing any record of it. Consume stores handler
// results itself; PutResult is for results produced elsewhere (a
// synchronous run).
func (q *Queue) PutResult(ctx context.Context, id string, result []byte) error {
	if !ValidID(id) {
		return fmt.Errorf("queue: put result %q: %w", id, ErrInvalidID)
	}
	if result == nil {
		result = []byte{}
	}
	rec := &Record{ID: id, State: StateDone, Result: result, Updated: time.Now().UTC()}
	for range 3 { // another writer in between: write over it
		_, rev, err := q.records.get(ctx, id)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("queue: put result %s: %w", id, err)
		}
		w := &recordWrite{rec: rec, prev: rev}
		q.records.put(ctx, []*recordWrite{w})
		if !errors.Is(w.err, errConflict) {
			if w.err != nil {
				return fmt.Errorf("queue: put result %s: %w", id, w.err)
			}
			return nil
		}
	}
	return fmt.Errorf("queue: put result %s: %w", id, errConflict)
}

// GetResult returns the stored result of job id, or ErrNotFound.
func (q *Queue) GetResult(ctx context.Context, id string) ([]byte, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("queue: get result %q: %w", id, ErrInvalidID)
	}
	rec, _, err := q.records.get(ctx, id)
	if err == nil && rec.State != StateDone {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("queue: get result %s: %w", id, err)
	}
	return rec.Result, nil
}

// Record returns the record of job id (ErrNotFound when it has none: the
// job never ran a second time nor finished, or its record expired).
func (q *Queue) Record(ctx context.Context, id string) (Record, error) {
	if !ValidID(id) {
		return Record{}, fmt.Errorf("queue: record %q: %w", id, ErrInvalidID)
	}
	rec, _, err := q.records.get(ctx, id)
	if err != nil {
		return Record{}, fmt.Errorf("queue: record %s: %w", id, err)
	}
	return rec, nil
}

// Status reports where job id is: done (its record says so), dead,
// running, queued or lost (see Lost); ErrNotFound when the queue knows
// nothing of it (never published, or its record expired).
func (q *Queue) Status(ctx context.Context, id string) (Status, error) {
	if !ValidID(id) {
		return Status{}, fmt.Errorf("queue: status %q: %w", id, ErrInvalidID)
	}
	var inStream *Status
	for range 2 { // a job can finish between the lookups; look twice
		rec, _, err := q.records.get(ctx, id)
		if err == nil && rec.State == StateDone {
			return Status{ID: id, State: StateDone, Attempts: rec.Attempts, Updated: rec.Updated}, nil
		} else if err != nil && !errors.Is(err, ErrNotFound) {
			return Status{}, fmt.Errorf("queue: status %s: %w", id, err)
		}
		if dj, err := q.DeadJob(ctx, id); err == nil {
			return Status{ID: id, State: StateDead, Attempts: dj.Deliveries, LastError: dj.Error, Updated: dj.Died}, nil
		} else if !errors.Is(err, ErrNotFound) {
			return Status{}, fmt.Errorf("queue: status %s: %w", id, err)
		}
		raw, err := q.jobs.GetLastMsgForSubject(ctx, q.jobsPrefix+id)
		if err == nil {
			st, finished, err := q.waiting(ctx, id, raw, rec)
			if err != nil || !finished {
				return st, err
			}
			inStream = &st // acknowledged meanwhile: look again
			continue
		} else if !isNotFound(err) {
			return Status{}, fmt.Errorf("queue: status %s: %w", id, err)
		}
	}
	if inStream != nil {
		return *inStream, nil
	}
	if e, err := q.lostKV.Get(ctx, lostKey(id)); err == nil {
		return Status{ID: id, State: StateLost, Updated: e.Created(),
			LastError: "accepted (jobs-stream sequence " + string(e.Value()) + "), then lost from the damaged jobs stream before it ran; send it again"}, nil
	}
	return Status{}, fmt.Errorf("queue: status %s: %w", id, ErrNotFound)
}

// waiting is the status of a job in the jobs stream without a result:
// queued (not delivered yet, or waiting for a retry: its record says so)
// or running (delivered to a worker). finished: the workers acknowledged
// it meanwhile (its record or dead letter was stored after it was looked
// for).
func (q *Queue) waiting(ctx context.Context, id string, raw *jetstream.RawStreamMsg, rec Record) (st Status, finished bool, err error) {
	st = Status{ID: id, State: StateQueued, Updated: raw.Time}
	mine := rec.ID != "" && rec.Seq == raw.Sequence
	if mine {
		st.State, st.Attempts, st.LastError, st.Updated = rec.State, rec.Attempts, rec.LastError, rec.Updated
	}
	ci, err := q.cons.Info(ctx)
	if err != nil {
		return Status{}, false, fmt.Errorf("queue: status %s: %w", id, err)
	}
	if raw.Sequence <= ci.AckFloor.Stream {
		return st, true, nil
	}
	if v, ok := q.running.Load(id); ok && v.(*runningJob).seq == raw.Sequence {
		r := v.(*runningJob)
		return Status{ID: id, State: StateRunning, Attempts: r.attempt, LastError: st.LastError, Updated: r.started}, false, nil
	}
	if !mine && raw.Sequence <= ci.Delivered.Stream {
		st.State = StateRunning // delivered (to another process), and no retry recorded
	}
	return st, false, nil
}

func isNotFound(err error) bool {
	return errors.Is(notFound(err), ErrNotFound)
}

var bucketRE = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// KV opens (creating or updating) the key-value bucket "<name>_<bucket>"
// with the queue's replicas, file storage, one value per key and entries
// expiring after ttl (0: never). Other subsystems keep shared state here:
// webhook dedupe, sync cursors, tokens, rate budgets. Use the bucket's
// Create and Update (compare-and-set on the revision) for leases and
// counters.
func (q *Queue) KV(ctx context.Context, bucket string, ttl time.Duration) (jetstream.KeyValue, error) {
	if !bucketRE.MatchString(bucket) {
		return nil, fmt.Errorf("queue: bucket %q: want 1-64 of [a-z0-9_-]: %w", bucket, ErrInvalidID)
	}
	return q.kv(ctx, bucket, ttl)
}

// Stream creates (or updates) a stream of the queue's NATS cluster for
// data the queue does not model, retried like the queue's own streams at
// start (each call bounded). It is named "<NAME>_<WHAT>" and takes the
// subjects "<name>.<what>.>" (what lowercased), with the queue's replicas,
// unless cfg sets them; subject is its first subject without the ">".
func (q *Queue) Stream(ctx context.Context, what string, cfg jetstream.StreamConfig) (st jetstream.Stream, subject string, err error) {
	if !bucketRE.MatchString(strings.ToLower(what)) {
		return nil, "", fmt.Errorf("queue: stream %q: want 1-64 of [a-z0-9_-]: %w", what, ErrInvalidID)
	}
	cfg.Name = streamName(q.cfg.Name, strings.ToUpper(what))
	if len(cfg.Subjects) == 0 {
		cfg.Subjects = []string{q.cfg.Name + "." + strings.ToLower(what) + ".>"}
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = q.cfg.Replicas
	}
	st, err = retry(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return q.js.CreateOrUpdateStream(ctx, cfg)
	})
	if err != nil {
		return nil, "", fmt.Errorf("queue: stream %s: %w", cfg.Name, err)
	}
	return st, strings.TrimSuffix(cfg.Subjects[0], ">"), nil
}

func (q *Queue) kv(ctx context.Context, bucket string, ttl time.Duration) (jetstream.KeyValue, error) {
	name := q.cfg.Name + "_" + bucket
	kv, err := retry(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return q.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:   name,
			History:  1,
			TTL:      ttl,
			Storage:  jetstream.FileStorage,
			Replicas: q.cfg.Replicas,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("queue: bucket %s: %w", name, err)
	}
	return kv, nil
}

// Stats is a snapshot of the queue's counters.
type Stats struct {
	// Depth is the number of jobs not finished: waiting, running or
	// waiting for a retry (Pending + InFlight).
	Depth uint64
	// Pending jobs have not been delivered yet.
	Pending uint64
	// InFlight jobs were delivered and not yet acked: running, fetched by a
	// worker, or waiting out a retry delay.
	InFlight int
	// Redelivered jobs are in flight for a second or later time.
	Redelivered int
	// Dead is the number of dead letters.
	Dead uint64
	// OldestPending is when the oldest job not delivered yet was stored
	// (zero when none waits): how far behind the workers are.
	OldestPending time.Time
}

// Stats returns the queue's counters (three or four round trips to
// JetStream).
func (q *Queue) Stats(ctx context.Context) (Stats, error) {
	ci, err := q.cons.Info(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("queue: stats: %w", err)
	}
	ds, err := q.dead.Info(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("queue: stats: %w", err)
	}
	st := Stats{
		Depth:       ci.NumPending + uint64(ci.NumAckPending),
		Pending:     ci.NumPending,
		InFlight:    ci.NumAckPending,
		Redelivered: ci.NumRedelivered,
		Dead:        ds.State.Msgs,
	}
	if ci.NumPending > 0 {
		// the next job to deliver: the first one after the last delivered
		raw, err := q.jobs.GetMsg(ctx, ci.Delivered.Stream+1, jetstream.WithGetMsgSubject(q.jobsPrefix+"*"))
		if err != nil && !isNotFound(err) {
			return Stats{}, fmt.Errorf("queue: stats: %w", err)
		}
		if err == nil {
			st.OldestPending = raw.Time
		}
	}
	return st, nil
}
