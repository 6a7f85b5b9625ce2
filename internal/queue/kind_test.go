package queue

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestJobKindTravels: a job's kind reaches its handler, its dead letter
// and the job a retry of that dead letter stores; a job stored without a
// kind arrives with none (so a handler can tell old jobs apart).
func TestJobKindTravels(t *testing.T) {
	t.Parallel()
	q := openQueue(t, testConfig(t)) // MaxDeliver 3
	ctx := ctxT(t)
	var mu sync.Mutex
	seen := map[string][]Kind{}
	var heal bool
	consume(t, q, func(_ context.Context, d Delivery) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		seen[d.ID] = append(seen[d.ID], d.Kind)
		if d.ID == "hook" && !heal {
			return nil, errors.New("partner down")
		}
		return []byte("ok"), nil
	})
	for _, j := range []Job{{ID: "hook", Kind: KindWebhook}, {ID: "lead", Kind: KindLead}, {ID: "old"}} {
		if _, err := q.Publish(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "hook dead, lead and old done", func() bool {
		return status(t, q, "hook").State == StateDead && status(t, q, "lead").State == StateDone && status(t, q, "old").State == StateDone
	})
	dead, err := q.Dead(ctx, 0)
	if err != nil || len(dead) != 1 || dead[0].Kind != KindWebhook {
		t.Fatalf("dead letters %+v, %v: want the webhook job, of its kind", dead, err)
	}
	mu.Lock()
	heal = true
	mu.Unlock()
	if _, err := q.Retry(ctx, "hook"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the retried hook done", func() bool { return status(t, q, "hook").State == StateDone })
	mu.Lock()
	defer mu.Unlock()
	for _, k := range seen["hook"] {
		if k != KindWebhook {
			t.Errorf("hook deliveries %v: want each of kind webhook", seen["hook"])
		}
	}
	if len(seen["hook"]) != 4 || len(seen["lead"]) != 1 || seen["lead"][0] != KindLead || len(seen["old"]) != 1 || seen["old"][0] != "" {
		t.Errorf("deliveries %v", seen)
	}
}
