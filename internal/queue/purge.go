package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// purgeEvery is how often the jobs stream drops the jobs below the
// workers' ack floor.
const purgeEvery = time.Second

// purgeLoop runs while the queue is open: every purgeEvery, the jobs the
// workers have acknowledged up to their ack floor leave the jobs stream in
// one purge. (The stream keeps the jobs acknowledged above the floor — out
// of order, behind a job still running or waiting for a retry — until the
// floor passes them.)
func (q *Queue) purgeLoop(stop <-chan struct{}) {
	t := time.NewTicker(purgeEvery)
	defer t.Stop()
	var purged uint64
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if q.health.err() != nil {
			continue
		}
		if m, ok := q.records.(interface{ maintain() error }); ok {
			if err := m.maintain(); err != nil {
				q.log.Warn("deleting expired records", "err", err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), q.cfg.ConnectTimeout)
		floor, err := q.purge(ctx, purged)
		cancel()
		if err != nil {
			q.log.Debug("purging finished jobs", "err", err)
			continue
		}
		purged = floor
	}
}

// purge drops the jobs at or below the consumer's ack floor, if it moved
// past done; it returns the floor.
func (q *Queue) purge(ctx context.Context, done uint64) (uint64, error) {
	ci, err := q.cons.Info(ctx)
	if err != nil {
		return done, err
	}
	floor := ci.AckFloor.Stream
	if floor <= done {
		return floor, nil
	}
	if err := q.jobs.Purge(ctx, jetstream.WithPurgeSequence(floor+1)); err != nil {
		return done, fmt.Errorf("queue: purging the jobs stream below %d: %w", floor+1, err)
	}
	return floor, nil
}

// migrate moves the jobs of a jobs stream made by a version before
// records (a work queue, which cannot become a limits stream) to the jobs
// stream, then deletes it and the status bucket of that version. The job
// ledger names the old stream's sequences, so it starts afresh. Results of
// that version stay readable (legacyRecords) until they expire.
func (q *Queue) migrate(ctx context.Context) error {
	old, err := q.js.Stream(ctx, q.oldJobsStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("queue: looking for an earlier jobs stream: %w", err)
	}
	if err := q.ledgerStream.Purge(ctx); err != nil {
		return fmt.Errorf("queue: resetting the job ledger: %w", err)
	}
	info, err := old.Info(ctx)
	if err != nil {
		return fmt.Errorf("queue: reading the earlier jobs stream: %w", err)
	}
	moved := 0
	// (a work queue takes no ordered consumer: the jobs are read one by one)
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		raw, err := old.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("queue: reading the earlier jobs stream: %w", err)
		}
		id := raw.Header.Get(HeaderJobID)
		if id == "" {
			id = strings.TrimPrefix(raw.Subject, q.oldJobsPrefix)
		}
		if !ValidID(id) {
			q.log.Warn("an earlier job with an invalid id is not moved", "seq", seq)
			continue
		}
		m := &nats.Msg{Subject: q.jobsPrefix + id, Data: raw.Data, Header: nats.Header{}}
		for k, v := range raw.Header {
			m.Header[k] = v
		}
		m.Header.Del(jetstream.MsgIDHeader)
		m.Header.Set(HeaderJobID, id)
		ack, err := q.publish(ctx, m, fmt.Sprintf("migrate-%s-%d", id, seq))
		if err != nil {
			return fmt.Errorf("queue: moving the jobs of an earlier version: %w", err)
		}
		if !ack.Duplicate {
			q.ledger.add(ack.Sequence, id)
			moved++
		}
	}
	if err := q.js.DeleteStream(ctx, q.oldJobsStream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("queue: deleting the earlier jobs stream: %w", err)
	}
	if err := q.js.DeleteKeyValue(ctx, q.cfg.Name+"_status"); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		q.log.Warn("deleting the status bucket of an earlier version", "err", err)
	}
	q.log.Info("moved the jobs of an earlier version's jobs stream", "jobs", moved, "from", q.oldJobsStream, "to", q.jobsStream)
	return nil
}
