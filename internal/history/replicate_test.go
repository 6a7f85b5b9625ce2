package history

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// memLog is an in-memory Log shared by the stores of a test "cluster".
type memLog struct {
	mu      sync.Mutex
	entries [][]byte
	grew    chan struct{}
	// twice appends every op twice (a publish the log did not dedupe)
	twice bool
	// afters records the sequence each Follow was asked to start after
	afters []uint64
	// fromStart: Follow sends every op, whatever it was asked
	fromStart bool
}

func newMemLog() *memLog { return &memLog{grew: make(chan struct{})} }

func (l *memLog) Append(_ context.Context, ops [][]byte) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range ops {
		l.entries = append(l.entries, o)
		if l.twice {
			l.entries = append(l.entries, o)
		}
	}
	close(l.grew)
	l.grew = make(chan struct{})
	return uint64(len(l.entries)), nil
}

// resend appends entry seq again (a copy arriving late).
func (l *memLog) resend(seq uint64) {
	l.mu.Lock()
	e := l.entries[seq-1]
	l.mu.Unlock()
	_, _ = l.Append(context.Background(), [][]byte{e})
}

func (l *memLog) Follow(ctx context.Context, after uint64, out chan<- Entry) error {
	l.mu.Lock()
	l.afters = append(l.afters, after)
	if l.fromStart {
		after = 0
	}
	l.mu.Unlock()
	next := after + 1
	for {
		l.mu.Lock()
		var todo []Entry
		for ; next <= uint64(len(l.entries)); next++ {
			todo = append(todo, Entry{Seq: next, Data: l.entries[next-1]})
		}
		grew := l.grew
		l.mu.Unlock()
		for _, e := range todo {
			select {
			case out <- e:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		select {
		case <-grew:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (l *memLog) Last(context.Context) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return uint64(len(l.entries)), nil
}

func (l *memLog) followedAfter() []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.afters)
}

// doneLog collects the batches OnBatchDone reports.
type doneLog struct {
	mu sync.Mutex
	b  []Batch
}

func (d *doneLog) add(b Batch) { d.mu.Lock(); d.b = append(d.b, b); d.mu.Unlock() }
func (d *doneLog) len() int    { d.mu.Lock(); defer d.mu.Unlock(); return len(d.b) }

func member(t *testing.T, log Log, path string, done *doneLog) *Store {
	t.Helper()
	cfg := Config{Path: path, Log: log, Linger: time.Millisecond}
	if done != nil {
		cfg.OnBatchDone = done.add
	}
	return open(t, cfg)
}

// settle flushes every member, then every member again: the second
// round's views include what every member had queued before the first.
func settle(stores ...*Store) {
	for range 2 {
		for _, s := range stores {
			s.Flush()
		}
	}
}

func mustBatch(t *testing.T, s *Store, id string) Batch {
	t.Helper()
	b, ok, err := s.Batch(id)
	if err != nil || !ok {
		t.Fatalf("batch %s: %v %v", id, ok, err)
	}
	return b
}

// TestClusterViews: a batch begun on A whose leads run on A and B reads
// the same on both (and on C, which joins afterwards); its summary is
// reported once, by the instance whose record completed it.
func TestClusterViews(t *testing.T) {
	log := newMemLog()
	var doneA, doneB doneLog
	a := member(t, log, filepath.Join(t.TempDir(), "a.db"), &doneA)
	b := member(t, log, filepath.Join(t.TempDir(), "b.db"), &doneB)
	leads := []string{"l1", "l2", "l3", "l4"}
	if err := a.Begin(Batch{ID: "B1", Integration: "crm"}, leads, "req-1"); err != nil {
		t.Fatal(err)
	}
	// B runs l3, l4: it finds their batch although A accepted them
	for _, l := range []string{"l3", "l4"} {
		if got, err := b.Pending(l); err != nil || got != "B1" {
			t.Fatalf("B: Pending(%s) = %q %v", l, got, err)
		}
	}
	a.Started("l1")
	b.Started("l3")
	settle(a, b)
	for _, s := range []*Store{a, b} {
		if bt := mustBatch(t, s, "B1"); bt.State["running"] != 2 || bt.State["queued"] != 2 {
			t.Fatalf("after two starts: %+v", bt.State)
		}
	}
	a.Add(rec("l1", "crm", "success", time.Now()))
	a.Add(rec("l2", "crm", "failure", time.Now()))
	b.Add(rec("l3", "crm", "success", time.Now()))
	settle(a, b)
	b.Add(rec("l4", "crm", "success", time.Now()))
	settle(a, b)
	for name, s := range map[string]*Store{"A": a, "B": b} {
		bt := mustBatch(t, s, "B1")
		if !bt.Done || bt.State["done"] != 4 || bt.Outcomes["success"] != 3 || bt.Outcomes["failure"] != 1 {
			t.Fatalf("%s: %+v", name, bt)
		}
		for _, l := range leads {
			r, ok, err := s.Get(l)
			if err != nil || !ok || r.Batch != "B1" || r.RequestID != "req-1" {
				t.Fatalf("%s: Get(%s) = %+v %v %v", name, l, r, ok, err)
			}
		}
	}
	if doneA.len() != 0 || doneB.len() != 1 {
		t.Fatalf("batch done reported %d times on A, %d on B (want once, on B whose record completed it)", doneA.len(), doneB.len())
	}
	a.AddAttempt("bat_B1", Attempt{At: time.Now(), Attempt: 1, URL: "https://x.example", Status: 200})
	a.Notified("B1")
	// C joins later: it applies the whole log, in its order
	c := member(t, log, filepath.Join(t.TempDir(), "c.db"), nil)
	settle(a, b, c)
	for name, s := range map[string]*Store{"B": b, "C": c} {
		if bt := mustBatch(t, s, "B1"); !bt.Done || !bt.Notified || bt.State["done"] != 4 {
			t.Fatalf("%s: %+v", name, bt)
		}
		if at, err := s.Attempts("bat_B1"); err != nil || len(at) != 1 {
			t.Fatalf("%s: attempts %v %v", name, at, err)
		}
	}
	want := all(t, a, Query{})
	for name, s := range map[string]*Store{"B": b, "C": c} {
		if got := all(t, s, Query{}); !slices.Equal(got, want) {
			t.Fatalf("%s lists %v, A %v (the log's order)", name, got, want)
		}
	}
}

// TestClusterWithdraw: a withdrawal completes the batch on every view.
func TestClusterWithdraw(t *testing.T) {
	log := newMemLog()
	var done doneLog
	a := member(t, log, filepath.Join(t.TempDir(), "a.db"), &done)
	b := member(t, log, filepath.Join(t.TempDir(), "b.db"), nil)
	if err := a.Begin(Batch{ID: "W", Integration: "crm"}, []string{"x", "y"}, ""); err != nil {
		t.Fatal(err)
	}
	b.Add(rec("x", "crm", "success", time.Now()))
	settle(a, b)
	if err := a.Withdraw("W", []string{"y"}); err != nil {
		t.Fatal(err)
	}
	settle(a, b)
	for _, s := range []*Store{a, b} {
		if bt := mustBatch(t, s, "W"); !bt.Done || bt.Total != 1 {
			t.Fatalf("%+v", bt)
		}
	}
	if done.len() != 1 {
		t.Fatalf("done reported %d times", done.len())
	}
}

// TestApplyTwice: every op in the log twice (at different sequences)
// changes nothing: counts, records and attempts are kept once.
func TestApplyTwice(t *testing.T) {
	log := newMemLog()
	log.twice = true
	var done doneLog
	s := member(t, log, filepath.Join(t.TempDir(), "a.db"), &done)
	if err := s.Begin(Batch{ID: "B2", Integration: "crm"}, []string{"p", "q"}, ""); err != nil {
		t.Fatal(err)
	}
	s.Started("p")
	s.Add(rec("p", "crm", "success", time.Now()))
	s.Started("q")
	s.Add(rec("q", "crm", "failure", time.Now()))
	s.AddAttempt("res_p", Attempt{At: time.Now(), Attempt: 1, URL: "https://x.example"})
	s.Flush()
	bt := mustBatch(t, s, "B2")
	if !bt.Done || bt.Total != 2 || bt.State["done"] != 2 || bt.State["running"] != 0 || bt.State["queued"] != 0 ||
		bt.Outcomes["success"] != 1 || bt.Outcomes["failure"] != 1 {
		t.Fatalf("%+v", bt)
	}
	if ids := all(t, s, Query{}); len(ids) != 2 {
		t.Fatalf("records %v", ids)
	}
	if at, _ := s.Attempts("res_p"); len(at) != 1 {
		t.Fatalf("attempts %v", at)
	}
	if st := s.Stats(); st.Written != 2 || st.Duplicates != 2 || done.len() != 1 {
		t.Fatalf("stats %+v, done %d", st, done.len())
	}
}

// TestResume: a reopened view follows the log after the sequence its file
// says it applied, and applies nothing twice.
func TestResume(t *testing.T) {
	log := newMemLog()
	path := filepath.Join(t.TempDir(), "a.db")
	cfg := Config{Path: path, Log: log, Linger: time.Millisecond}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Begin(Batch{ID: "R", Integration: "crm"}, []string{"r1", "r2"}, ""); err != nil {
		t.Fatal(err)
	}
	s.Add(rec("r1", "crm", "success", time.Now()))
	s.Flush()
	saved, _ := log.Last(context.Background())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// others write while it is away
	other := member(t, log, filepath.Join(t.TempDir(), "o.db"), nil)
	other.Add(rec("r2", "crm", "success", time.Now()))
	other.Flush()
	s, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Flush()
	if af := log.followedAfter(); af[len(af)-1] != saved {
		t.Fatalf("the reopened view followed after %d, want %d (what it had applied)", af[len(af)-1], saved)
	}
	if st := s.Stats(); st.Written != 1 || st.Duplicates != 0 {
		t.Fatalf("after reopening: %+v (want only r2 applied)", st)
	}
	if bt := mustBatch(t, s, "R"); !bt.Done || bt.State["done"] != 2 {
		t.Fatalf("%+v", bt)
	}
}

// TestApplyLateCopy: a copy of a big batch's second begin op arriving
// after one of its leads finished moves nothing back.
func TestApplyLateCopy(t *testing.T) {
	log := newMemLog()
	s := member(t, log, filepath.Join(t.TempDir(), "a.db"), nil)
	leads := make([]string, beginChunk+2)
	for i := range leads {
		leads[i] = fmt.Sprintf("lead-%d", i)
	}
	if err := s.Begin(Batch{ID: "BIG", Integration: "crm"}, leads, ""); err != nil {
		t.Fatal(err)
	}
	if n, _ := log.Last(context.Background()); n != 2 {
		t.Fatalf("%d begin ops, want 2 (chunks of %d)", n, beginChunk)
	}
	last := leads[len(leads)-1]
	if got, _ := s.Pending(last); got != "BIG" {
		t.Fatalf("Pending(%s) = %q", last, got)
	}
	s.Add(rec(last, "crm", "success", time.Now()))
	s.Flush()
	log.resend(2)
	s.Flush()
	bt := mustBatch(t, s, "BIG")
	if bt.Total != len(leads) || bt.State["done"] != 1 || bt.State["queued"] != len(leads)-1 {
		t.Fatalf("%+v", bt.State)
	}
	if u, _ := s.Unfinished(len(leads)); len(u) != len(leads)-1 {
		t.Fatalf("%d unfinished, want %d", len(u), len(leads)-1)
	}
}

// TestRedeliveryIgnored: ops the view applied already, sent again (a
// consumer that restarted too early in the log), are skipped by their
// sequence: nothing is applied twice, not even counted as a duplicate.
func TestRedeliveryIgnored(t *testing.T) {
	log := newMemLog()
	path := filepath.Join(t.TempDir(), "a.db")
	s := member(t, log, path, nil)
	s.Add(rec("x1", "crm", "success", time.Now()))
	s.Add(rec("x2", "crm", "success", time.Now()))
	s.Flush()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	log.mu.Lock()
	log.fromStart = true
	log.mu.Unlock()
	s = member(t, log, path, nil)
	s.Add(rec("x3", "crm", "success", time.Now()))
	s.Flush()
	if st := s.Stats(); st.Written != 1 || st.Duplicates != 0 || st.Redelivered != 2 {
		t.Fatalf("%+v: want x3 applied, x1 and x2 skipped", st)
	}
}

// heldLog is a member's view of a memLog that applies nothing until the
// member asks how far the log reaches (Last): a view behind, on demand.
type heldLog struct {
	*memLog
	once    sync.Once
	release chan struct{}
}

func (h *heldLog) Follow(ctx context.Context, after uint64, out chan<- Entry) error {
	select {
	case <-h.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return h.memLog.Follow(ctx, after, out)
}

func (h *heldLog) Last(ctx context.Context) (uint64, error) {
	h.once.Do(func() { close(h.release) })
	return h.memLog.Last(ctx)
}

// TestPendingBehind: a lead accepted by A reaches B before B's view has
// its batch; Pending on B catches up and finds it.
func TestPendingBehind(t *testing.T) {
	log := newMemLog()
	a := member(t, log, filepath.Join(t.TempDir(), "a.db"), nil)
	b := member(t, &heldLog{memLog: log, release: make(chan struct{})}, filepath.Join(t.TempDir(), "b.db"), nil)
	if err := a.Begin(Batch{ID: "P", Integration: "crm"}, []string{"p1"}, ""); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Pending("p1"); err != nil || got != "P" {
		t.Fatalf("B: Pending = %q %v (want the batch A began)", got, err)
	}
}

// TestBeginOpsBounded: a batch's begin is split so that no log message
// passes the bound, and every lead is in exactly one part.
func TestBeginOpsBounded(t *testing.T) {
	for _, n := range []int{0, 1, beginChunk, beginChunk + 1, 3*beginChunk + 5} {
		for _, idLen := range []int{26, 128} {
			leads := make([]string, n)
			for i := range leads {
				leads[i] = fmt.Sprintf("%0*d", idLen, i)
			}
			ops := beginOps(Batch{ID: "B"}, leads, "", time.Now(), "o")
			var all []string
			for i, o := range ops {
				if (i == 0) != (o.Batch != nil) {
					t.Fatalf("op %d: batch %v", i, o.Batch)
				}
				js, _ := json.Marshal(o)
				if len(js) > 1<<20-1024 || len(o.Leads) > beginChunk {
					t.Fatalf("n %d, ids of %d: op %d is %d bytes, %d leads", n, idLen, i, len(js), len(o.Leads))
				}
				all = append(all, o.Leads...)
			}
			if !slices.Equal(all, leads) {
				t.Fatalf("n %d: %d leads in the ops", n, len(all))
			}
		}
	}
}

// stuckLog is a log this member never reads from.
type stuckLog struct{ *memLog }

func (stuckLog) Follow(ctx context.Context, _ uint64, _ chan<- Entry) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestBehindListsNothing: a view that cannot reach the log's end lists
// no unfinished leads or unnotified batches (which would be on their way)
// but says why.
func TestBehindListsNothing(t *testing.T) {
	log := newMemLog()
	a := member(t, log, filepath.Join(t.TempDir(), "a.db"), nil)
	if err := a.Begin(Batch{ID: "S", Integration: "crm"}, []string{"s1"}, ""); err != nil {
		t.Fatal(err)
	}
	s := open(t, Config{Path: filepath.Join(t.TempDir(), "s.db"), Log: stuckLog{log}, viewWait: 50 * time.Millisecond})
	if u, err := s.Unfinished(10); err == nil || len(u) != 0 {
		t.Fatalf("Unfinished = %v %v", u, err)
	}
	if u, err := s.Unnotified(); err == nil || len(u) != 0 {
		t.Fatalf("Unnotified = %v %v", u, err)
	}
	if u, err := a.Unfinished(10); err != nil || len(u) != 1 {
		t.Fatalf("A: Unfinished = %v %v", u, err)
	}
}

// TestNewLog: a view whose file applied more than a (new) log holds
// applies that log from its start.
func TestNewLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	old := newMemLog()
	s, err := Open(Config{Path: path, Log: old, Linger: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		s.Add(rec(fmt.Sprint("old", i), "crm", "success", time.Now()))
	}
	s.Flush()
	must(t, s.Close())
	fresh := newMemLog()
	other := member(t, fresh, filepath.Join(t.TempDir(), "o.db"), nil)
	other.Add(rec("new0", "crm", "success", time.Now()))
	other.Flush()
	s = member(t, fresh, path, nil)
	s.Flush()
	if _, ok, _ := s.Get("new0"); !ok {
		t.Fatal("the new log's first op was not applied")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
