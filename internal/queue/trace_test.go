package queue

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestJobTraceTravels: a job's request id and trace context reach its
// handler, through a batch too, stay on its dead letter and on a retry of
// it; a value that could end a header is refused.
func TestJobTraceTravels(t *testing.T) {
	t.Parallel()
	q := openQueue(t, testConfig(t)) // MaxDeliver 3
	ctx := ctxT(t)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	var mu sync.Mutex
	seen := map[string][]Job{}
	heal := false
	consume(t, q, func(_ context.Context, d Delivery) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		seen[d.ID] = append(seen[d.ID], d.Job)
		if d.ID == "dies" && !heal {
			return nil, errors.New("partner down")
		}
		return []byte("ok"), nil
	})
	job := func(id, rid string) Job {
		return Job{ID: id, Kind: KindLead, RequestID: rid, TraceParent: tp, TraceState: "k=v"}
	}
	if _, err := q.Publish(ctx, job("dies", "req-1")); err != nil {
		t.Fatal(err)
	}
	if _, errs := q.PublishAll(ctx, []Job{job("b1", "req-2"), job("b2", "req-2")}); errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if _, err := q.Publish(ctx, job("bad", "req\r\nX-Evil: 1")); err == nil {
		t.Fatal("a request id with CR LF was stored")
	}
	waitFor(t, 20*time.Second, "dies dead, b1 and b2 done", func() bool {
		return status(t, q, "dies").State == StateDead && status(t, q, "b1").State == StateDone && status(t, q, "b2").State == StateDone
	})
	dead, err := q.Dead(ctx, 0)
	if err != nil || len(dead) != 1 || dead[0].RequestID != "req-1" || dead[0].TraceParent != tp || dead[0].TraceState != "k=v" {
		t.Fatalf("dead letters %+v, %v: want the job with its request id and trace context", dead, err)
	}
	mu.Lock()
	heal = true
	mu.Unlock()
	if _, err := q.Retry(ctx, "dies"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the retried job done", func() bool { return status(t, q, "dies").State == StateDone })
	mu.Lock()
	defer mu.Unlock()
	want := map[string]string{"dies": "req-1", "b1": "req-2", "b2": "req-2"}
	for id, rid := range want {
		if len(seen[id]) == 0 {
			t.Errorf("%s never delivered", id)
		}
		for _, j := range seen[id] {
			if j.RequestID != rid || j.TraceParent != tp || j.TraceState != "k=v" {
				t.Errorf("%s delivered as %+v, want request id %s and the trace context", id, j, rid)
			}
		}
	}
	if len(seen["dies"]) != 4 {
		t.Errorf("dies delivered %d times, want 3 and the retry", len(seen["dies"]))
	}
}
