package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrHeld is the error (errors.Is) of TryLease when another instance
// holds the lease.
var ErrHeld = errors.New("held by another instance")

// Lease is a lease on a name in the locks bucket: the token renewal
// lock's pattern (see the package doc), for work that one instance of the
// cluster does at a time — a source's sync. It is renewed every Lease/3
// while held; Lost is closed when a renewal finds it gone or taken, or
// when no renewal succeeded for a whole Config.Lease (another instance may
// hold it by then).
type Lease struct {
	lost    chan struct{}
	release func()
	once    sync.Once
}

// Lost is closed when the lease is no longer this instance's.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Release stops the renewals and deletes the lease if it is still ours.
func (l *Lease) Release() { l.once.Do(l.release) }

// leaseKey is the KV key of a lease name.
func leaseKey(name string) string { return "lease-" + hashHex(name) }

// TryLease takes the lease on name if no instance holds it; ErrHeld if
// one does. The lease's value is this instance's id (Cluster.Instance).
func (c *Cluster) TryLease(ctx context.Context, name string) (*Lease, error) {
	k, val := leaseKey(name), []byte(c.owner)
	cctx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	rev, err := c.tokens.locks.Create(cctx, k, val)
	cancel()
	switch {
	case conflict(err):
		return nil, fmt.Errorf("lease %s: %w", name, ErrHeld)
	case err != nil:
		return nil, fmt.Errorf("cluster: lease %s: %w", name, err)
	}
	l := &Lease{lost: make(chan struct{})}
	l.release = holdLease(c.tokens.locks, k, val, rev, c.cfg.Lease, c.cfg.OpTimeout, func() { close(l.lost) })
	return l, nil
}

// LeaseHolder is the id of the instance holding the lease on name ("":
// none).
func (c *Cluster) LeaseHolder(ctx context.Context, name string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	defer cancel()
	e, err := c.tokens.locks.Get(cctx, leaseKey(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("cluster: lease %s: %w", name, err)
	}
	return string(e.Value()), nil
}

// Instance is this instance's id in the cluster (the value of the leases
// it holds).
func (c *Cluster) Instance() string { return c.owner }

// holdLease renews the lease k (written at rev) every lease/3 until the
// returned release, which deletes it at the revision last written (a
// lease that expired and was taken over stays with its new holder).
// lost, when not nil, is called once when a renewal finds the lease taken
// or gone, or when none succeeded for a whole lease.
func holdLease(locks jetstream.KeyValue, k string, val []byte, rev uint64, lease, op time.Duration, lost func()) func() {
	stop := make(chan struct{})
	done := make(chan uint64)
	go func() {
		t := time.NewTicker(lease / 3)
		defer t.Stop()
		renewed, gone := time.Now(), false
		for {
			select {
			case <-stop:
				done <- rev
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), op)
			r, err := locks.Update(ctx, k, val, rev)
			cancel()
			switch {
			case err == nil:
				rev, renewed = r, time.Now()
			case conflict(err) || errors.Is(err, jetstream.ErrKeyNotFound):
				gone = true
			case time.Since(renewed) >= lease:
				gone = true // cannot tell: another instance may hold it now
			}
			if gone && lost != nil {
				lost()
				lost = nil
			}
		}
	}()
	return func() {
		close(stop)
		last := <-done
		ctx, cancel := context.WithTimeout(context.Background(), op)
		defer cancel()
		_ = locks.Delete(ctx, k, jetstream.LastRevision(last))
	}
}
