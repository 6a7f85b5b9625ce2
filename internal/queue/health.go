package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrStorage means the queue cannot store writes now: its storage is full
// (JetStream's limit, the disk) or failing. Nothing was stored. The queue
// recovers by itself once space returns; test with errors.Is.
var ErrStorage = errors.New("queue: storage full or failing")

// storeReservePercent of JetStream's storage limit is kept for the results
// of jobs already accepted: new jobs are refused beyond the rest.
const storeReservePercent = 10

// defaultMinFreeDisk caps the default Config.MinFreeDisk (5% of the
// filesystem).
const defaultMinFreeDisk = 64 << 20

// probeEvery is how often a queue whose storage is in trouble checks
// whether it has recovered.
const probeEvery = time.Second

// health is the state of the queue's storage as the queue has seen it.
// Trouble begins with a write the storage refused or never answered and
// ends when a probe write succeeds (after a restart of the embedded server
// when its store reported a write error).
type health struct {
	mu      sync.Mutex
	trouble error         // nil while healthy
	since   time.Time     // when the trouble began
	broken  bool          // the embedded store reported a write error: restart it
	ok      chan struct{} // closed while healthy
	// bad is cancelled when trouble begins (writes in progress give up)
	badCtx    context.Context
	cancelBad context.CancelFunc
	kick      chan struct{} // wakes the probe loop
}

func newHealth() *health {
	h := &health{ok: make(chan struct{}), kick: make(chan struct{}, 1)}
	close(h.ok)
	h.badCtx, h.cancelBad = context.WithCancel(context.Background())
	return h
}

// err is the current trouble, wrapping ErrStorage, or nil.
func (h *health) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.trouble
}

// healthy returns a channel that is closed while (or once) the storage is
// healthy.
func (h *health) healthy() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ok
}

// markTrouble records that a write failed for lack of storage; broken
// means the embedded store must be restarted before it writes again. It
// reports whether the trouble is new.
func (h *health) markTrouble(cause error, broken bool) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.broken = h.broken || broken
	if h.trouble != nil {
		return false
	}
	h.trouble = fmt.Errorf("%w: %v", ErrStorage, cause)
	h.since = time.Now()
	h.ok = make(chan struct{})
	h.cancelBad()
	select {
	case h.kick <- struct{}{}:
	default:
	}
	return true
}

// markHealthy ends the trouble; it returns how long it lasted (0 if there
// was none).
func (h *health) markHealthy() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.trouble == nil {
		return 0
	}
	h.trouble, h.broken = nil, false
	close(h.ok)
	h.badCtx, h.cancelBad = context.WithCancel(context.Background())
	return time.Since(h.since)
}

func (h *health) isBroken() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.broken
}

// storageErr reports whether err says the storage has no room: JetStream's
// insufficient resources (its max_file_store or an account limit) or a
// full disk.
func storageErr(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrStorage) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case 10023, 10047: // insufficient resources; insufficient storage resources
			return true
		}
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "insufficient resources") || strings.Contains(msg, "insufficient storage") ||
		strings.Contains(msg, "no space left") || strings.Contains(msg, "resources exceeded")
}

// permanentWriteErr reports whether writing the same message again cannot
// succeed: it is larger than the server or the stream accepts.
func permanentWriteErr(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == 10054 // message size exceeds maximum allowed
}

// writeFailed classifies a failed write: a storage error (or, on the
// embedded server, a write that went unanswered while its store is broken)
// puts the queue in trouble and is returned wrapping ErrStorage.
func (q *Queue) writeFailed(err error) error {
	if err == nil {
		return nil
	}
	if storageErr(err) || (q.emb != nil && q.health.isBroken()) {
		q.enterTrouble(err, false)
		if errors.Is(err, ErrStorage) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	return err
}

// enterTrouble marks the storage in trouble and logs it once.
func (q *Queue) enterTrouble(cause error, broken bool) {
	if q.health.markTrouble(cause, broken) {
		q.faults.troubles.Add(1)
		q.log.Error("queue storage full or failing: new jobs are refused and workers pause until a write succeeds again",
			"err", cause, "restart_needed", broken)
	}
}

// Writable reports whether the queue takes new jobs now: nil, or an error
// wrapping ErrStorage that says why not. Besides a write the storage
// refused, an embedded queue refuses new jobs before its storage is full:
// beyond 90% of JetStream's storage limit, or with less than MinFreeDisk
// free on the data directory's filesystem (the rest is kept for the results
// of the jobs already accepted). It costs no round trip.
func (q *Queue) Writable() error {
	if err := q.health.err(); err != nil {
		return err
	}
	if q.emb == nil {
		return nil
	}
	if used, limit, ok := q.emb.storeUsage(); ok && limit > 0 && used >= limit-limit/100*storeReservePercent {
		return fmt.Errorf("%w: the queue stores %d bytes of its %d-byte limit (the last %d%% is kept for results)",
			ErrStorage, used, limit, storeReservePercent)
	}
	if q.cfg.MinFreeDisk >= 0 {
		if free, size, err := diskSpace(q.storeDir); err == nil && free < q.minFree(size) {
			return fmt.Errorf("%w: %d bytes free on the data directory's filesystem, want at least %d",
				ErrStorage, free, q.minFree(size))
		}
	}
	return nil
}

// minFreeIf is minFree when the free-space check is on, else 0.
func (q *Queue) minFreeIf(size uint64) uint64 {
	if q.cfg.MinFreeDisk < 0 {
		return 0
	}
	return q.minFree(size)
}

// minFree is the free space an embedded queue keeps on a filesystem of
// size bytes.
func (q *Queue) minFree(size uint64) uint64 {
	if q.cfg.MinFreeDisk > 0 {
		return uint64(q.cfg.MinFreeDisk)
	}
	return min(size/20, defaultMinFreeDisk)
}

// probeLoop runs while the queue is open: whenever the storage is in
// trouble it checks, every probeEvery, whether a small write succeeds
// again (restarting a broken embedded server first, once the disk has room)
// and then ends the trouble.
func (q *Queue) probeLoop(stop <-chan struct{}) {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-q.health.kick:
		case <-t.C:
		}
		if q.health.err() == nil {
			continue
		}
		if err := q.probe(); err != nil {
			q.faults.probes.Add(1)
			q.log.Debug("storage still in trouble", "err", err)
			continue
		}
		if d := q.health.markHealthy(); d > 0 {
			q.log.Warn("queue storage recovered: taking new jobs again", "after", d.Round(time.Millisecond)) // a duration: plumb serve logs it as after_ms
		}
	}
}

// restartFloor is the least free space a broken embedded store is
// reopened with, whatever MinFreeDisk says; restartEvery the least time
// between two reopenings.
const (
	restartFloor = 1 << 20
	restartEvery = 5 * time.Second
)

// probe checks whether the storage takes writes again.
func (q *Queue) probe() error {
	if q.emb != nil {
		broken := q.health.isBroken()
		if free, size, err := diskSpace(q.storeDir); err == nil {
			want := q.minFreeIf(size)
			if broken {
				want = max(want, restartFloor)
			}
			if free < want {
				return fmt.Errorf("%d bytes free, want %d", free, want)
			}
		}
		if broken {
			if since := time.Since(q.lastRestart); since < restartEvery {
				return fmt.Errorf("the embedded server restarted %s ago", since.Round(time.Millisecond))
			}
			q.log.Warn("restarting the embedded nats-server: a store reported a write error")
			q.lastRestart = time.Now()
			if err := q.emb.restart(); err != nil {
				return err
			}
			q.faults.restarts.Add(1)
			q.health.mu.Lock()
			q.health.broken = false
			q.health.mu.Unlock()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := q.probeKV.Put(ctx, "probe", []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	return err
}

// watchBroken is the embedded server's write-error hook.
func (q *Queue) watchBroken(msg string) {
	q.enterTrouble(errors.New(msg), true)
}

// writeCtx bounds a write by d and ends it early, with the storage's
// trouble as its cause, when the storage falls into trouble meanwhile (a
// write the embedded server will never answer).
func (q *Queue) writeCtx(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, d)
	q.health.mu.Lock()
	bad := q.health.badCtx
	q.health.mu.Unlock()
	if bad.Err() != nil {
		return ctx, cancel // already in trouble: nothing to watch for
	}
	ctx, cancelCause := context.WithCancelCause(ctx)
	stop := context.AfterFunc(bad, func() { cancelCause(q.health.err()) })
	return ctx, func() { stop(); cancelCause(nil); cancel() }
}
