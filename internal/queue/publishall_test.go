package queue

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// PublishAll stores a body's jobs in atomic batches of up to MaxBatch:
// every job stored once, in order, with consecutive sequences that are the
// jobs' own.
func TestPublishAllBatches(t *testing.T) {
	t.Parallel()
	q := openQueue(t, testConfig(t))
	if !q.atomic {
		t.Fatal("the embedded server did not enable atomic batches on the jobs stream")
	}
	ctx := context.Background()
	n := 2*MaxBatch + 7
	jobs := make([]Job, n)
	for i := range jobs {
		jobs[i] = Job{Integration: "it", Payload: fmt.Appendf(nil, `{"n":%d}`, i)}
	}
	jobs[3].ID = "chosen-id"
	pubs, errs := q.PublishAll(ctx, jobs)
	for i := range jobs {
		if errs[i] != nil {
			t.Fatalf("job %d: %v", i, errs[i])
		}
		p := pubs[i]
		if !p.Batched || p.Duplicate || p.ID == "" {
			t.Fatalf("job %d: %+v, want a fresh batched job", i, p)
		}
		if i > 0 && i%MaxBatch != 0 && p.Sequence != pubs[i-1].Sequence+1 {
			t.Fatalf("job %d at sequence %d after %d", i, p.Sequence, pubs[i-1].Sequence)
		}
	}
	if pubs[3].ID != "chosen-id" {
		t.Errorf("job 3 has id %q, want the one given", pubs[3].ID)
	}
	for _, i := range []int{0, 3, MaxBatch - 1, MaxBatch, n - 1} {
		m, err := q.jobs.GetMsg(ctx, pubs[i].Sequence)
		if err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
		if got, want := string(m.Data), fmt.Sprintf(`{"n":%d}`, i); got != want || m.Header.Get(HeaderJobID) != pubs[i].ID {
			t.Errorf("sequence %d holds %s (id %s), want %s (id %s)", pubs[i].Sequence, got, m.Header.Get(HeaderJobID), want, pubs[i].ID)
		}
		if m.Header.Get(HeaderIntegration) != "it" {
			t.Errorf("sequence %d lost its headers: %v", pubs[i].Sequence, m.Header)
		}
	}
	info, err := q.jobs.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(n) {
		t.Errorf("stream holds %d jobs, want %d", info.State.Msgs, n)
	}
}

// A batch with a duplicate or an invalid job in it is not stored whole: its
// jobs go one by one, the duplicate reported as such, the invalid one as an
// error, the others stored once.
func TestPublishAllFallsBackPerJob(t *testing.T) {
	t.Parallel()
	q := openQueue(t, testConfig(t))
	ctx := context.Background()
	if _, err := q.Publish(ctx, Job{ID: "seen", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	jobs := []Job{
		{ID: "a", Payload: []byte(`{"a":1}`)},
		{ID: "seen", Payload: []byte(`{"again":1}`)},
		{ID: "b", Payload: []byte(`{"b":1}`)},
	}
	pubs, errs := q.PublishAll(ctx, jobs)
	for i, want := range []Published{{ID: "a"}, {ID: "seen", Duplicate: true}, {ID: "b"}} {
		if errs[i] != nil {
			t.Fatalf("job %d: %v", i, errs[i])
		}
		if got := pubs[i]; got.ID != want.ID || got.Duplicate != want.Duplicate || got.Batched {
			t.Errorf("job %d: %+v, want %+v one by one", i, got, want)
		}
	}

	jobs = []Job{{ID: "c", Payload: []byte(`{}`)}, {ID: "not a valid id", Payload: []byte(`{}`)}, {ID: "d", Payload: []byte(`{}`)}}
	pubs, errs = q.PublishAll(ctx, jobs)
	if !errors.Is(errs[1], ErrInvalidID) {
		t.Errorf("invalid job: %v, want ErrInvalidID", errs[1])
	}
	for _, i := range []int{0, 2} {
		if errs[i] != nil || pubs[i].ID != jobs[i].ID || pubs[i].Duplicate {
			t.Errorf("job %d: %+v %v, want stored", i, pubs[i], errs[i])
		}
	}
	info, err := q.jobs.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 5 { // seen, a, b, c, d
		t.Errorf("stream holds %d jobs, want 5", info.State.Msgs)
	}
}
