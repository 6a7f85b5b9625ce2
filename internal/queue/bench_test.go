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
