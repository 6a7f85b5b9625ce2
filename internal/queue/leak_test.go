package queue

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Close leaves no goroutines behind: not the queue's, not the client's,
// not the embedded server's.
func TestCloseReleasesGoroutines(t *testing.T) {
	// Not parallel: goleak sees every goroutine in the process.
	opts := []goleak.Option{goleak.IgnoreCurrent()}
	cfg := testConfig(t)
	ctx := ctxT(t)
	q, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		defer close(done)
		_ = q.Consume(cctx, func(ctx context.Context, d Delivery) ([]byte, error) {
			return []byte("ok"), nil
		})
	}()
	if _, err := q.Publish(ctx, Job{ID: "one"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "job done", func() bool {
		st, err := q.Status(ctx, "one")
		return err == nil && st.State == StateDone
	})
	cancel()
	<-done
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, opts...)
}
