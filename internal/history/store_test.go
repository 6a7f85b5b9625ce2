package history

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// clock is a fake clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func open(t *testing.T, cfg Config) *Store {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "history.db")
	}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func rec(id, integration, outcome string, at time.Time) Record {
	return Record{ID: id, Integration: integration, Source: SourceLeads, Outcome: outcome, Started: at, Finished: at}
}

// all pages through q, failing on a duplicate.
func all(t *testing.T, s *Store, q Query) []string {
	t.Helper()
	var ids []string
	seen := map[string]bool{}
	for pages := 0; ; pages++ {
		p, err := s.List(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Records {
			if seen[r.ID] {
				t.Fatalf("%s twice", r.ID)
			}
			seen[r.ID] = true
			ids = append(ids, r.ID)
		}
		if p.Next == "" {
			return ids
		}
		q.Cursor = p.Next
	}
}

func TestBatchCountsAndFilters(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	s := open(t, Config{Now: c.now})
	leads := []string{"a", "b", "c", "d"}
	if err := s.Begin(Batch{ID: "B1", Integration: "crm"}, leads, "req-1"); err != nil {
		t.Fatal(err)
	}
	s.Started("a")
	s.Started("b")
	s.Flush()
	b, ok, err := s.Batch("B1")
	if err != nil || !ok || b.State["queued"] != 2 || b.State["running"] != 2 || b.Done {
		t.Fatalf("batch = %+v %v %v", b, ok, err)
	}
	s.Add(rec("a", "crm", "success", c.now()))
	s.Add(rec("b", "crm", "failure", c.now()))
	s.Add(rec("b", "crm", "success", c.now())) // a redelivery: the first stands
	s.Add(rec("c", "crm", "success", c.now()))
	s.Add(rec("d", "crm", "error", c.now()))
	s.Add(rec("x", "other", "success", c.now()))
	s.Flush()
	b, _, _ = s.Batch("B1")
	if !b.Done || b.State["done"] != 4 || b.State["running"] != 0 || b.Outcomes["success"] != 2 || b.Outcomes["failure"] != 1 || b.Outcomes["error"] != 1 {
		t.Fatalf("batch = %+v", b)
	}
	if got := all(t, s, Query{Batch: "B1", Limit: 1}); strings.Join(got, ",") != "d,c,b,a" {
		t.Fatalf("batch query = %v", got)
	}
	if got := all(t, s, Query{Outcome: "success", Limit: 2}); strings.Join(got, ",") != "x,c,a" {
		t.Fatalf("outcome query = %v", got)
	}
	if got := all(t, s, Query{Integration: "other"}); strings.Join(got, ",") != "x" {
		t.Fatalf("integration query = %v", got)
	}
	r, ok, _ := s.Get("b")
	if !ok || r.RequestID != "req-1" || r.Batch != "B1" || r.Outcome != "failure" {
		t.Fatalf("b = %+v", r)
	}
	if _, err := s.List(context.Background(), Query{Cursor: "not a cursor!"}); err == nil {
		t.Fatal("a bad cursor was accepted")
	}
}

func TestCursorStableWhileAdding(t *testing.T) {
	s := open(t, Config{})
	for i := range 250 {
		s.Add(rec(fmt.Sprintf("old%03d", i), "crm", "success", time.Now()))
	}
	s.Flush()
	q := Query{Limit: 7}
	var got []string
	for n := 0; ; n++ {
		p, err := s.List(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Records {
			got = append(got, r.ID)
		}
		s.Add(rec(fmt.Sprintf("new%03d", n), "crm", "success", time.Now()))
		s.Flush()
		if p.Next == "" {
			break
		}
		q.Cursor = p.Next
	}
	if len(got) != 250 {
		t.Fatalf("paged %d records, want 250", len(got))
	}
	for i, id := range got {
		if want := fmt.Sprintf("old%03d", 249-i); id != want {
			t.Fatalf("record %d = %s, want %s", i, id, want)
		}
	}
}

func TestRetentionByAge(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	s := open(t, Config{Now: c.now, MaxAge: time.Hour})
	if err := s.Begin(Batch{ID: "old"}, []string{"o1"}, ""); err != nil {
		t.Fatal(err)
	}
	s.Add(rec("o1", "crm", "success", c.now()))
	s.Flush()
	c.add(90 * time.Minute)
	s.Add(rec("n1", "crm", "success", c.now())) // the committer prunes as it goes
	s.Flush()
	if got := all(t, s, Query{}); strings.Join(got, ",") != "n1" {
		t.Fatalf("after an hour and a half: %v", got)
	}
	if _, ok, _ := s.Get("o1"); ok {
		t.Fatal("o1 is still found by id")
	}
	if _, ok, _ := s.Batch("old"); ok {
		t.Fatal("the old batch is still there")
	}
}

func TestSizeBound(t *testing.T) {
	const max = 4 << 20
	path := filepath.Join(t.TempDir(), "h.db")
	s := open(t, Config{Path: path, MaxBytes: max, Linger: time.Hour}) // commits at each Flush: deterministic
	reason := strings.Repeat("r", 400)
	for i := range 40000 {
		r := rec(fmt.Sprintf("lead%06d", i), "crm", "failure", time.Now())
		r.Reason = reason
		s.Add(r)
		if i%1000 == 999 {
			s.Flush()
		}
	}
	s.Flush()
	st := s.Stats()
	if st.Bytes > max/4 || st.Pruned == 0 {
		t.Fatalf("stats = %+v", st)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("file %d bytes for a bound of %d; %d records kept, %d pruned, %d commits", fi.Size(), max, st.Written-st.Pruned, st.Pruned, st.Commits)
	if fi.Size() > max {
		t.Fatalf("file is %d bytes, over its bound %d", fi.Size(), max)
	}
	got := all(t, s, Query{Limit: MaxLimit})
	if len(got) == 0 || got[0] != "lead039999" {
		t.Fatalf("newest = %v", got[:min(1, len(got))])
	}
}

func TestFullQueueDropsNotBlocks(t *testing.T) {
	s := open(t, Config{Queue: 1, Linger: time.Hour})
	for i := range 100 {
		s.Add(rec(fmt.Sprint(i), "crm", "success", time.Now()))
	}
	if s.Stats().Dropped == 0 {
		t.Fatal("nothing was dropped with a queue of 1")
	}
}

func TestCommitsAreBatched(t *testing.T) {
	s := open(t, Config{Linger: time.Hour}) // a commit per 1024 operations, whatever the scheduling
	for i := range 2000 {
		s.Started(fmt.Sprint(i))
		s.Add(rec(fmt.Sprint(i), "crm", "success", time.Now()))
	}
	s.Flush()
	st := s.Stats()
	if st.Written != 2000 || st.Commits*2 > st.Written {
		t.Fatalf("%d records in %d commits (fsyncs): want at most one per two leads", st.Written, st.Commits)
	}
}

// The committer lingers for company without taking what arrives (ops
// that arrive wake no one), so a Flush and a commit's worth of queued
// records must each cut the linger short. One P makes the interleavings
// deterministic: the committer runs only when the test goroutine yields.
func TestLingerIsCutShort(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	s := open(t, Config{Linger: time.Hour})
	within := func(what string, f func()) {
		t.Helper()
		done := make(chan struct{})
		go func() { f(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second): // a failure's bound, not a synchronisation
			t.Fatalf("%s still waits for the hour's linger", what)
		}
	}
	// the committer holds a record and lingers; a Flush wakes it
	s.Add(rec("a", "crm", "success", time.Now()))
	runtime.Gosched()
	within("a Flush of one lingering record", s.Flush)
	// a commit's worth queued wakes it without a Flush
	s.Add(rec("b", "crm", "success", time.Now()))
	runtime.Gosched()
	for i := range maxCommit {
		s.Add(rec(fmt.Sprint("c", i), "crm", "success", time.Now()))
	}
	within("a commit's worth of records", func() {
		for s.Stats().Written < maxCommit {
			runtime.Gosched()
		}
	})
	// from idle: more than a commit's worth queued before the committer
	// runs, then a Flush whose wake-up is lost (one is pending already,
	// and taken by the first linger): it must not linger between commits
	within("a Flush", s.Flush)
	for i := range maxCommit + maxCommit/2 {
		s.Add(rec(fmt.Sprint("d", i), "crm", "success", time.Now()))
	}
	within("a Flush behind more than a commit's worth", s.Flush)
	if st := s.Stats(); st.Written != 2+maxCommit+maxCommit+maxCommit/2 {
		t.Fatalf("written %d", st.Written)
	}
}

// A selective query stops after its scan budget with a cursor to go on
// from, and the pages together still find every match.
func TestScanBudget(t *testing.T) {
	s := open(t, Config{ScanBudget: 50})
	for i := range 500 {
		o := "success"
		if i%100 == 0 {
			o = "failure"
		}
		s.Add(rec(fmt.Sprint(i), "crm", o, time.Now()))
	}
	s.Flush()
	p, err := s.List(context.Background(), Query{Outcome: "failure"})
	if err != nil || len(p.Records) > 1 || p.Next == "" {
		t.Fatalf("first page: %d records, next %q, %v", len(p.Records), p.Next, err)
	}
	if got := all(t, s, Query{Outcome: "failure"}); strings.Join(got, ",") != "400,300,200,100,0" {
		t.Fatalf("failures = %v", got)
	}
}

// A batch whose request failed part-way, or that holds only duplicates,
// still completes.
func TestBatchWithdrawAndEmpty(t *testing.T) {
	var done []string
	s := open(t, Config{OnBatchDone: func(b Batch) { done = append(done, b.ID) }})
	if err := s.Begin(Batch{ID: "E"}, nil, ""); err != nil {
		t.Fatal(err)
	}
	if b, _, _ := s.Batch("E"); !b.Done {
		t.Fatalf("empty batch = %+v", b)
	}
	if err := s.Begin(Batch{ID: "P"}, []string{"a", "b", "c"}, ""); err != nil {
		t.Fatal(err)
	}
	s.Add(rec("a", "crm", "success", time.Now()))
	s.Flush()
	if err := s.Withdraw("P", []string{"b", "c"}); err != nil {
		t.Fatal(err)
	}
	b, _, _ := s.Batch("P")
	if !b.Done || b.Total != 1 || b.State["done"] != 1 || b.State["queued"] != 0 {
		t.Fatalf("batch = %+v", b)
	}
	if strings.Join(done, ",") != "P" {
		t.Fatalf("OnBatchDone for %v", done)
	}
}

// TestCloseWhileWriting: writers (and the committer's own OnBatchDone)
// keep queueing while the store closes: every op is committed or counted
// dropped, nothing panics or races (run with -race).
func TestCloseWhileWriting(t *testing.T) {
	var s *Store
	s = open(t, Config{Linger: time.Millisecond, OnBatchDone: func(b Batch) { s.Notified(b.ID) }})
	var wg sync.WaitGroup
	var sent [4]int
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, i)
				if err := s.Begin(Batch{ID: "b" + id}, []string{id}, ""); err != nil {
					return // closed
				}
				s.Add(rec(id, "crm", "success", time.Now()))
				sent[w]++
			}
		})
	}
	for s.Stats().Written < 200 {
		s.Flush()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	s.Flush() // after Close: returns
	st := s.Stats()
	total := uint64(sent[0] + sent[1] + sent[2] + sent[3])
	if st.Written+st.Dropped < total {
		t.Fatalf("%d records sent, %d written, %d dropped", total, st.Written, st.Dropped)
	}
}

// TestPruneLeavesNothing: pruning by age takes pruneBatch records a
// transaction and, once every record is past the age, leaves no record, no
// id or batch index entry and no bytes counted.
func TestPruneLeavesNothing(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	s := open(t, Config{Now: c.now, MaxAge: time.Hour, Linger: time.Hour})
	const n = 2*pruneBatch + 1000
	for i := range n {
		r := rec(fmt.Sprintf("lead%06d", i), "crm", "success", c.now())
		if i%2 == 0 {
			r.Batch = fmt.Sprintf("batch%d", i%3)
		}
		s.Add(r)
		if i%4000 == 3999 {
			s.Flush()
		}
	}
	s.Flush()
	if st := s.Stats(); st.Written != n || st.Bytes == 0 {
		t.Fatalf("stats after writing = %+v", st)
	}
	c.add(2 * time.Hour)
	more, err := s.pruneRecords(c.now().Add(-time.Hour))
	if err != nil || !more || s.Stats().Pruned != pruneBatch {
		t.Fatalf("one pruning transaction: more %v, err %v, stats %+v", more, err, s.Stats())
	}
	s.Prune()
	if st := s.Stats(); st.Pruned != n || st.Bytes != 0 {
		t.Fatalf("stats after pruning all = %+v", st)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bRec, bID, bBx} {
			if k, _ := tx.Bucket(b).Cursor().First(); k != nil {
				t.Errorf("bucket %s still holds %q", b, k)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSizePruningLeavesBatchesToTheSchedule: a store over its budget prunes
// its oldest records at each commit, but looks for expired batches (which
// means reading them all) only every pruneEvery.
func TestSizePruningLeavesBatchesToTheSchedule(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	s := open(t, Config{Now: c.now, MaxAge: time.Hour, MaxBytes: 4 << 20, Linger: time.Hour})
	s.Add(rec("first", "crm", "success", c.now()))
	s.Flush() // the first commit prunes on schedule: the next is due in pruneEvery
	c.add(-2 * time.Hour)
	if err := s.Begin(Batch{ID: "old"}, []string{"o1"}, ""); err != nil { // expired
		t.Fatal(err)
	}
	c.add(2 * time.Hour)
	reason := strings.Repeat("r", 400)
	for i := range 6000 { // ~3 MiB: over the budget (1 MiB)
		r := rec(fmt.Sprintf("lead%06d", i), "crm", "failure", c.now())
		r.Reason = reason
		s.Add(r)
		if i%1000 == 999 {
			s.Flush()
		}
	}
	if st := s.Stats(); st.Pruned == 0 || st.Bytes > s.budget() {
		t.Fatalf("the records over the budget were not pruned: %+v", st)
	}
	if _, ok, _ := s.Batch("old"); !ok {
		t.Fatal("the expired batch was pruned before its schedule")
	}
	c.add(s.pruneEvery())
	s.Add(rec("last", "crm", "success", c.now()))
	s.Flush()
	if _, ok, _ := s.Batch("old"); ok {
		t.Fatal("the expired batch is still there on schedule")
	}
}
