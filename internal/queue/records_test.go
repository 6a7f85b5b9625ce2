package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// storeDone stores a done record of job id (at seq) with result, as a
// worker's commit would.
func storeDone(t *testing.T, q *Queue, id string, seq uint64, result []byte) {
	t.Helper()
	w := &recordWrite{rec: &Record{ID: id, Seq: seq, State: StateDone, Attempts: 1, Result: result}}
	q.records.put(ctxT(t), []*recordWrite{w})
	if w.err != nil {
		t.Fatal(w.err)
	}
}

// recordWrites counts the records written (every version) to q's store.
func recordWrites(t *testing.T, q *Queue) int {
	t.Helper()
	switch s := q.records.(type) {
	case *localRecords:
		return s.log.Stats().Frames
	case *kvRecords:
		info, err := s.stream.Info(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		return int(info.State.LastSeq)
	}
	t.Fatalf("records store %T", q.records)
	return 0
}

// Acknowledged jobs leave the jobs stream in one purge up to the workers'
// ack floor; a job still running holds the floor, and the jobs finished
// after it stay until it is done.
func TestPurgeBelowAckFloor(t *testing.T) {
	t.Parallel()
	q := openQueue(t, testConfig(t))
	ctx := ctxT(t)
	release := make(chan struct{})
	consume(t, q, func(ctx context.Context, d Delivery) ([]byte, error) {
		if d.ID == "slow" {
			<-release
		}
		return nil, nil
	})
	for _, id := range []string{"slow", "a", "b", "c"} {
		if _, err := q.Publish(ctx, Job{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "a, b and c done", func() bool {
		for _, id := range []string{"a", "b", "c"} {
			if status(t, q, id).State != StateDone {
				return false
			}
		}
		return true
	})
	held := func() uint64 {
		info, err := q.jobs.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	if _, err := q.purge(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if n := held(); n != 4 {
		t.Errorf("%d jobs in the stream while the first one runs, want 4 (the floor is below them)", n)
	}
	close(release)
	waitFor(t, 20*time.Second, "every job acked", func() bool { return stats(t, q).Depth == 0 })
	if _, err := q.purge(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if n := held(); n != 0 {
		t.Errorf("%d jobs in the stream once all were acked and purged, want 0", n)
	}
}

// A data directory of a version before records (a work-queue jobs stream,
// results and status buckets) is taken over at Open: the jobs still queued
// are moved and run, the old stream and status bucket are gone, and the
// old results are still answered.
func TestMigrateEarlierLayout(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	q := openQueue(t, cfg)
	ctx := ctxT(t)
	_, err := q.js.CreateStream(ctx, jetstream.StreamConfig{Name: "PLUMB_JOBS", Subjects: []string{"plumb.jobs.*"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"q1", "q2"} {
		m := &nats.Msg{Subject: "plumb.jobs." + id, Data: []byte(`{"n":1}`), Header: nats.Header{}}
		m.Header.Set(HeaderJobID, id)
		m.Header.Set(HeaderKind, string(KindLead))
		if _, err := q.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	results, err := q.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "plumb_results"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := results.Put(ctx, "old-done", []byte("old result")); err != nil {
		t.Fatal(err)
	}
	if _, err := q.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "plumb_status"}); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	q = openQueue(t, cfg)
	if _, err := q.js.Stream(ctx, "PLUMB_JOBS"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("the earlier jobs stream after Open: %v, want gone", err)
	}
	if _, err := q.js.KeyValue(ctx, "plumb_status"); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Errorf("the earlier status bucket after Open: %v, want gone", err)
	}
	for _, id := range []string{"q1", "q2"} {
		if st := status(t, q, id); st.State != StateQueued {
			t.Errorf("moved job %s: %+v", id, st)
		}
	}
	ran := make(chan string, 2)
	consume(t, q, func(ctx context.Context, d Delivery) ([]byte, error) {
		if d.Kind != KindLead || string(d.Payload) != `{"n":1}` {
			t.Errorf("moved job %+v", d.Job)
		}
		ran <- d.ID
		return []byte("new"), nil
	})
	<-ran
	<-ran
	waitFor(t, 20*time.Second, "the moved jobs done", func() bool { return stats(t, q).Depth == 0 })
	if r, err := q.GetResult(ctx, "old-done"); err != nil || string(r) != "old result" {
		t.Errorf("the earlier version's result: %q, %v", r, err)
	}
	if st := status(t, q, "old-done"); st.State != StateDone {
		t.Errorf("the earlier version's done job: %+v", st)
	}
}
