package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
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

// statusRecord is the value of a status bucket entry.
type statusRecord struct {
	State State `json:"state"`
	// Seq is the job's stream sequence: a re-published job with the same
	// id starts its count afresh.
	Seq       uint64    `json:"seq"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
	Updated   time.Time `json:"updated"`
}

func (q *Queue) writeStatus(_ context.Context, id string, rec statusRecord, log loggerLike) {
	b, err := rec.encode()
	if err == nil {
		// Status is informational and the job's fate does not depend on it,
		// so the write is not waited for (the worker saves a round trip and
		// an fsync per job). Writes on one connection keep their order, so a
		// later status never lands before an earlier one.
		_, err = q.js.PublishAsync("$KV."+q.status.Bucket()+"."+id, b)
	}
	if err != nil {
		log.Warn("recording job status", "err", err)
	}
}

// writeStatusBeforeRetry records the status of a job about to be handed
// back for another attempt, and waits for it: the next attempt reads the
// last error from it (Delivery.LastError), and a redelivery may come
// before an unwaited write lands. Failed attempts are rare, so the wait
// costs the hot path nothing.
func (q *Queue) writeStatusBeforeRetry(ctx context.Context, id string, rec statusRecord, log loggerLike) {
	b, err := rec.encode()
	if err == nil {
		_, err = q.status.Put(ctx, id, b)
	}
	if err != nil {
		log.Warn("recording job status", "err", err)
	}
}

// encode is the stored form of a status record, stamped now, its error
// bounded.
func (rec statusRecord) encode() ([]byte, error) {
	rec.Updated = time.Now().UTC()
	if len(rec.LastError) > 4096 {
		rec.LastError = rec.LastError[:4096] + "…"
	}
	return json.Marshal(rec)
}

func (q *Queue) readStatus(ctx context.Context, id string) (statusRecord, error) {
	var rec statusRecord
	e, err := q.status.Get(ctx, id)
	if err != nil {
		return rec, notFound(err)
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return rec, fmt.Errorf("queue: status of %s: %w", id, err)
	}
	return rec, nil
}

// PutResult stores the result of job id (kept for Config.ResultTTL).
// Consume stores handler results itself; PutResult is for results produced
// elsewhere (a synchronous run).
func (q *Queue) PutResult(ctx context.Context, id string, result []byte) error {
	if !ValidID(id) {
		return fmt.Errorf("queue: put result %q: %w", id, ErrInvalidID)
	}
	if _, err := q.results.Put(ctx, id, result); err != nil {
		return fmt.Errorf("queue: put result %s: %w", id, err)
	}
	return nil
}

// GetResult returns the stored result of job id, or ErrNotFound.
func (q *Queue) GetResult(ctx context.Context, id string) ([]byte, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("queue: get result %q: %w", id, ErrInvalidID)
	}
	e, err := q.results.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("queue: get result %s: %w", id, notFound(err))
	}
	return e.Value(), nil
}

// Status reports where job id is: done (result stored), dead, running,
// queued or lost (see Lost); ErrNotFound when the queue knows nothing of it
// (never published, or its result expired).
func (q *Queue) Status(ctx context.Context, id string) (Status, error) {
	if !ValidID(id) {
		return Status{}, fmt.Errorf("queue: status %q: %w", id, ErrInvalidID)
	}
	for range 2 { // a job can finish between the lookups; look twice
		if e, err := q.results.Get(ctx, id); err == nil {
			st := Status{ID: id, State: StateDone, Updated: e.Created()}
			if rec, err := q.readStatus(ctx, id); err == nil {
				st.Attempts = rec.Attempts
			}
			return st, nil
		} else if !isNotFound(err) {
			return Status{}, fmt.Errorf("queue: status %s: %w", id, err)
		}
		if dj, err := q.DeadJob(ctx, id); err == nil {
			return Status{ID: id, State: StateDead, Attempts: dj.Deliveries, LastError: dj.Error, Updated: dj.Died}, nil
		} else if !errors.Is(err, ErrNotFound) {
			return Status{}, fmt.Errorf("queue: status %s: %w", id, err)
		}
		raw, err := q.jobs.GetLastMsgForSubject(ctx, q.jobsPrefix+id)
		if err == nil {
			st := Status{ID: id, State: StateQueued, Updated: raw.Time}
			if rec, err := q.readStatus(ctx, id); err == nil && rec.Updated.After(raw.Time) {
				st.State, st.Attempts, st.LastError, st.Updated = rec.State, rec.Attempts, rec.LastError, rec.Updated
			}
			return st, nil
		} else if !isNotFound(err) {
			return Status{}, fmt.Errorf("queue: status %s: %w", id, err)
		}
	}
	if e, err := q.lostKV.Get(ctx, lostKey(id)); err == nil {
		return Status{ID: id, State: StateLost, Updated: e.Created(),
			LastError: "accepted (jobs-stream sequence " + string(e.Value()) + "), then lost from the damaged jobs stream before it ran; send it again"}, nil
	}
	return Status{}, fmt.Errorf("queue: status %s: %w", id, ErrNotFound)
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
	// Depth is the number of jobs in the jobs stream: waiting, running or
	// waiting for a retry.
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
}

// Stats returns the queue's counters (three round trips to JetStream).
func (q *Queue) Stats(ctx context.Context) (Stats, error) {
	js, err := q.jobs.Info(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("queue: stats: %w", err)
	}
	ci, err := q.cons.Info(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("queue: stats: %w", err)
	}
	ds, err := q.dead.Info(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("queue: stats: %w", err)
	}
	return Stats{
		Depth:       js.State.Msgs,
		Pending:     ci.NumPending,
		InFlight:    ci.NumAckPending,
		Redelivered: ci.NumRedelivered,
		Dead:        ds.State.Msgs,
	}, nil
}
