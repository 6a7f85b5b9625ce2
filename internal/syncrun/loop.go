package syncrun

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/source"
)

// loop is one source's scheduler.
type loop struct {
	m       *Manager
	name    string
	wake    chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
	syncCtx context.Context // the syncs this loop runs (Remove cancels it)

	mu        sync.Mutex
	get       func() *Target
	next      time.Time // when the next scheduled sync is due (zero: none)
	jitterDue time.Time // the due time jitter was drawn for
	jitter    time.Duration
	running   bool // a sync runs on this instance
	lastErr   string
	lastRep   *source.Report
}

func (l *loop) target() *Target {
	l.mu.Lock()
	get := l.get
	l.mu.Unlock()
	t := get()
	if t == nil || t.Runner == nil || t.Spec == nil {
		return nil
	}
	return t
}

func (l *loop) setTarget(get func() *Target) {
	l.mu.Lock()
	l.get = get
	l.mu.Unlock()
}

// poke wakes the loop to look at its source again.
func (l *loop) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// run is the loop: plan, sleep, attempt, until ctx ends.
func (l *loop) run(ctx context.Context) {
	since := l.m.cfg.Clock.Now()
	for ctx.Err() == nil {
		t := l.target()
		if t == nil {
			l.idle(ctx)
			continue
		}
		wait, ok := l.plan(ctx, t, since)
		if !ok {
			l.idle(ctx)
			continue
		}
		if l.sleep(ctx, wait) {
			l.attempt(ctx, t, since)
		}
	}
}

// unfinished reports whether st is a sync that stopped before its end
// without choosing to: killed (Ended empty and nobody runs it: the lease
// is free when this is acted on), or cancelled or stopped by a shutdown
// with pages left. Such a sync goes on at once, not at the next time.
func unfinished(st source.State) bool {
	if st.Ended == "" {
		return !st.Updated.IsZero()
	}
	return st.Resume != nil && (st.Ended == "canceled" || st.Ended == "stopped")
}

// plan reads the state and returns how long to wait before the next
// attempt; false when nothing is due until the loop is woken.
func (l *loop) plan(ctx context.Context, t *Target, since time.Time) (time.Duration, bool) {
	st, err := l.m.cfg.Store.Load(ctx, t.Spec.Key)
	if err != nil {
		l.fail("reading the sync state", err)
		return l.m.cfg.Poll, true
	}
	now := l.m.cfg.Clock.Now()
	if unfinished(st) {
		return 0, true
	}
	at, ok := l.dueAt(t, st, since)
	l.mu.Lock()
	l.next = at
	l.mu.Unlock()
	if !ok {
		return 0, false
	}
	return at.Sub(now), true
}

// dueAt is when the next scheduled sync starts: due plus its jitter
// (drawn once per due time).
func (l *loop) dueAt(t *Target, st source.State, since time.Time) (time.Time, bool) {
	if t.Sched == nil {
		return time.Time{}, false
	}
	due := t.Sched.Due(st.Started, since)
	if due.IsZero() {
		return time.Time{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !due.Equal(l.jitterDue) {
		l.jitterDue, l.jitter = due, t.Sched.Delay(l.m.cfg.Rand)
	}
	return due.Add(l.jitter), true
}

// sleep waits d on the clock; false when woken (or ctx ended) first.
func (l *loop) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	woke := make(chan struct{})
	go func() {
		select {
		case <-l.wake:
			close(woke)
			cancel()
		case <-sctx.Done():
		}
	}()
	err := l.m.cfg.Clock.Sleep(sctx, d)
	cancel()
	select {
	case <-woke:
		return false
	default:
	}
	return err == nil && ctx.Err() == nil
}

// idle waits to be woken.
func (l *loop) idle(ctx context.Context) {
	select {
	case <-l.wake:
	case <-ctx.Done():
	}
}

// attempt takes the lease and, if the sync is still due, runs it.
func (l *loop) attempt(ctx context.Context, t *Target, since time.Time) {
	lease, err := l.m.cfg.Leases.Acquire(ctx, t.Spec.Key)
	if err != nil {
		if !errors.Is(err, ErrHeld) {
			l.fail("taking the source's lease", err)
		}
		l.sleep(ctx, l.m.cfg.Poll)
		return
	}
	defer lease.Release()
	store := l.m.session()
	st, err := store.Load(ctx, t.Spec.Key)
	if err != nil {
		l.fail("reading the sync state", err)
		return
	}
	why := "resume"
	if !unfinished(st) {
		at, ok := l.dueAt(t, st, since)
		if !ok || at.After(l.m.cfg.Clock.Now()) {
			return // run meanwhile by another instance
		}
		why = "schedule"
	}
	l.sync(l.syncCtx, t, lease, store, source.Options{}, why)
}

// sync runs one sync holding lease; it ends early when the lease is lost.
func (l *loop) sync(ctx context.Context, t *Target, lease Lease, store source.StateStore, opt source.Options, why string) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log := l.m.cfg.Logger.With("integration", l.name, "source", t.Spec.Key)
	if lost := lease.Lost(); lost != nil {
		go func() {
			select {
			case <-lost:
				log.Error("sync: the source's lease was lost; stopping (another instance goes on from the last saved page)")
				cancel()
			case <-sctx.Done():
			}
		}()
	}
	opt.Concurrency = max(l.m.cfg.Concurrency, t.Runner.Plan().BatchSize(), 1)
	opt.Now = l.m.cfg.Clock.Now
	opt.Stop = l.m.stopping
	l.setRunning(true)
	log.Info("sync started", "why", why, "full", opt.Full)
	rep, err := l.m.cfg.run(sctx, t, store, opt, func(rec source.Record, res *engine.Result) error {
		if l.m.cfg.Emit != nil {
			l.m.cfg.Emit(l.name, rec, res)
		}
		return nil
	})
	l.mu.Lock()
	l.running, l.lastRep = false, rep
	l.mu.Unlock()
	switch {
	case err != nil:
		l.fail("sync", err)
	case rep != nil && rep.Err != nil:
		log.Warn("sync ended", "ended", rep.Ended, "pages", rep.Pages, "records", rep.Records, "errors", rep.Errors, "err", t.Runner.Redact(rep.Err.Error()))
	case rep != nil:
		log.Info("sync ended", "ended", rep.Ended, "pages", rep.Pages, "records", rep.Records, "errors", rep.Errors)
	}
}

func (l *loop) setRunning(on bool) {
	l.mu.Lock()
	l.running = on
	if on {
		l.lastErr = ""
	}
	l.mu.Unlock()
}

func (l *loop) fail(what string, err error) {
	msg := what + ": " + err.Error()
	if t := l.target(); t != nil {
		msg = t.Runner.Redact(msg)
	}
	l.mu.Lock()
	l.lastErr = msg
	l.mu.Unlock()
	l.m.cfg.Logger.Error("sync: "+what, "integration", l.name, "err", msg)
}

// LocalLeases are leases within one process: one plumb serve that keeps
// its state to itself.
type LocalLeases struct {
	mu   sync.Mutex
	held map[string]bool
}

// NewLocalLeases makes in-process leases.
func NewLocalLeases() *LocalLeases { return &LocalLeases{held: map[string]bool{}} }

// Acquire implements Leaser.
func (s *LocalLeases) Acquire(_ context.Context, key string) (Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[key] {
		return nil, ErrHeld
	}
	s.held[key] = true
	return &localLease{s: s, key: key}, nil
}

// Holder implements Leaser: "this instance" while held.
func (s *LocalLeases) Holder(_ context.Context, key string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[key] {
		return "this instance", nil
	}
	return "", nil
}

type localLease struct {
	s    *LocalLeases
	key  string
	once sync.Once
}

func (l *localLease) Lost() <-chan struct{} { return nil }

func (l *localLease) Release() {
	l.once.Do(func() {
		l.s.mu.Lock()
		delete(l.s.held, l.key)
		l.s.mu.Unlock()
	})
}
