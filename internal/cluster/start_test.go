package cluster_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/cluster"
	"github.com/plumbhq/plumb/internal/queue"
	"github.com/plumbhq/plumb/internal/queue/natstest"
)

// TestConcurrentStart: three instances start at the same moment on a fresh
// 3-node cluster (a Deployment's replicas do) and all open the queue and
// the shared buckets. nats-server leaves all but one of concurrent creates
// of a bucket with a TTL unanswered; the queue's short first attempt
// timeout makes the others find it made.
func TestConcurrentStart(t *testing.T) {
	if testing.Short() {
		t.Skip("3-node cluster: skipped with -short")
	}
	t.Parallel()
	c := natstest.StartCluster(t, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			q, err := queue.Open(ctx, queue.Config{URLs: c.URLs(), Replicas: 3})
			if err != nil {
				t.Errorf("instance %d: %v after %s", i+1, err, time.Since(start))
				return
			}
			defer q.Close()
			if _, err := cluster.Open(ctx, q, cluster.Config{}); err != nil {
				t.Errorf("instance %d: %v after %s", i+1, err, time.Since(start))
				return
			}
			t.Logf("instance %d ready after %s", i+1, time.Since(start).Round(time.Millisecond))
		})
	}
	wg.Wait()
}
