package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/queue/natstest"
)

// TestClusterSurvivesNodeLoss: two queue instances (two plumb processes)
// on a 3-node JetStream cluster with Replicas 3 share the work; stopping
// the jobs stream's leader node loses nothing and work continues.
func TestClusterSurvivesNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("3-node cluster: skipped with -short")
	}
	t.Parallel()
	c := natstest.StartCluster(t, 3)
	cfg := Config{
		URLs:          c.URLs(),
		Replicas:      3,
		AckWait:       2 * time.Second,
		RetryDelay:    5 * time.Millisecond,
		MaxRetryDelay: 20 * time.Millisecond,
		DrainTimeout:  5 * time.Second,
		Workers:       4,
	}
	q1 := openQueue(t, cfg)
	// The second instance lists the nodes in another order, as another
	// machine's config might.
	cfg2 := cfg
	cfg2.URLs = []string{c.Nodes[2].URL, c.Nodes[1].URL, c.Nodes[0].URL}
	q2 := openQueue(t, cfg2)
	ctx := ctxT(t)

	info, err := q1.jobs.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("jobs stream not R3: %+v", info.Cluster)
	}

	var mu sync.Mutex
	runs := map[string]int{}
	by := map[string]int{}
	handler := func(name string) Handler {
		return func(ctx context.Context, d Delivery) ([]byte, error) {
			mu.Lock()
			runs[d.ID]++
			by[name]++
			mu.Unlock()
			return []byte(name), nil
		}
	}
	consume(t, q1, handler("q1"))
	consume(t, q2, handler("q2"))

	publish := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			q := q1
			if i%2 == 1 {
				q = q2
			}
			if _, err := q.Publish(ctx, Job{ID: fmt.Sprintf("c-%03d", i), Integration: "cluster"}); err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
		}
	}
	allDone := func(n int) func() bool {
		return func() bool {
			for i := range n {
				if _, err := q1.GetResult(ctx, fmt.Sprintf("c-%03d", i)); err != nil {
					return false
				}
			}
			return true
		}
	}
	publish(0, 100)
	waitFor(t, 30*time.Second, "first 100 jobs done", allDone(100))

	// Stop the node leading the jobs stream.
	info, err = q1.jobs.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stopped := -1
	for i, n := range c.Nodes {
		if n.Name == info.Cluster.Leader {
			stopped = i
		}
	}
	if stopped < 0 {
		t.Fatalf("leader %q is not a node", info.Cluster.Leader)
	}
	t.Logf("stopping %s, leader of the jobs stream", info.Cluster.Leader)
	c.Stop(stopped)

	publish(100, 200)
	waitFor(t, 40*time.Second, "all 200 jobs done after the node loss", allDone(200))
	// Any instance answers for any job.
	for _, id := range []string{"c-000", "c-199"} {
		if st, err := q2.Status(ctx, id); err != nil || st.State != StateDone {
			t.Fatalf("q2.Status(%s) = %+v, %v", id, st, err)
		}
	}
	// The node comes back on its store and the cluster carries on.
	c.Nodes[stopped].Restart(t)
	c.WaitForLeader(t)
	publish(200, 220)
	waitFor(t, 40*time.Second, "jobs after the node's return done", allDone(220))

	mu.Lock()
	defer mu.Unlock()
	repeats := 0
	for _, n := range runs {
		repeats += n - 1
	}
	t.Logf("runs by instance %v; repeated runs %d", by, repeats)
	if by["q1"] == 0 || by["q2"] == 0 {
		t.Errorf("work not shared: %v", by)
	}
}

// TestClusterDeadInstanceJobsRunElsewhere: an instance cut off with jobs
// in flight (its connection gone, as when its process is killed: no ack,
// no hand-back, no progress signals) leaves them to the other instance,
// which runs them once the ack wait — default 5s — passes. The time it
// took is logged (BENCHMARKS.md); the test waits for counts.
func TestClusterDeadInstanceJobsRunElsewhere(t *testing.T) {
	if testing.Short() {
		t.Skip("3-node cluster: skipped with -short")
	}
	t.Parallel()
	const jobs = 20
	c := natstest.StartCluster(t, 3)
	cfg := Config{URLs: c.URLs(), Replicas: 3, DrainTimeout: time.Second, Workers: jobs}
	q1 := openQueue(t, cfg)
	q2 := openQueue(t, cfg)
	ctx := ctxT(t)
	entered := make(chan string, jobs)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	consume(t, q1, func(ctx context.Context, d Delivery) ([]byte, error) {
		entered <- d.ID
		select { // the dead process's handlers never finish
		case <-release:
		case <-ctx.Done():
		}
		return nil, errors.New("cut off")
	})
	for i := range jobs {
		if _, err := q1.Publish(ctx, Job{ID: fmt.Sprintf("d-%02d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for range jobs {
		<-entered
	}
	q1.nc.Close() // killed: the server hears nothing more from it
	cut := time.Now()
	var mu sync.Mutex
	ran := map[string]int{}
	consume(t, q2, func(ctx context.Context, d Delivery) ([]byte, error) {
		mu.Lock()
		ran[d.ID]++
		mu.Unlock()
		return []byte("q2"), nil
	})
	waitFor(t, 2*time.Minute, "the dead instance's jobs done by the other", func() bool {
		for i := range jobs {
			if r, err := q2.GetResult(ctx, fmt.Sprintf("d-%02d", i)); err != nil || string(r) != "q2" {
				return false
			}
		}
		return true
	})
	took := time.Since(cut)
	mu.Lock()
	defer mu.Unlock()
	for id, n := range ran {
		if n != 1 {
			t.Errorf("job %s ran %d times on the live instance", id, n)
		}
	}
	t.Logf("%d jobs in flight on a cut-off instance: all done by the other %v later (ack wait %v)", jobs, took.Round(time.Millisecond), DefaultAckWait)
}
