// Package syncrun runs sources' syncs inside plumb serve: each source
// with a schedule: on its schedule, any source on a manual trigger, one
// sync of a source at a time across the instances that share its state.
//
// A Manager keeps one loop per source. The loop reads the source's saved
// state (source.StateStore) and works out when the next sync is due from
// the start of the last one (schedule.Spec.Due); it sleeps until then on
// an injectable Clock, then takes the source's lease (Leaser: in process
// for one instance, a lease in the cluster's KV for several) and, if the
// sync is still due once the lease is held (another instance may have run
// it meanwhile), runs source.Sync with the integration's current runner
// and a session of the store. A sync whose state says it is running
// (State.Ended empty) while nobody holds the lease was killed: the first
// loop to take the lease goes on from its last saved page. Loops whose
// lease is held elsewhere look again every Poll, so a dead holder is
// replaced within the lease's expiry plus Poll.
package syncrun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/schedule"
	"github.com/plumbhq/plumb/source"
)

// DefaultPoll is how often a loop looks again at a source whose lease
// another instance holds.
const DefaultPoll = time.Second

// ErrHeld is what Leaser.Acquire returns when another runner holds the
// lease; ErrRunning what Trigger returns then.
var (
	ErrHeld    = errors.New("another runner holds the source's lease")
	ErrRunning = errors.New("a sync of this source is running")
	ErrUnknown = errors.New("no such source")
)

// Leaser hands out one lease per source key.
type Leaser interface {
	// Acquire takes the lease on key, or returns ErrHeld (errors.Is).
	Acquire(ctx context.Context, key string) (Lease, error)
	// Holder names the runner holding key's lease ("": none).
	Holder(ctx context.Context, key string) (string, error)
}

// Lease is a held lease.
type Lease interface {
	// Lost is closed when the lease stops being ours (nil: never).
	Lost() <-chan struct{}
	Release()
}

// Target is what a source syncs with, read at each run: the
// integration's current runner, its source and its schedule (nil: on
// trigger only).
type Target struct {
	Runner *engine.Runner
	Spec   *source.Spec
	Sched  *schedule.Spec
}

// Config configures a Manager.
type Config struct {
	// Store keeps the state; Session, when set, gives each sync its own
	// view of it (syncstate.Store.Session: writes fenced by revision).
	Store   source.StateStore
	Session func() source.StateStore
	// Leases hands out the sources' leases (default: in process).
	Leases Leaser
	// Clock is the scheduler's clock (default the wall clock); Rand draws
	// the jitter (default the package's source).
	Clock schedule.Clock
	Rand  *rand.Rand
	// Poll is how often a loop looks again at a source held elsewhere
	// (default DefaultPoll).
	Poll time.Duration
	// Concurrency is how many records of a sync run at once (default 1).
	Concurrency int
	// Emit receives each record's result (default: dropped).
	Emit   func(integration string, rec source.Record, res *engine.Result)
	Logger *slog.Logger

	// run replaces source.Sync (tests)
	run func(ctx context.Context, t *Target, store source.StateStore, opt source.Options, emit func(source.Record, *engine.Result) error) (*source.Report, error)
}

// Manager runs the loops.
type Manager struct {
	cfg      Config
	ctx      context.Context // the loops'
	cancel   context.CancelFunc
	syncCtx  context.Context // the syncs': cancelled when Close's wait ends
	syncStop context.CancelFunc
	wg       sync.WaitGroup
	stopping chan struct{} // closed by Close: syncs stop after their page
	stopOnce sync.Once

	mu    sync.Mutex
	loops map[string]*loop // by integration name
}

// New makes a Manager; its loops run until Close.
func New(cfg Config) *Manager {
	if cfg.Leases == nil {
		cfg.Leases = NewLocalLeases()
	}
	if cfg.Clock == nil {
		cfg.Clock = schedule.RealClock{}
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.run == nil {
		cfg.run = func(ctx context.Context, t *Target, store source.StateStore, opt source.Options, emit func(source.Record, *engine.Result) error) (*source.Report, error) {
			return source.Sync(ctx, t.Runner, t.Spec, store, opt, emit)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	sctx, scancel := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, ctx: ctx, cancel: cancel, syncCtx: sctx, syncStop: scancel, loops: map[string]*loop{}, stopping: make(chan struct{})}
}

// Set adds (or refreshes) the source of integration name: get returns
// what to sync with now (nil: the integration is not served). A loop
// already running is woken to read its schedule again.
func (m *Manager) Set(name string, get func() *Target) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l := m.loops[name]; l != nil {
		l.setTarget(get)
		l.poke()
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	sctx, scancel := context.WithCancel(m.syncCtx)
	l := &loop{m: m, name: name, get: get, wake: make(chan struct{}, 1), syncCtx: sctx, done: make(chan struct{}),
		cancel: func() { cancel(); scancel() }}
	m.loops[name] = l
	m.wg.Go(func() { defer close(l.done); l.run(ctx) })
}

// Remove stops the loop of name (a sync it runs is cancelled: its state
// says so, and another runner goes on from its last saved page).
func (m *Manager) Remove(name string) {
	m.mu.Lock()
	l := m.loops[name]
	delete(m.loops, name)
	m.mu.Unlock()
	if l != nil {
		l.cancel()
		<-l.done
	}
}

// Names lists the sources' integrations.
func (m *Manager) Names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.loops))
	for n := range m.loops {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Close stops every loop: a running sync stops after the page being
// worked on (its state saved; the next start, or another instance, goes
// on from there); when ctx ends first, the syncs are cancelled. It
// returns once every loop has ended.
func (m *Manager) Close(ctx context.Context) {
	m.stopOnce.Do(func() { close(m.stopping) })
	m.cancel() // the loops start nothing more
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		m.syncStop()
		<-done
	}
	m.syncStop()
}

func (m *Manager) lookup(name string) *loop {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.loops[name]
}

// session is the store a sync writes through.
func (m *Manager) session() source.StateStore {
	if m.cfg.Session != nil {
		return m.cfg.Session()
	}
	return m.cfg.Store
}

// Mode is how a triggered sync starts.
type Mode string

// The modes of a triggered sync.
const (
	// ModeNormal goes on with an unfinished sync, else syncs from the
	// saved cursor, as a scheduled sync does.
	ModeNormal Mode = ""
	// ModeFull reads every record again from incremental.start (the
	// retry list and counts are kept).
	ModeFull Mode = "full"
	// ModeReset forgets the state and the retry list, then syncs as the
	// first sync did.
	ModeReset Mode = "reset"
)

// Trigger starts a sync of name now, on this instance: ErrRunning when a
// sync of it runs (here or elsewhere), ErrUnknown when name has no
// source. It returns once the sync holds the lease (and, for ModeReset,
// the state is reset).
func (m *Manager) Trigger(ctx context.Context, name string, mode Mode) error {
	l := m.lookup(name)
	if l == nil {
		return fmt.Errorf("%s: %w", name, ErrUnknown)
	}
	t := l.target()
	if t == nil {
		return fmt.Errorf("%s: %w (the integration is not loaded)", name, ErrUnknown)
	}
	lease, err := m.cfg.Leases.Acquire(ctx, t.Spec.Key)
	if errors.Is(err, ErrHeld) {
		return fmt.Errorf("%s: %w", name, ErrRunning)
	}
	if err != nil {
		return err
	}
	opt := source.Options{Full: mode == ModeFull}
	store := m.session()
	if mode == ModeReset {
		if err := store.Reset(ctx, t.Spec.Key); err != nil {
			lease.Release()
			return err
		}
	}
	m.wg.Go(func() {
		defer lease.Release()
		l.sync(l.syncCtx, t, lease, store, opt, "manual")
		l.poke() // the next scheduled run counts from this one
	})
	return nil
}
