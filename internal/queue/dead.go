package queue

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadJob is a dead-lettered job.
type DeadJob struct {
	Job
	// Error is the last attempt's error (or why deliveries ran out).
	Error string
	// Deliveries made before the job was dead-lettered.
	Deliveries int
	// Enqueued is when the job was first published; Died when it was
	// dead-lettered.
	Enqueued, Died time.Time
}

// DefaultDeadLimit is how many dead letters Dead returns when asked for 0.
const DefaultDeadLimit = 1000

// Dead lists up to limit dead letters, oldest first (limit <= 0:
// DefaultDeadLimit).
func (q *Queue) Dead(ctx context.Context, limit int) ([]DeadJob, error) {
	if limit <= 0 {
		limit = DefaultDeadLimit
	}
	info, err := q.dead.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("queue: dead letters: %w", err)
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	limit = int(min(uint64(limit), info.State.Msgs))
	cons, err := q.dead.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("queue: dead letters: %w", err)
	}
	out := make([]DeadJob, 0, limit)
	for len(out) < limit {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			return out, fmt.Errorf("queue: dead letters: %w", err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return out, fmt.Errorf("queue: dead letters: %w", err)
		}
		out = append(out, q.deadJob(msg.Subject(), msg.Headers(), msg.Data(), meta.Timestamp))
		if meta.NumPending == 0 {
			break
		}
	}
	return out, nil
}

// DeadJob returns the dead letter of job id, or ErrNotFound.
func (q *Queue) DeadJob(ctx context.Context, id string) (DeadJob, error) {
	if !ValidID(id) {
		return DeadJob{}, fmt.Errorf("queue: dead letter %q: %w", id, ErrInvalidID)
	}
	raw, err := q.dead.GetLastMsgForSubject(ctx, q.deadPrefix+id)
	if err != nil {
		return DeadJob{}, fmt.Errorf("queue: dead letter %s: %w", id, notFound(err))
	}
	return q.deadJob(raw.Subject, raw.Header, raw.Data, raw.Time), nil
}

func (q *Queue) deadJob(subject string, h nats.Header, data []byte, died time.Time) DeadJob {
	dj := DeadJob{
		Job: Job{
			ID:          h.Get(HeaderJobID),
			Kind:        kindOf(h),
			Integration: h.Get(HeaderIntegration),
			Payload:     data,
			DedupeKey:   h.Get(HeaderDedupeKey),
		},
		Error: h.Get(HeaderError),
		Died:  died,
	}
	if dj.ID == "" {
		dj.ID = strings.TrimPrefix(subject, q.deadPrefix)
	}
	traceOf(h, &dj.Job)
	dj.Deliveries, _ = strconv.Atoi(h.Get(HeaderDeliveries))
	dj.Enqueued, _ = time.Parse(time.RFC3339Nano, h.Get(HeaderEnqueued))
	return dj
}

// Retry publishes dead job id again under the same id, with a fresh
// delivery count, and removes its dead letter. Retrying the same dead
// letter twice within the dedupe window publishes it once.
func (q *Queue) Retry(ctx context.Context, id string) (Published, error) {
	if !ValidID(id) {
		return Published{}, fmt.Errorf("queue: retry %q: %w", id, ErrInvalidID)
	}
	raw, err := q.dead.GetLastMsgForSubject(ctx, q.deadPrefix+id)
	if err != nil {
		return Published{}, fmt.Errorf("queue: retry %s: %w", id, notFound(err))
	}
	// (the job's record, if any, names the old sequence: the re-queued
	// job counts its attempts afresh)
	msg := &nats.Msg{Subject: q.jobsPrefix + id, Data: raw.Data, Header: nats.Header{}}
	for _, k := range append([]string{HeaderJobID, HeaderKind, HeaderIntegration, HeaderDedupeKey}, traceHeaders[:]...) {
		if v := raw.Header.Get(k); v != "" {
			msg.Header.Set(k, v)
		}
	}
	msg.Header.Set(HeaderJobID, id)
	msg.Header.Set(HeaderEnqueued, time.Now().UTC().Format(time.RFC3339Nano))
	ack, err := q.publish(ctx, msg, "retry-"+id+"-"+strconv.FormatUint(raw.Sequence, 10))
	if err != nil {
		return Published{}, fmt.Errorf("queue: retry %s: %w", id, err)
	}
	if !ack.Duplicate {
		q.ledger.add(ack.Sequence, id)
	}
	// The job is queued again; now drop the dead letter. If this fails the
	// job is both queued and dead; a second Retry is deduped and finishes
	// the removal.
	if err := q.dead.Purge(ctx, jetstream.WithPurgeSubject(q.deadPrefix+id)); err != nil {
		return Published{}, fmt.Errorf("queue: retry %s: job re-queued but dead letter not removed: %w", id, err)
	}
	return Published{ID: id, Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
}
