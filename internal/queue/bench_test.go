package queue

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPublish measures acknowledged publishes, one at a time, with
// every write fsynced (the default) and with a 1s sync interval.
func BenchmarkPublish(b *testing.B) {
	for _, sync := range []time.Duration{0, time.Second} {
		b.Run(fmt.Sprintf("sync=%s", syncName(sync)), func(b *testing.B) {
			q, err := Open(context.Background(), Config{DataDir: b.TempDir(), SyncInterval: sync})
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			ctx := context.Background()
			payload := []byte(`{"email":"a@example.com","first_name":"Ada"}`)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := q.Publish(ctx, Job{Integration: "bench", Payload: payload}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkConsume measures draining b.N published jobs through 8
// workers: delivery, handler, result stored, ack confirmed.
func BenchmarkConsume(b *testing.B) {
	for _, sync := range []time.Duration{0, time.Second} {
		b.Run(fmt.Sprintf("sync=%s", syncName(sync)), func(b *testing.B) {
			q, err := Open(context.Background(), Config{DataDir: b.TempDir(), SyncInterval: sync, Workers: 8})
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			payload := []byte(`{"email":"a@example.com","first_name":"Ada"}`)
			for range b.N {
				if _, err := q.Publish(context.Background(), Job{Integration: "bench", Payload: payload}); err != nil {
					b.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			var done atomic.Int64
			all := make(chan struct{})
			consumed := make(chan struct{})
			b.ResetTimer()
			go func() {
				defer close(consumed)
				_ = q.Consume(ctx, func(ctx context.Context, d Delivery) ([]byte, error) {
					if done.Add(1) == int64(b.N) {
						close(all)
					}
					return d.Payload, nil
				})
			}()
			<-all
			cancel()
			<-consumed // the last results stored and acked
			b.StopTimer()
		})
	}
}

func syncName(d time.Duration) string {
	if d == 0 {
		return "always"
	}
	return d.String()
}

// BenchmarkCommit measures finished jobs per second through the worker
// side — delivery, an instant handler, the record stored, the ack — with
// every write fsynced, for the ways of storing records measured for
// BENCHMARKS.md ("Group commit"): the record files (the embedded default)
// or a KV bucket (a cluster's; here on the embedded server); batches of up
// to 1 (each worker writes its own record, as before group commit), 16 or
// 256 records; the committer waiting up to 2ms for company or never; a
// worker freed when it hands its record over or (the default) once it is
// stored. Run one at a time under strace to count fsyncs:
//
//	go test -c -o /tmp/q.test ./internal/queue
//	strace -f --seccomp-bpf -c -e trace=fsync,fdatasync /tmp/q.test -test.run '^$' -test.bench 'Commit/local/batch=256/' -test.benchtime 5000x
func BenchmarkCommit(b *testing.B) {
	type variant struct {
		name      string
		kv, early bool
		batch     int
		wait      time.Duration
	}
	var vs []variant
	for _, store := range []string{"local", "kv"} {
		for _, batch := range []int{1, 16, 256} {
			for _, wait := range []time.Duration{-1, 2 * time.Millisecond} {
				if batch == 1 && wait > 0 {
					continue
				}
				vs = append(vs, variant{name: fmt.Sprintf("%s/batch=%d/wait=%s", store, batch, wait), kv: store == "kv", batch: batch, wait: wait})
			}
		}
		vs = append(vs, variant{name: store + "/batch=256/wait=2ms/early", kv: store == "kv", batch: 256, wait: 2 * time.Millisecond, early: true})
	}
	for _, v := range vs {
		b.Run(v.name, func(b *testing.B) {
			q, err := Open(context.Background(), Config{DataDir: b.TempDir(), Workers: 32, CommitBatch: v.batch, CommitWait: v.wait,
				recordsKV: v.kv, releaseEarly: v.early})
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			payload := []byte(`{"email":"a@example.com","first_name":"Ada"}`)
			jobs := make([]Job, b.N)
			for i := range jobs {
				jobs[i] = Job{Integration: "bench", Payload: payload}
			}
			if _, errs := q.PublishAll(context.Background(), jobs); errs[0] != nil {
				b.Fatal(errs[0])
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			b.ResetTimer()
			go func() {
				_ = q.Consume(ctx, func(ctx context.Context, d Delivery) ([]byte, error) {
					return d.Payload, nil
				})
			}()
			for {
				st, err := q.Stats(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				if st.Depth == 0 {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}
