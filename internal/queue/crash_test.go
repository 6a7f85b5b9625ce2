package queue

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/childtest"
)

// crashJobs is how many jobs the crash child publishes.
const crashJobs = 1000

// TestMain runs the crash child (crashChild) in a child process of role
// "crash".
func TestMain(m *testing.M) {
	childtest.Main(m, map[string]func(args []string) int{"crash": crashChild})
}

func crashConfig(dir string) Config {
	return Config{
		DataDir:       dir,
		Workers:       4,
		AckWait:       2 * time.Second, // bounds the wait for jobs in flight at the kill
		MaxDeliver:    5,
		RetryDelay:    5 * time.Millisecond,
		MaxRetryDelay: 20 * time.Millisecond,
	}
}

func crashJobID(i int) string { return fmt.Sprintf("job-%05d", i) }

// simulatedPartner stands for the partner call a real handler makes. It is
// work, not synchronisation: it only makes consumption take long enough
// for the kill to land mid-run.
const simulatedPartner = 2 * time.Millisecond

// crashChild is the child process of the kill -9 tests, on the data dir
// args[0]. In mode (args[1]) "consume" it publishes the jobs, says so,
// then consumes and reports each handler run on stdout until it is
// killed; in mode "publish" it publishes until killed, announcing each
// acknowledged job.
func crashChild(args []string) int {
	dir, mode := args[0], args[1]
	ctx := context.Background()
	q, err := Open(ctx, crashConfig(dir))
	if err != nil {
		fmt.Println("error", err)
		return 2
	}
	if mode == "publish" {
		for i := 0; ; i++ {
			if _, err := q.Publish(ctx, Job{ID: crashJobID(i), Payload: []byte("p")}); err != nil {
				fmt.Println("error", err)
				return 2
			}
			fmt.Println("published", crashJobID(i))
		}
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < crashJobs; i += 8 {
				if _, err := q.Publish(ctx, Job{ID: crashJobID(i), Integration: "crash", Payload: []byte(crashJobID(i))}); err != nil {
					fmt.Println("error", err)
					os.Exit(2)
				}
			}
		})
	}
	wg.Wait()
	fmt.Println("published")
	var mu sync.Mutex
	_ = q.Consume(ctx, func(ctx context.Context, d Delivery) ([]byte, error) {
		mu.Lock()
		fmt.Println("ran", d.ID, d.Attempt)
		mu.Unlock()
		time.Sleep(simulatedPartner)
		return []byte("result-" + d.ID), nil
	})
	return 3 // unreachable: Consume only returns when ctx is done
}

// failOnError fails the test on a line where the crash child reports an
// error.
func failOnError(t *testing.T, line string) {
	t.Helper()
	if strings.HasPrefix(line, "error") {
		t.Fatalf("child: %s", line)
	}
}

// countingHandler counts log records with a given message.
type countingHandler struct {
	slog.Handler
	msg string
	n   *atomic.Int32
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// TestKill9Durability: a process publishes 1,000 jobs, is SIGKILLed while
// consuming them, and a new process on the same data dir finishes: every
// job ends with exactly one stored result, none lost, none dead.
func TestKill9Durability(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	start := time.Now()
	child := childtest.Start(t, childtest.Options{Role: "crash", Args: []string{dir, "consume"}})

	// Kill the child once it has started 200 handler runs.
	var publishedAt time.Time
	started := map[string]bool{}
	child.Stdout.Await(t, 120*time.Second, "handler runs of 200 jobs", func(line string) bool {
		failOnError(t, line)
		switch f := strings.Fields(line); {
		case len(f) == 1 && f[0] == "published":
			publishedAt = time.Now()
		case len(f) == 3 && f[0] == "ran":
			if publishedAt.IsZero() {
				t.Fatalf("child: %q before publishing", line)
			}
			started[f[1]] = true
		}
		return len(started) >= 200
	})
	child.Kill9(t)
	// Runs reported after the kill signal was sent still count.
	runs := map[string]int{}
	for _, line := range child.Stdout.Lines() {
		failOnError(t, line)
		if f := strings.Fields(line); len(f) == 3 && f[0] == "ran" {
			runs[f[1]]++
		}
	}
	phase1 := len(runs)
	t.Logf("child: published %d jobs in %s, killed after %d handler runs (%s consuming)",
		crashJobs, publishedAt.Sub(start).Round(time.Millisecond), phase1, time.Since(publishedAt).Round(time.Millisecond))
	if phase1 >= crashJobs {
		t.Fatalf("the child finished every job before the kill; the test proves nothing")
	}

	// Restart on the same data dir and finish.
	var skipped atomic.Int32
	cfg := crashConfig(dir)
	cfg.Logger = slog.New(countingHandler{msg: "redelivered job already has a result; acking", n: &skipped})
	restart := time.Now()
	q := openQueue(t, cfg)
	ctx := ctxT(t)
	// finished jobs the kill left unrecorded in the consumer's state are
	// not mistaken for lost ones
	if l := q.Lost(); l.Count != 0 || l.Unverified != 0 {
		t.Errorf("after a kill -9: %+v reported lost, want none", l)
	}
	var mu sync.Mutex
	redelivered := 0
	consume(t, q, func(ctx context.Context, d Delivery) ([]byte, error) {
		mu.Lock()
		runs[d.ID]++
		if d.Attempt > 1 {
			redelivered++
		}
		mu.Unlock()
		return []byte("result-" + d.ID), nil
	})
	waitFor(t, 30*time.Second, "every job to have a result", func() bool {
		return stats(t, q).Depth == 0
	})
	t.Logf("restart: finished in %s", time.Since(restart).Round(time.Millisecond))

	for i := range crashJobs {
		id := crashJobID(i)
		r, err := q.GetResult(ctx, id)
		if err != nil {
			t.Fatalf("job %s lost: %v", id, err)
		}
		if string(r) != "result-"+id {
			t.Fatalf("job %s result %q", id, r)
		}
	}
	// a job's record is written once, or, for a job handed back at the
	// restart, once for the attempt and once with the result
	if s := stats(t, q); s.Dead != 0 {
		t.Errorf("dead letters: %d", s.Dead)
	}
	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for i := range crashJobs {
		if n := runs[crashJobID(i)]; n == 0 {
			t.Errorf("job %s never ran", crashJobID(i))
		} else {
			dups += n - 1
		}
	}
	if w := recordWrites(t, q); w < crashJobs || w > crashJobs+cfg.Workers {
		t.Errorf("records written %d times for %d jobs, %d workers", w, crashJobs, cfg.Workers)
	}
	t.Logf("after the kill: %d redeliveries reached a handler, %d redeliveries found the result stored and were only acked; "+
		"%d handler runs repeated (partner-side duplicates)", redelivered, skipped.Load(), dups)
	// Only jobs running at the kill can run twice: at most one per worker.
	if dups > cfg.Workers {
		t.Errorf("%d repeated handler runs, want <= %d (workers)", dups, cfg.Workers)
	}
}

// TestKill9DuringPublish: a process is SIGKILLed while publishing; every
// job whose Publish had returned is in the queue after a restart.
func TestKill9DuringPublish(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	child := childtest.Start(t, childtest.Options{Role: "crash", Args: []string{dir, "publish"}})
	n := 0
	child.Stdout.Await(t, 120*time.Second, "the 300th acknowledged publish", func(line string) bool {
		failOnError(t, line)
		if f := strings.Fields(line); len(f) == 2 && f[0] == "published" {
			n++
		}
		return n == 300
	})
	child.Kill9(t)
	// Publishes acknowledged after the kill signal was sent count too.
	var acked []string
	for _, line := range child.Stdout.Lines() {
		failOnError(t, line)
		if f := strings.Fields(line); len(f) == 2 && f[0] == "published" {
			acked = append(acked, f[1])
		}
	}

	q := openQueue(t, crashConfig(dir))
	ctx := ctxT(t)
	for _, id := range acked {
		if st, err := q.Status(ctx, id); err != nil || st.State != StateQueued {
			t.Fatalf("acknowledged job %s after the kill: %+v, %v", id, st, err)
		}
	}
	depth := stats(t, q).Depth
	t.Logf("%d publishes acknowledged before the kill, %d jobs in the stream after restart", len(acked), depth)
	if depth < uint64(len(acked)) || depth > uint64(len(acked))+1 {
		t.Fatalf("depth %d, want %d or %d (one publish may have landed unacknowledged)", depth, len(acked), len(acked)+1)
	}
}
