package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testConfig is fast: short retry delays and drain, small AckWait.
func testConfig(t *testing.T) Config {
	return Config{
		DataDir:       t.TempDir(),
		AckWait:       2 * time.Second,
		RetryDelay:    5 * time.Millisecond,
		MaxRetryDelay: 20 * time.Millisecond,
		DrainTimeout:  5 * time.Second,
		MaxDeliver:    3,
		Workers:       4,
	}
}

func openQueue(t *testing.T, cfg Config) *Queue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := q.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return q
}

// consume runs q.Consume until the test ends (or the returned stop is
// called), and fails the test if Consume returns an error.
func consume(t *testing.T, q *Queue, h Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := q.Consume(ctx, h); err != nil {
			t.Errorf("Consume: %v", err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Errorf("Consume did not return after cancel")
			}
		})
	}
	t.Cleanup(stop) // runs before the Close registered earlier
	return stop
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func stats(t *testing.T, q *Queue) Stats {
	t.Helper()
	s, err := q.Stats(ctxT(t))
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

func status(t *testing.T, q *Queue, id string) Status {
	t.Helper()
	s, err := q.Status(ctxT(t), id)
	if err != nil {
		t.Fatalf("Status(%s): %v", id, err)
	}
	return s
}

func TestPublishConsumeAck(t *testing.T) {
	t.Parallel()
	q := openQueue(t, testConfig(t))
	ctx := ctxT(t)
	const n = 50
	ids := make([]string, n)
	for i := range n {
		p, err := q.Publish(ctx, Job{Integration: "acme", Payload: fmt.Appendf(nil, `{"n":%d}`, i)})
		if err != nil {
			t.Fatal(err)
		}
		if p.Duplicate || p.ID == "" || p.Sequence == 0 {
			t.Fatalf("Publish = %+v", p)
		}
		ids[i] = p.ID
		if st := status(t, q, p.ID); st.State != StateQueued {
			t.Fatalf("status before consume = %+v", st)
		}
	}
	// The consumer's Pending count catches up asynchronously; Depth is exact.
	if s := stats(t, q); s.Depth != n || s.Pending == 0 || s.InFlight != 0 {
		t.Fatalf("stats before consume = %+v", s)
	}
	var runs atomic.Int32
	consume(t, q, func(ctx context.Context, d Delivery) ([]byte, error) {
		runs.Add(1)
		if d.Integration != "acme" || d.Attempt != 1 || d.Enqueued.IsZero() {
			return nil, fmt.Errorf("bad delivery %+v", d)
		}
		return append([]byte("result:"), d.Payload...), nil
	})
	waitFor(t, 20*time.Second, "queue to empty", func() bool { return stats(t, q).Depth == 0 })
	for i, id := range ids {
		r, err := q.GetResult(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf(`result:{"n":%d}`, i); string(r) != want {
			t.Fatalf("result %s = %q, want %q", id, r, want)
		}
		if st := status(t, q, id); st.State != StateDone || st.Attempts != 1 {
			t.Fatalf("status = %+v", st)
		}
	}
	if got := runs.Load(); got != n {
		t.Fatalf("handler ran %d times, want %d", got, n)
	}
	if _, err := q.GetResult(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetResult(nope) err = %v", err)
	}
	if _, err := q.Status(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Status(nope) err = %v", err)
	}
	if _, err := q.Publish(ctx, Job{ID: "a.b"}); !errors.Is(err, ErrInvalidID) {
		t.Fatalf("Publish(a.b) err = %v", err)
	}
	if _, err := q.Publish(ctx, Job{DedupeKey: "x\r\nNats-Msg-Id: y"}); err == nil {
		t.Fatal("Publish with CR/LF in the dedupe key succeeded")
	}
}

func TestDedupe(t *testing.T) {
	t.Parallel()
	q := openQueue(t, testConfig(t))
	ctx := ctxT(t)
	first, err := q.Publish(ctx, Job{Payload: []byte("1"), DedupeKey: "hook-123"})
	if err != nil {
		t.Fatal(err)
	}
	second, err := q.Publish(ctx, Job{Payload: []byte("2"), DedupeKey: "hook-123"})
	if err != nil {
		t.Fatal(err)
	}
	if first.Duplicate || !second.Duplicate || second.ID != first.ID || second.Sequence != first.Sequence {
		t.Fatalf("first %+v second %+v", first, second)
	}
	// A caller-chosen id is its own dedupe key.
	a, _ := q.Publish(ctx, Job{ID: "lead-1"})
	b, err := q.Publish(ctx, Job{ID: "lead-1"})
	if err != nil || a.Duplicate || !b.Duplicate || b.ID != "lead-1" {
		t.Fatalf("a %+v b %+v err %v", a, b, err)
	}
	if s := stats(t, q); s.Depth != 2 {
		t.Fatalf("depth = %d, want 2", s.Depth)
	}
}

func TestRetryThenDeadThenRetryFromDLQ(t *testing.T) {
	t.Parallel()
	q := openQueue(t, testConfig(t)) // MaxDeliver 3
	ctx := ctxT(t)

	var mu sync.Mutex
	attempts := map[string][]int{}
	lastErrs := map[string][]string{}
	var heal atomic.Bool
	consume(t, q, func(ctx context.Context, d Delivery) ([]byte, error) {
		mu.Lock()
		attempts[d.ID] = append(attempts[d.ID], d.Attempt)
		lastErrs[d.ID] = append(lastErrs[d.ID], d.LastError)
		mu.Unlock()
		switch {
		case d.ID == "flaky" && d.Attempt == 1:
			panic("flaky first attempt")
		case d.ID == "flaky":
			return []byte("ok"), nil
		case heal.Load():
			return []byte("healed"), nil
		default:
			return nil, fmt.Errorf("partner down (attempt %d)", d.Attempt)
		}
	})
	if _, err := q.Publish(ctx, Job{ID: "flaky", Integration: "i"}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Publish(ctx, Job{ID: "doomed", Integration: "i", Payload: []byte("lead"), DedupeKey: "dk"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "flaky done and doomed dead", func() bool {
		return status(t, q, "flaky").State == StateDone && status(t, q, "doomed").State == StateDead
	})
	mu.Lock()
	if got := fmt.Sprint(attempts["flaky"]); got != "[1 2]" {
		t.Errorf("flaky attempts %s", got)
	}
	if got := lastErrs["flaky"][1]; !strings.Contains(got, "panicked: flaky first attempt") {
		t.Errorf("flaky second attempt saw LastError %q", got)
	}
	if got := fmt.Sprint(attempts["doomed"]); got != "[1 2 3]" {
		t.Errorf("doomed attempts %s", got)
	}
	mu.Unlock()

	st := status(t, q, "doomed")
	if st.Attempts != 3 || st.LastError != "partner down (attempt 3)" {
		t.Errorf("doomed status %+v", st)
	}
	dead, err := q.Dead(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 {
		t.Fatalf("dead = %+v", dead)
	}
	dj := dead[0]
	if dj.ID != "doomed" || dj.Integration != "i" || string(dj.Payload) != "lead" || dj.DedupeKey != "dk" ||
		dj.Deliveries != 3 || dj.Error != "partner down (attempt 3)" || dj.Enqueued.IsZero() || dj.Died.Before(dj.Enqueued) {
		t.Fatalf("dead job %+v", dj)
	}
	// The job is acked just after its dead letter is stored.
	waitFor(t, 5*time.Second, "dead job acked", func() bool {
		s := stats(t, q)
		return s.Dead == 1 && s.Depth == 0
	})

	heal.Store(true)
	p, err := q.Retry(ctx, "doomed")
	if err != nil || p.ID != "doomed" || p.Duplicate {
		t.Fatalf("Retry = %+v, %v", p, err)
	}
	waitFor(t, 20*time.Second, "retried job done", func() bool { return status(t, q, "doomed").State == StateDone })
	if r, err := q.GetResult(ctx, "doomed"); err != nil || string(r) != "healed" {
		t.Fatalf("result %q %v", r, err)
	}
	mu.Lock()
	if got := fmt.Sprint(attempts["doomed"]); got != "[1 2 3 1]" {
		t.Errorf("doomed attempts after retry %s", got)
	}
	mu.Unlock()
	if dead, err := q.Dead(ctx, 0); err != nil || len(dead) != 0 {
		t.Fatalf("dead after retry = %+v, %v", dead, err)
	}
	if _, err := q.Retry(ctx, "doomed"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Retry err = %v", err)
	}
}

// A job running longer than AckWait is kept alive and not redelivered.
func TestLongJobNotRedelivered(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.AckWait = time.Second
	q := openQueue(t, cfg)
	ctx := ctxT(t)
	var runs atomic.Int32
	running := make(chan struct{}, 1)
	consume(t, q, func(ctx context.Context, d Delivery) ([]byte, error) {
		runs.Add(1)
		running <- struct{}{}
		// Simulated slow partner: 2.5×AckWait.
		select {
		case <-time.After(5 * cfg.AckWait / 2):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return nil, nil
	})
	if _, err := q.Publish(ctx, Job{ID: "slow"}); err != nil {
		t.Fatal(err)
	}
	<-running
	waitFor(t, 5*time.Second, "status running", func() bool {
		st := status(t, q, "slow")
		return st.State == StateRunning && st.Attempts == 1
	})
	waitFor(t, 20*time.Second, "slow job done", func() bool { return status(t, q, "slow").State == StateDone })
	if n := runs.Load(); n != 1 {
		t.Fatalf("handler ran %d times", n)
	}
	if r, err := q.GetResult(ctx, "slow"); err != nil || len(r) != 0 {
		t.Fatalf("empty result = %q, %v", r, err)
	}
}

// Stopping Consume hands running jobs back; a new consumer finishes them.
func TestShutdownHandsBack(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.DrainTimeout = 50 * time.Millisecond
	q := openQueue(t, cfg)
	ctx := ctxT(t)
	if _, err := q.Publish(ctx, Job{ID: "stuck"}); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	stop := consume(t, q, func(ctx context.Context, d Delivery) ([]byte, error) {
		close(started)
		<-ctx.Done() // a handler that only stops when told to
		return nil, ctx.Err()
	})
	<-started
	stop()
	waitFor(t, 5*time.Second, "status queued with the shutdown error", func() bool {
		st := status(t, q, "stuck")
		return st.State == StateQueued && strings.Contains(st.LastError, "context canceled")
	})
	consume(t, q, func(ctx context.Context, d Delivery) ([]byte, error) {
		if d.Attempt != 2 {
			return nil, fmt.Errorf("attempt %d", d.Attempt)
		}
		return []byte("second"), nil
	})
	waitFor(t, 20*time.Second, "job done by the second consumer", func() bool { return status(t, q, "stuck").State == StateDone })
}

// Results expire after ResultTTL, in the embedded queue's record files and
// in a KV bucket (a cluster's), whose TTL a reopen updates.
func TestResultTTL(t *testing.T) {
	t.Parallel()
	for _, kv := range []bool{false, true} {
		t.Run(fmt.Sprintf("kv=%v", kv), func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t)
			cfg.ResultTTL = time.Hour
			cfg.recordsKV = kv
			q := openQueue(t, cfg)
			ctx := ctxT(t)
			if kv {
				st, err := q.records.(*kvRecords).kv.Status(ctx)
				if err != nil || st.TTL() != time.Hour {
					t.Fatalf("results TTL = %v, %v", st.TTL(), err)
				}
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			// Reopening the same data dir with another TTL applies it; a
			// short TTL expires results.
			cfg.ResultTTL = time.Second
			cfg.DedupeWindow = time.Second
			q = openQueue(t, cfg)
			if kv {
				if st, err := q.records.(*kvRecords).kv.Status(ctx); err != nil || st.TTL() != time.Second {
					t.Fatalf("results TTL after reopen = %v, %v", st.TTL(), err)
				}
			}
			if err := q.PutResult(ctx, "short", []byte("x")); err != nil {
				t.Fatal(err)
			}
			if r, err := q.GetResult(ctx, "short"); err != nil || string(r) != "x" {
				t.Fatalf("GetResult = %q, %v", r, err)
			}
			waitFor(t, 15*time.Second, "result to expire", func() bool {
				_, err := q.GetResult(ctx, "short")
				return errors.Is(err, ErrNotFound)
			})
		})
	}
}

// The jobs stream's duplicate window is DedupeWindow (30s by default: the
// server holds every message id of the window in memory), and never
// shorter than PublishTimeout, so that a publish retried within one call
// is still recognised.
func TestDedupeWindow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ window, publish, want time.Duration }{
		{0, 0, 30 * time.Second},
		{0, 45 * time.Second, 45 * time.Second},
		{time.Second, 0, DefaultPublishTimeout},
		{time.Minute, 0, time.Minute},
	} {
		cfg := testConfig(t)
		cfg.DedupeWindow, cfg.PublishTimeout = tc.window, tc.publish
		q := openQueue(t, cfg)
		if got := q.jobs.CachedInfo().Config.Duplicates; got != tc.want {
			t.Errorf("DedupeWindow %v, PublishTimeout %v: the stream's duplicate window is %v, want %v", tc.window, tc.publish, got, tc.want)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestKV(t *testing.T) {
	t.Parallel()
	q := openQueue(t, testConfig(t))
	ctx := ctxT(t)
	kv, err := q.KV(ctx, "tokens", 0)
	if err != nil {
		t.Fatal(err)
	}
	if kv.Bucket() != "plumb_tokens" {
		t.Fatalf("bucket %q", kv.Bucket())
	}
	rev, err := kv.Create(ctx, "acme", []byte("t1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "acme", []byte("t2")); err == nil {
		t.Fatal("second Create succeeded")
	}
	if _, err := kv.Update(ctx, "acme", []byte("t2"), rev); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Update(ctx, "acme", []byte("t3"), rev); err == nil {
		t.Fatal("stale Update succeeded")
	}
	if _, err := q.KV(ctx, "Bad.Name", 0); !errors.Is(err, ErrInvalidID) {
		t.Fatalf("bad bucket err = %v", err)
	}
}

func TestDataDirInUse(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	openQueue(t, cfg)
	if q, err := Open(ctxT(t), cfg); err == nil {
		q.Close()
		t.Fatal("second Open on one data dir succeeded")
	} else if !strings.Contains(err.Error(), "in use") {
		t.Fatalf("err = %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	for _, cfg := range []Config{
		{},
		{DataDir: t.TempDir(), Replicas: 3},
		{DataDir: t.TempDir(), Name: "Bad Name"},
	} {
		if q, err := Open(ctx, cfg); err == nil {
			q.Close()
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
}
