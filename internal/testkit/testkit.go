// Package testkit holds small helpers the engine's and the examples' tests
// share: a clock the test moves by hand, a barrier that lets requests
// through together, and a batch partner. Only tests import it.
package testkit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"
)

// ManualClock stands still until the test advances it; Sleep waits for
// that (or for its context). It satisfies engine.Clock.
type ManualClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	until time.Time
	done  chan struct{}
}

// NewManualClock returns a clock standing at now.
func NewManualClock(now time.Time) *ManualClock { return &ManualClock{now: now} }

// Now returns the clock's time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep returns once the clock has been advanced past d from now, or with
// ctx's error when ctx ends first.
func (c *ManualClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	w := waiter{until: c.now.Add(d), done: make(chan struct{})}
	c.waiters = append(c.waiters, w)
	c.mu.Unlock()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Advance moves the clock by d and wakes the sleepers whose time came.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.until.After(c.now) {
			close(w.done)
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// Sleepers is how many Sleep calls are waiting (or were abandoned by their
// context and not yet woken).
func (c *ManualClock) Sleepers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// Barrier lets n requests through together: each waits until all n have
// arrived, or until its own context ends (the client gave up).
type Barrier struct {
	mu   sync.Mutex
	n    int
	open chan struct{}
}

// NewBarrier returns a barrier for n arrivals.
func NewBarrier(n int) *Barrier { return &Barrier{n: n, open: make(chan struct{})} }

// Wait counts one arrival and waits for the others: true when all arrived,
// false when ctx ended first.
func (b *Barrier) Wait(ctx context.Context) bool {
	b.mu.Lock()
	if b.n--; b.n == 0 {
		close(b.open)
	}
	b.mu.Unlock()
	select {
	case <-b.open:
		return true
	case <-ctx.Done():
		return false
	}
}

// BatchPartner is a batch API: it takes {"ids": [...]} and answers
// {"results": [{"id": …, "ok": true}, …]}, recording the size of every
// batch it was sent. It is an http.Handler; NewBatchPartner also serves it
// on a loopback listener.
type BatchPartner struct {
	*httptest.Server // nil when made by NewBatchHandler
	mu               sync.Mutex
	sizes            []int
}

// NewBatchPartner starts a batch partner, closed when the test ends.
func NewBatchPartner(t interface{ Cleanup(func()) }) *BatchPartner {
	p := &BatchPartner{}
	p.Server = httptest.NewServer(p)
	t.Cleanup(p.Close)
	return p
}

// NewBatchHandler is a batch partner without a listener, for Transport.
func NewBatchHandler() *BatchPartner { return &BatchPartner{} }

// ServeHTTP answers one batch.
func (p *BatchPartner) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in struct{ IDs []string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	p.sizes = append(p.sizes, len(in.IDs))
	p.mu.Unlock()
	out := make([]string, len(in.IDs))
	for k, id := range in.IDs {
		out[k] = fmt.Sprintf(`{"id": %q, "ok": true}`, id)
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"results": [%s]}`, strings.Join(out, ","))
}

// Transport answers requests by calling Handler in the caller's goroutine,
// with no network. Tests that run inside a testing/synctest bubble use it:
// goroutines waiting on a real socket are never "durably blocked", so the
// bubble's clock could not advance past them.
type Transport struct{ Handler http.Handler }

// RoundTrip implements http.RoundTripper.
func (t Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	if req.Body == nil {
		req.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	t.Handler.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// Sizes returns the sizes of the batches received so far, in order.
func (p *BatchPartner) Sizes() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.sizes)
}
