package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/plumbhq/plumb/internal/queue/natstest"
)

// fill stores filler messages in a stream of its own until JetStream
// refuses one for lack of storage, and returns a func that deletes the
// stream (the space comes back).
func fill(t *testing.T, q *Queue) (free func()) {
	t.Helper()
	ctx := ctxT(t)
	js := q.JetStream()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FILLER", Subjects: []string{"filler"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("f"), 32<<10)
	for i := 0; ; i++ {
		_, err := js.Publish(ctx, "filler", chunk)
		if err == nil {
			continue
		}
		if !storageErr(err) {
			t.Fatalf("filling the store: %v", err)
		}
		break
	}
	return func() {
		t.Helper()
		if err := js.DeleteStream(ctxT(t), "FILLER"); err != nil {
			t.Fatal(err)
		}
	}
}

// A full embedded store refuses new jobs at once (nothing is sent to the
// server), whole batches included, and takes them again once space
// returns.
func TestStorageFullRefusesJobs(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.MaxFileStore = 1 << 20
	cfg.MinFreeDisk = -1
	q := openQueue(t, cfg)
	ctx := ctxT(t)
	if err := q.Writable(); err != nil {
		t.Fatalf("an empty queue is not writable: %v", err)
	}
	free := fill(t, q)
	if err := q.Writable(); !errors.Is(err, ErrStorage) {
		t.Fatalf("Writable on a full store = %v, want ErrStorage", err)
	}
	sent := q.nc.Stats().OutMsgs
	if _, err := q.Publish(ctx, Job{ID: "one"}); !errors.Is(err, ErrStorage) {
		t.Fatalf("Publish on a full store = %v, want ErrStorage", err)
	}
	jobs := make([]Job, 600)
	for i := range jobs {
		jobs[i] = Job{ID: fmt.Sprintf("b%03d", i), Payload: []byte(`{}`)}
	}
	_, errs := q.PublishAll(ctx, jobs)
	for i, err := range errs {
		if !errors.Is(err, ErrStorage) {
			t.Fatalf("PublishAll job %d on a full store = %v, want ErrStorage", i, err)
		}
	}
	if n := q.nc.Stats().OutMsgs - sent; n != 0 {
		t.Errorf("%d messages sent to the server for refused jobs, want 0", n)
	}
	if f := q.Faults(); f.Refused != 601 || !errors.Is(f.Storage, ErrStorage) {
		t.Errorf("faults %+v, want 601 refused and the storage error", f)
	}
	free()
	if err := q.Writable(); err != nil {
		t.Fatalf("Writable once space returned = %v", err)
	}
	if _, errs := q.PublishAll(ctx, jobs); errs[0] != nil || errs[599] != nil {
		t.Fatalf("PublishAll once space returned: %v, %v", errs[0], errs[599])
	}
}

// A write the server refuses for lack of storage (here an external server
// with a small max_file_store) is not retried: one message, ErrStorage, the
// queue in trouble until a probe write succeeds again.
func TestStorageRefusalIsNotRetried(t *testing.T) {
	t.Parallel()
	node := natstest.StartServerWith(t, func(o *server.Options) { o.JetStreamMaxStore = 1 << 20 })
	cfg := testConfig(t)
	cfg.DataDir, cfg.URLs = "", []string{node.URL}
	cfg.PublishTimeout = time.Minute // a retried write would take this long
	q := openQueue(t, cfg)
	ctx := ctxT(t)
	free := fill(t, q)
	// a body of leads: the first batch is refused, the rest is not tried
	jobs := make([]Job, 600)
	for i := range jobs {
		jobs[i] = Job{ID: fmt.Sprintf("b%03d", i), Payload: []byte(`{}`)}
	}
	sent := q.nc.Stats().OutMsgs
	_, errs := q.PublishAll(ctx, jobs)
	for i, err := range errs {
		if !errors.Is(err, ErrStorage) {
			t.Fatalf("PublishAll job %d on a full server = %v, want ErrStorage", i, err)
		}
	}
	// (plus, perhaps, the probe's write, kicked by the refusal)
	if n := q.nc.Stats().OutMsgs - sent; n < MaxBatch || n > MaxBatch+2 {
		t.Errorf("%d messages sent for 600 refused jobs, want %d (one batch)", n, MaxBatch)
	}
	// jobs going one by one (an invalid one keeps each batch's jobs out of
	// a batch): the first refusal ends the call, the rest are not tried
	q.health.markHealthy() // as if a probe had passed
	jobs[0].ID, jobs[MaxBatch].ID = "not valid", "not valid"
	sent = q.nc.Stats().OutMsgs
	_, errs = q.PublishAll(ctx, jobs)
	for i, err := range errs {
		if i != 0 && i != MaxBatch && !errors.Is(err, ErrStorage) {
			t.Fatalf("PublishAll job %d on a full server = %v, want ErrStorage", i, err)
		}
	}
	// each publishes 16 at a time: those under way when the first refusal
	// comes, and a few picked up before its worker stops the call
	if n := q.nc.Stats().OutMsgs - sent; n > 32 {
		t.Errorf("%d messages sent for 598 jobs refused one by one, want at most 32", n)
	}
	q.health.markHealthy() // the single write below finds it full
	sent = q.nc.Stats().OutMsgs
	_, err := q.Publish(ctx, Job{ID: "one"})
	if !errors.Is(err, ErrStorage) {
		t.Fatalf("Publish on a full server = %v, want ErrStorage", err)
	}
	if n := q.nc.Stats().OutMsgs - sent; n < 1 || n > 3 { // the job, perhaps probes
		t.Errorf("%d messages sent for one refused job, want 1 (no retries)", n)
	}
	if err := q.Writable(); !errors.Is(err, ErrStorage) {
		t.Fatalf("Writable after a refused write = %v, want ErrStorage", err)
	}
	if _, err := q.Publish(ctx, Job{ID: "two"}); !errors.Is(err, ErrStorage) {
		t.Fatalf("Publish while in trouble = %v, want ErrStorage", err)
	}
	free()
	waitFor(t, 20*time.Second, "the probe to find the storage writable", func() bool { return q.Writable() == nil })
	if _, err := q.Publish(ctx, Job{ID: "one"}); err != nil {
		t.Fatalf("Publish after recovery: %v", err)
	}
	if f := q.Faults(); f.Troubles != 3 || f.Refused != 1200 {
		t.Errorf("faults %+v, want 3 troubles, 1200 refused", f)
	}
}

// A job whose result (or dead letter) the storage refuses keeps it and
// writes it again once space returns: the handler runs once per job, the
// failed writes and held results are counted.
//
// Here the records are in a KV bucket, as on a cluster, and the storage is
// JetStream's limit; TestRecordsHeldWhileDiskFull fills a real disk under
// the embedded queue's record files.
func TestResultHeldWhileStorageFull(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.MaxFileStore = 1 << 20
	cfg.MinFreeDisk = -1
	cfg.MaxDeliver = 1 // "doomed" is dead-lettered at its first failure
	cfg.recordsKV = true
	q := openQueue(t, cfg)
	testResultHeld(t, q, true, func() func() { return fill(t, q) })
}

// On a real full disk (a small tmpfs) the embedded queue's record files
// refuse a batch: its jobs hold their results, as in
// TestResultHeldWhileStorageFull, and store them once space returns. (No
// job is dead-lettered here: the embedded server's own recovery from a
// full disk is TestDiskFullRecovers'.)
func TestRecordsHeldWhileDiskFull(t *testing.T) {
	t.Parallel()
	fs := mountSmallFS(t, 8<<20)
	cfg := testConfig(t)
	cfg.DataDir = filepath.Join(fs, "data")
	cfg.MaxFileStore = 1 << 30
	cfg.MinFreeDisk = -1
	cfg.MaxDeliver = 1
	q := openQueue(t, cfg)
	testResultHeld(t, q, false, func() func() {
		filler := filepath.Join(fs, "filler")
		f, err := os.Create(filler)
		if err != nil {
			t.Fatal(err)
		}
		for _, chunk := range []int{1 << 20, 4096, 1} { // to the last byte
			for err = nil; err == nil; {
				_, err = f.Write(make([]byte, chunk))
			}
		}
		_ = f.Close()
		return func() {
			if err := os.Remove(filler); err != nil {
				t.Error(err)
			}
		}
	})
}

// testResultHeld runs three jobs (and, with doomed, a fourth that fails),
// fills the storage (full returns what frees it) while they run, and checks
// that they hold their results (and the dead letter) until it is freed,
// each running once.
func testResultHeld(t *testing.T, q *Queue, doomed bool, full func() (free func())) {
	ctx := ctxT(t)
	ids := []string{"a", "b", "c"}
	if doomed {
		ids = append(ids, "doomed")
	}
	var mu sync.Mutex
	calls := map[string]int{}
	entered := make(chan struct{}, len(ids))
	release := make(chan struct{})
	consume(t, q, func(ctx context.Context, d Delivery) ([]byte, error) {
		mu.Lock()
		calls[d.ID]++
		mu.Unlock()
		entered <- struct{}{}
		<-release
		if d.ID == "doomed" {
			return nil, errors.New("partner down")
		}
		return bytes.Repeat([]byte("r"), 4096), nil
	})
	for _, id := range ids {
		if _, err := q.Publish(ctx, Job{ID: id, Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	for range ids {
		<-entered
	}
	free := full()
	close(release)
	waitFor(t, 20*time.Second, "every finished job to hold its result", func() bool { return q.Faults().Held == int64(len(ids)) })
	if f := q.Faults(); f.ResultRetries < 3 || (doomed && f.DeadRetries < 1) || !errors.Is(f.Storage, ErrStorage) {
		t.Errorf("faults while full: %+v", f)
	}
	free()
	ctx = ctxT(t)
	waitFor(t, 20*time.Second, "the results and the dead letter stored", func() bool {
		for _, id := range ids[:3] {
			if st, err := q.Status(ctx, id); err != nil || st.State != StateDone {
				return false
			}
		}
		if doomed {
			if st, err := q.Status(ctx, "doomed"); err != nil || st.State != StateDead {
				return false
			}
		}
		return q.Faults().Held == 0 && stats(t, q).Depth == 0
	})
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		if calls[id] != 1 {
			t.Errorf("job %s ran %d times, want once", id, calls[id])
		}
	}
}

// A job stream truncated while the queue was down (its index kept, or
// lost too): Open counts the jobs lost and names them; Status says lost;
// Known does not know them, so sending them again stores them; a second
// Open does not report them again. Jobs that had finished — results and a
// dead letter, acknowledged above the ack floor that a job still queued
// holds down — are not reported.
func TestLostJobsReported(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		dropIndex bool // the stream's index.db goes too: only the ledger knows the last jobs
	}{{"block truncated", false}, {"block truncated and index lost", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t)
			cfg.DrainTimeout = 50 * time.Millisecond // "stuck" is handed back at once
			truncateAfterWork(t, cfg, tc.dropIndex)
			q := openQueue(t, cfg)
			ctx := ctxT(t)
			lost := q.Lost()
			if lost.Count == 0 || len(lost.IDs) != lost.Count || len(lost.Seqs) != lost.Count {
				t.Fatalf("lost %+v", lost)
			}
			queued := 0
			for i := range 150 {
				id := fmt.Sprintf("wait%03d", i)
				switch st := status(t, q, id); st.State {
				case StateQueued:
					queued++
				case StateLost:
					if !strings.Contains(st.LastError, "lost") {
						t.Errorf("status of lost job %s: %+v", id, st)
					}
				default:
					t.Errorf("job %s: %+v", id, st)
				}
			}
			if queued+lost.Count != 150 {
				t.Errorf("%d waiting jobs queued, %d lost, want 150 in all", queued, lost.Count)
			}
			for _, id := range lost.IDs {
				if !strings.HasPrefix(id, "wait") {
					t.Errorf("finished job %s reported lost", id)
				}
			}
			if f := q.Faults(); f.Lost.Count != lost.Count {
				t.Errorf("Faults().Lost %+v", f.Lost)
			}
			id := lost.IDs[0]
			if q.Known(ctx, []string{id})[0] {
				t.Errorf("a lost job is known: sending it again would be a duplicate")
			}
			if _, err := q.Publish(ctx, Job{ID: id, DedupeKey: "again-" + id}); err != nil {
				t.Fatal(err)
			}
			if st := status(t, q, id); st.State != StateQueued {
				t.Errorf("lost job sent again: %+v", st)
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			q = openQueue(t, cfg)
			if l := q.Lost(); l.Count != 0 {
				t.Errorf("reported again at the next start: %+v", l)
			}
		})
	}
}

// truncateAfterWork leaves, in cfg's data dir, a jobs stream that held a
// job still queued ("stuck"), 50 finished jobs after it (one of them
// dead-lettered) and 150 waiting ones ("wait000"…), with its block file
// then cut to two thirds (and its index removed, with dropIndex).
func truncateAfterWork(t *testing.T, cfg Config, dropIndex bool) {
	t.Helper()
	ctx := ctxT(t)
	q, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	publish := func(ids ...string) {
		jobs := make([]Job, len(ids))
		for i, id := range ids {
			jobs[i] = Job{ID: id, Payload: bytes.Repeat([]byte("x"), 200)}
		}
		if _, errs := q.PublishAll(ctx, jobs); errs[0] != nil {
			t.Fatal(errs[0])
		}
	}
	ids := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%03d", prefix, i)
		}
		return out
	}
	publish(append([]string{"stuck"}, ids("done", 50)...)...)
	stop := consume(t, q, func(ctx context.Context, d Delivery) ([]byte, error) {
		switch d.ID {
		case "stuck": // runs until the shutdown hands it back
			<-ctx.Done()
			return nil, ctx.Err()
		case "done007":
			return nil, errors.New("partner says no")
		}
		return []byte("ok"), nil
	})
	waitFor(t, 20*time.Second, "the finished jobs done", func() bool {
		s := stats(t, q)
		return s.Depth == 1 && s.Dead == 1
	})
	stop()
	publish(ids("wait", 150)...)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	msgs := filepath.Join(cfg.DataDir, "nats", "jetstream", "$G", "streams", "PLUMB_WORK", "msgs")
	blocks, _ := filepath.Glob(filepath.Join(msgs, "*.blk"))
	if len(blocks) != 1 {
		t.Fatalf("jobs stream blocks %v, want one", blocks)
	}
	st, err := os.Stat(blocks[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(blocks[0], st.Size()*2/3); err != nil {
		t.Fatal(err)
	}
	if dropIndex {
		if err := os.Remove(filepath.Join(msgs, "index.db")); err != nil {
			t.Fatal(err)
		}
	}
}

// Jobs an embedded queue had in flight when it stopped without handing
// them back (a kill) are delivered at once by the next Open, not after
// AckWait; one whose result was stored is acked without running again.
func TestInFlightHandedBackAtOpen(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.AckWait = 10 * time.Minute // the test ends long before: a pass proves prompt redelivery
	q, err := Open(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	for i := range 6 {
		if _, err := q.Publish(ctx, Job{ID: fmt.Sprintf("j%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	// deliver four and never answer: as a killed process leaves them
	batch, err := q.cons.Fetch(4, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	var doneSeq uint64
	for msg := range batch.Messages() {
		if n == 0 { // this one finished: its result is stored, the ack never came
			meta, _ := msg.Metadata()
			doneSeq = meta.Sequence.Stream
			storeDone(t, q, "j0", doneSeq, []byte("first"))
		}
		n++
	}
	if n != 4 || doneSeq == 0 {
		t.Fatalf("fetched %d", n)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	q = openQueue(t, cfg)
	var ran sync.Map
	consume(t, q, func(ctx context.Context, d Delivery) ([]byte, error) {
		ran.Store(d.ID, true)
		return []byte("second"), nil
	})
	waitFor(t, 30*time.Second, "every job done", func() bool { return stats(t, q).Depth == 0 })
	if _, ok := ran.Load("j0"); ok {
		t.Errorf("j0 had its result stored and ran again")
	}
	if r, err := q.GetResult(ctx, "j0"); err != nil || string(r) != "first" {
		t.Errorf("j0 result %q %v", r, err)
	}
	if l := q.Lost(); l.Count != 0 || l.Unverified != 0 {
		t.Errorf("lost %+v after a kill, want none", l)
	}
}

// mountSmallFS mounts a tmpfs of size bytes at a new directory and
// unmounts it when the test ends; it skips the test where mounting is not
// permitted (not root).
func mountSmallFS(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := mountTmpfs(dir, size); err != nil {
		t.Skipf("cannot mount a small filesystem here (%v): the injected-limit tests cover the rest", err)
	}
	t.Cleanup(func() {
		if err := unmount(dir); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	return dir
}

// On a real full disk (a small tmpfs, free-space check off so that a write
// does hit ENOSPC) the embedded store fails its writes without answering
// them: Publish answers ErrStorage at once instead of waiting them out,
// and once space returns the queue restarts its server and takes jobs
// again, with every job it had accepted.
func TestDiskFullRecovers(t *testing.T) {
	t.Parallel()
	fs := mountSmallFS(t, 8<<20)
	cfg := testConfig(t)
	cfg.DataDir = filepath.Join(fs, "data")
	cfg.MaxFileStore = 1 << 30 // past the disk: the disk is what fills
	cfg.MinFreeDisk = -1
	cfg.PublishTimeout = 15 * time.Second // an unanswered write would take this long
	filler := filepath.Join(fs, "filler")
	q := openQueue(t, cfg)
	ctx := ctxT(t)
	if err := os.WriteFile(filler, make([]byte, 5<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("p"), 64<<10)
	var accepted []string
	var refused error
	for i := 0; refused == nil && i < 200; i++ {
		id := fmt.Sprintf("j%03d", i)
		if _, err := q.Publish(ctx, Job{ID: id, Payload: payload}); err != nil {
			refused = err
		} else {
			accepted = append(accepted, id)
		}
	}
	if !errors.Is(refused, ErrStorage) {
		t.Fatalf("publishing onto a full disk: %v, want ErrStorage", refused)
	}
	if err := q.Writable(); !errors.Is(err, ErrStorage) {
		t.Fatalf("Writable on a full disk = %v", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the queue to recover", func() bool { return q.Writable() == nil })
	if _, err := q.Publish(ctx, Job{ID: "after", Payload: payload}); err != nil {
		t.Fatalf("Publish after recovery: %v", err)
	}
	for _, id := range append(accepted, "after") {
		if st := status(t, q, id); st.State != StateQueued {
			t.Fatalf("accepted job %s: %+v", id, st)
		}
	}
	if f := q.Faults(); f.Restarts != 1 || f.Troubles != 1 {
		t.Errorf("faults %+v, want 1 trouble and 1 restart", f)
	}
	t.Logf("%d jobs accepted before the disk filled", len(accepted))
}

// With the free-space check (the default), new jobs are refused before the
// disk is full, so no write fails and no restart is needed.
func TestDiskLowRefusesBeforeFull(t *testing.T) {
	t.Parallel()
	fs := mountSmallFS(t, 8<<20)
	cfg := testConfig(t)
	cfg.DataDir = filepath.Join(fs, "data")
	cfg.MinFreeDisk = 4 << 20
	q := openQueue(t, cfg)
	ctx := ctxT(t)
	payload := bytes.Repeat([]byte("p"), 64<<10)
	var refused atomic.Value
	for i := 0; refused.Load() == nil && i < 200; i++ {
		if _, err := q.Publish(ctx, Job{ID: fmt.Sprintf("j%03d", i), Payload: payload}); err != nil {
			refused.Store(err)
		}
	}
	if err, _ := refused.Load().(error); !errors.Is(err, ErrStorage) || !strings.Contains(err.Error(), "free") {
		t.Fatalf("publishing onto a filling disk: %v, want ErrStorage for the free space", err)
	}
	if f := q.Faults(); f.Troubles != 0 || f.Restarts != 0 {
		t.Errorf("faults %+v: the check should have refused before any write failed", f)
	}
}

// A result larger than the server takes can never be stored: the job is
// dead-lettered with the reason after one run, not held or run again.
func TestResultTooLargeIsDeadLettered(t *testing.T) {
	t.Parallel()
	q := openQueue(t, testConfig(t))
	ctx := ctxT(t)
	var calls atomic.Int32
	consume(t, q, func(ctx context.Context, d Delivery) ([]byte, error) {
		calls.Add(1)
		return bytes.Repeat([]byte("r"), 2<<20), nil // over the 1 MiB max_payload
	})
	if _, err := q.Publish(ctx, Job{ID: "big"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the job dead", func() bool {
		st, err := q.Status(ctx, "big")
		return err == nil && st.State == StateDead
	})
	dj, err := q.DeadJob(ctx, "big")
	if err != nil || !strings.Contains(dj.Error, "result could not be stored") {
		t.Fatalf("dead letter %+v %v", dj, err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the job ran %d times, want once", n)
	}
}

// While the storage is in trouble the workers fetch nothing: a job run
// then would end with a result nowhere to go. (The storage here cannot
// recover: the free-space floor is out of reach, so every probe fails;
// three failed probes are seconds in which a fetching worker would have
// started the queued job many times over.)
func TestWorkersPauseWhileStorageInTrouble(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.MinFreeDisk = 1 << 62
	q := openQueue(t, cfg)
	ctx := ctxT(t)
	msg, key, err := q.message(Job{ID: "queued"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.publishJob(ctx, msg, key); err != nil { // past Writable, which refuses
		t.Fatal(err)
	}
	q.enterTrouble(errors.New("injected"), false)
	var calls atomic.Int32
	consume(t, q, func(ctx context.Context, d Delivery) ([]byte, error) {
		calls.Add(1)
		return nil, nil
	})
	waitFor(t, 30*time.Second, "three failed probes", func() bool { return q.faults.probes.Load() >= 3 })
	if n := calls.Load(); n != 0 {
		t.Errorf("a job ran %d times while the storage was in trouble", n)
	}
}
