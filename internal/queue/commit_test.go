package queue

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fakeMsg is a delivered job that records what was done with it.
type fakeMsg struct {
	mu     sync.Mutex
	acked  bool
	nakked bool
	ackAt  int // the store's puts done when it was acked
	store  *fakeRecords
}

func (m *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) { return &jetstream.MsgMetadata{}, nil }
func (m *fakeMsg) Data() []byte                              { return nil }
func (m *fakeMsg) Headers() nats.Header                      { return nats.Header{} }
func (m *fakeMsg) Subject() string                           { return "plumb.work.x" }
func (m *fakeMsg) Reply() string                             { return "" }
func (m *fakeMsg) Ack() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.acked, m.ackAt = true, m.store.donePuts()
	return nil
}
func (m *fakeMsg) DoubleAck(context.Context) error { return m.Ack() }
func (m *fakeMsg) Nak() error                      { return m.NakWithDelay(0) }
func (m *fakeMsg) NakWithDelay(time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nakked = true
	return nil
}
func (m *fakeMsg) InProgress() error           { return nil }
func (m *fakeMsg) Term() error                 { return nil }
func (m *fakeMsg) TermWithReason(string) error { return nil }
func (m *fakeMsg) state() (acked, nakked bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.acked, m.nakked
}

// fakeRecords is a records store that counts its puts (batches) and can
// hold them until released.
type fakeRecords struct {
	mu      sync.Mutex
	recs    map[string]Record
	batches []int // the size of each put
	done    int   // puts returned
	gate    chan struct{}
	entered chan int // a put began (its size)
}

func newFakeRecords() *fakeRecords {
	return &fakeRecords{recs: map[string]Record{}, entered: make(chan int, 100)}
}

func (f *fakeRecords) donePuts() int { f.mu.Lock(); defer f.mu.Unlock(); return f.done }

func (f *fakeRecords) get(_ context.Context, id string) (Record, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.recs[id]
	if !ok {
		return Record{}, 0, ErrNotFound
	}
	return r, 1, nil
}

func (f *fakeRecords) put(_ context.Context, ws []*recordWrite) {
	f.entered <- len(ws)
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, len(ws))
	for _, w := range ws {
		f.recs[w.rec.ID] = *w.rec
		w.rev, w.err = 1, nil
	}
	f.done++
}

func (f *fakeRecords) finished(context.Context, time.Time, func(uint64) bool) error { return nil }

// commitQueue is a committer on store; waiting, if not nil, is told each
// time it starts waiting for company.
func commitQueue(t *testing.T, store *fakeRecords, batch int, wait time.Duration, waiting chan struct{}) *committer {
	t.Helper()
	cfg := Config{DataDir: t.TempDir(), CommitBatch: batch, CommitWait: wait}
	if err := cfg.setDefaults(); err != nil {
		t.Fatal(err)
	}
	q := &Queue{cfg: cfg, log: slog.New(slog.DiscardHandler), records: store, health: newHealth()}
	c := newCommitter(q, t.Context())
	if waiting != nil {
		c.waiting = func() { waiting <- struct{}{} }
	}
	c.run()
	t.Cleanup(c.close)
	return c
}

func doneEntry(store *fakeRecords, id string) (*entry, *fakeMsg) {
	m := &fakeMsg{store: store}
	return &entry{w: recordWrite{rec: &Record{ID: id, State: StateDone}}, msg: m, then: thenAck, log: slog.New(slog.DiscardHandler),
		done: make(chan struct{})}, m
}

// Handlers still running are company worth waiting for: three that finish
// one after the other share one write, however long they take (the wait's
// bound is an hour here, so no clock is involved).
func TestCommitWaitsForRunningHandlers(t *testing.T) {
	store := newFakeRecords()
	waiting := make(chan struct{}, 10)
	c := commitQueue(t, store, 256, time.Hour, waiting)
	for range 3 {
		c.start()
	}
	var msgs []*fakeMsg
	for i := range 3 {
		e, m := doneEntry(store, fmt.Sprintf("j%d", i))
		msgs = append(msgs, m)
		c.submit(e)
		select { // it holds what it has, waiting for the others
		case <-waiting:
		case n := <-store.entered:
			t.Fatalf("a write of %d records while %d handlers still run", n, 3-i)
		}
		c.finish() // the last one wakes it: nobody is left to wait for
	}
	select {
	case n := <-store.entered:
		if n != 3 {
			t.Fatalf("a write of %d records, want the 3 together", n)
		}
	case <-time.After(time.Minute): // (a bound on a hang, not a wait)
		t.Fatal("no write once every handler had finished")
	}
	c.close()
	for i, m := range msgs {
		if acked, _ := m.state(); !acked {
			t.Errorf("job %d not acked", i)
		}
	}
}

// With nothing else running, a record is written at once: a lone job does
// not wait for company that cannot come.
func TestCommitAloneWritesAtOnce(t *testing.T) {
	store := newFakeRecords()
	c := commitQueue(t, store, 256, time.Hour, nil)
	c.start()
	e, m := doneEntry(store, "alone")
	c.submit(e)
	c.finish()
	if n := <-store.entered; n != 1 {
		t.Fatalf("write of %d records", n)
	}
	<-e.done
	if acked, _ := m.state(); !acked {
		t.Error("not acked")
	}
}

// A batch holds at most CommitBatch records, and every job is acked only
// after the write that holds its record returned.
func TestCommitBatchBoundAndAckAfterWrite(t *testing.T) {
	store := newFakeRecords()
	store.gate = make(chan struct{})
	c := commitQueue(t, store, 5, -1, nil)
	open := sync.OnceFunc(func() { close(store.gate) })
	t.Cleanup(open) // (before the committer's close, on a failure)
	c.start()       // a handler still running: the committer writes what it has
	first, m0 := doneEntry(store, "j0")
	c.submit(first)
	<-store.entered // the first write is under way, held
	var msgs []*fakeMsg
	var entries []*entry
	for i := 1; i <= 10; i++ {
		e, m := doneEntry(store, fmt.Sprintf("j%d", i))
		msgs, entries = append(msgs, m), append(entries, e)
		c.submit(e) // (the channel has room for two batches)
	}
	if acked, _ := m0.state(); acked {
		t.Fatal("acked before its record's write returned")
	}
	open()
	c.finish()
	for _, e := range entries {
		<-e.done
	}
	store.mu.Lock()
	batches := store.batches
	store.mu.Unlock()
	if fmt.Sprint(batches) != "[1 5 5]" {
		t.Errorf("writes of %v records, want [1 5 5]: the first alone, then at most 5", batches)
	}
	for i, m := range append([]*fakeMsg{m0}, msgs...) {
		m.mu.Lock()
		if want := 1 + (i+4)/5; !m.acked || m.ackAt != want {
			t.Errorf("job %d: acked %v after %d writes, want after the write of its record (%d)", i, m.acked, m.ackAt, want)
		}
		m.mu.Unlock()
	}
}

// A failed attempt's record is stored before its job is handed back.
func TestCommitNakAfterWrite(t *testing.T) {
	store := newFakeRecords()
	store.gate = make(chan struct{})
	c := commitQueue(t, store, 256, -1, nil)
	open := sync.OnceFunc(func() { close(store.gate) })
	t.Cleanup(open)
	m := &fakeMsg{store: store}
	e := &entry{w: recordWrite{rec: &Record{ID: "f", State: StateQueued, LastError: "no"}}, msg: m, then: thenNak, log: slog.New(slog.DiscardHandler)}
	c.submit(e)
	<-store.entered
	if _, nakked := m.state(); nakked {
		t.Fatal("handed back before its record was stored")
	}
	open()
	<-e.done
	if _, nakked := m.state(); !nakked {
		t.Fatal("not handed back")
	}
	if r, _, _ := store.get(t.Context(), "f"); r.LastError != "no" {
		t.Errorf("record %+v", r)
	}
}
