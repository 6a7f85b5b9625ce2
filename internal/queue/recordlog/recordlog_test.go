package recordlog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func open(t *testing.T, opts Options) *Log {
	t.Helper()
	l, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func put(t *testing.T, l *Log, kv ...string) {
	t.Helper()
	var es []Entry
	for i := 0; i < len(kv); i += 2 {
		es = append(es, Entry{Key: kv[i], Value: []byte(kv[i+1])})
	}
	if _, err := l.Append(es); err != nil {
		t.Fatal(err)
	}
}

func want(t *testing.T, l *Log, key, value string) {
	t.Helper()
	v, _, err := l.Get(key)
	if err != nil || string(v) != value {
		t.Fatalf("Get(%q) = %q, %v; want %q", key, v, err, value)
	}
}

func wantNone(t *testing.T, l *Log, key string) {
	t.Helper()
	if v, _, err := l.Get(key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, v, err)
	}
}

func keyN(i int) string { return fmt.Sprintf("lead-%06d", i) }

func TestAppendGetNewestWins(t *testing.T) {
	l := open(t, Options{Dir: t.TempDir(), SegmentRecords: 3})
	put(t, l, "a", "1", "b", "2")
	put(t, l, "a", "3")
	put(t, l, "d", "5") // the segment held 3: sealed first
	want(t, l, "a", "3")
	want(t, l, "b", "2")
	want(t, l, "d", "5")
	wantNone(t, l, "c")
	_, v1, _ := l.Get("b")
	if r, ok := l.Recent("b"); ok {
		t.Errorf("Recent(b) = %d in a sealed segment, want only the active one's", r)
	}
	vers, err := l.Append([]Entry{{Key: "b", Value: []byte("4")}})
	must(t, err)
	_, v2, _ := l.Get("b")
	if v2 <= v1 || vers[0] != v2 {
		t.Errorf("version %d (appended as %d) after %d: want it to grow", v2, vers[0], v1)
	}
	if r, ok := l.Recent("b"); !ok || r != v2 {
		t.Errorf("Recent(b) = %d %v, want %d", r, ok, v2)
	}
	if _, ok := l.Recent("c"); ok {
		t.Error("Recent(c) found")
	}
}

// Many keys over many sealed segments, each found from disk, before and
// after a reopen; only the active segment's keys are held in memory.
func TestSealedSegmentsLookup(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, SegmentRecords: 500}
	l := open(t, opts)
	const n = 5000
	for i := 0; i < n; i += 50 {
		var es []Entry
		for j := i; j < i+50; j++ {
			es = append(es, Entry{Key: keyN(j), Value: []byte("v" + keyN(j))})
		}
		if _, err := l.Append(es); err != nil {
			t.Fatal(err)
		}
	}
	put(t, l, keyN(7), "newer") // a key again, in a later segment
	check := func(l *Log) {
		t.Helper()
		for i := range n {
			if i == 7 {
				continue
			}
			want(t, l, keyN(i), "v"+keyN(i))
		}
		want(t, l, keyN(7), "newer")
		wantNone(t, l, keyN(n))
		st := l.Stats()
		if st.Segments < n/500 || st.ActiveKeys > 500 || st.Frames != n+1 {
			t.Errorf("stats %+v: want >= %d segments, <= 500 keys in memory, %d frames", st, n/500, n+1)
		}
		// what stays in memory of the sealed segments: one hash per 256
		// keys of each (500 keys: 2)
		if st.Fence > 2*st.Segments {
			t.Errorf("%d fence entries in memory for %d segments of at most 500 keys, want at most 2 each", st.Fence, st.Segments)
		}
	}
	check(l)
	must(t, l.Close())
	check(open(t, opts))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Keys whose hashes collide are told apart by the key in the frame, in
// the active segment and in sealed ones (equal hashes spanning index
// blocks).
func TestHashCollisions(t *testing.T) {
	opts := Options{Dir: t.TempDir(), SegmentRecords: 600, hash: func(k string) uint64 { return uint64(len(k) % 2) }}
	l := open(t, opts)
	for i := range 1500 {
		put(t, l, keyN(i), "v"+keyN(i))
	}
	put(t, l, keyN(3), "again")
	for i := range 1500 {
		if i != 3 {
			want(t, l, keyN(i), "v"+keyN(i))
		}
	}
	want(t, l, keyN(3), "again")
	wantNone(t, l, "lead-x")
	must(t, l.Close())
	l = open(t, opts)
	want(t, l, keyN(1499), "v"+keyN(1499))
	want(t, l, keyN(3), "again")
}

// A crash in the middle of an append leaves a torn tail: Open cuts it off
// and keeps every whole frame; appends go on after it.
func TestTornTailCutAtOpen(t *testing.T) {
	dir := t.TempDir()
	l := open(t, Options{Dir: dir})
	put(t, l, "a", "1", "b", "2")
	must(t, l.Close())
	seg := filepath.Join(dir, "000000000001.seg")
	st, err := os.Stat(seg)
	must(t, err)
	for _, tail := range [][]byte{
		{0x30, 0, 0, 0, 1, 2}, // a head cut short
		append([]byte{0x30, 0, 0, 0, 9, 9, 9, 9}, bytes.Repeat([]byte("x"), 0x30)...), // a bad checksum
	} {
		f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
		must(t, err)
		_, err = f.Write(tail)
		must(t, err)
		must(t, f.Close())
		l = open(t, Options{Dir: dir})
		want(t, l, "a", "1")
		want(t, l, "b", "2")
		if st2, _ := os.Stat(seg); st2.Size() != st.Size() {
			t.Fatalf("size %d after Open, want the torn tail cut back to %d", st2.Size(), st.Size())
		}
		must(t, l.Close())
	}
	l = open(t, Options{Dir: dir})
	put(t, l, "c", "3")
	must(t, l.Close())
	l = open(t, Options{Dir: dir})
	want(t, l, "c", "3")
	want(t, l, "a", "1")
}

// A batch cut anywhere in the middle of its write (a power cut before its
// sync) reopens as the frames written whole before the cut: the batch's
// whole frames are kept, the torn one and everything after it are gone
// (the file is cut back to the last whole frame), and appends go on.
// Written reports where the batch is, before the sync.
func TestTornBatchReopens(t *testing.T) {
	src := t.TempDir()
	var path string
	var off, n int64
	l := open(t, Options{Dir: src, Written: func(es []Entry, p string, o, ln int64) {
		if len(es) == 3 {
			path, off, n = p, o, ln
		}
	}})
	put(t, l, "before", "kept")
	put(t, l, "a", "one", "b", "two-two", "c", "three-three-three")
	must(t, l.Close())
	full, err := os.ReadFile(path)
	must(t, err)
	if off <= 0 || off+n != int64(len(full)) {
		t.Fatalf("Written said %d bytes at %d; the file has %d", n, off, len(full))
	}
	frame := func(k, v string) int64 { return int64(frameHead + len(k) + len(v)) }
	ends := []int64{off + frame("a", "one"), off + frame("a", "one") + frame("b", "two-two"), off + n}
	for cut := off; cut < off+n; cut++ {
		dir := t.TempDir()
		seg := filepath.Join(dir, filepath.Base(path))
		must(t, os.WriteFile(seg, full[:cut], 0o600))
		l := open(t, Options{Dir: dir})
		want(t, l, "before", "kept")
		keep := off
		for i, kv := range [][2]string{{"a", "one"}, {"b", "two-two"}, {"c", "three-three-three"}} {
			if cut >= ends[i] {
				want(t, l, kv[0], kv[1])
				keep = ends[i]
			} else {
				wantNone(t, l, kv[0])
			}
		}
		if st, _ := os.Stat(seg); st.Size() != keep {
			t.Fatalf("cut at %d: %d bytes after Open, want %d (the whole frames)", cut, st.Size(), keep)
		}
		put(t, l, "after", "appended")
		must(t, l.Close())
		l = open(t, Options{Dir: dir})
		want(t, l, "after", "appended")
		want(t, l, "before", "kept")
		must(t, l.Close())
	}
	// a last frame written whole but with a byte of its value damaged
	// fails its checksum: it is cut like a torn one
	dir := t.TempDir()
	seg := filepath.Join(dir, filepath.Base(path))
	bad := bytes.Clone(full)
	bad[len(bad)-1] ^= 0x01
	must(t, os.WriteFile(seg, bad, 0o600))
	l = open(t, Options{Dir: dir})
	want(t, l, "b", "two-two")
	wantNone(t, l, "c")
	if st, _ := os.Stat(seg); st.Size() != ends[1] {
		t.Fatalf("a damaged last frame: %d bytes after Open, want %d", st.Size(), ends[1])
	}
}

// A sealed segment whose index is missing or damaged is indexed again.
func TestIndexRebuilt(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, SegmentRecords: 10}
	l := open(t, opts)
	for i := range 35 {
		put(t, l, keyN(i), "v")
	}
	must(t, l.Close())
	must(t, os.Remove(filepath.Join(dir, "000000000001.idx")))
	idx2 := filepath.Join(dir, "000000000002.idx")
	b, err := os.ReadFile(idx2)
	must(t, err)
	b[len(b)/2] ^= 0xff
	must(t, os.WriteFile(idx2, b, 0o600))
	l = open(t, opts)
	for i := range 35 {
		want(t, l, keyN(i), "v")
	}
}

// Segments whose newest value is older than the TTL are deleted, the
// active one included once it has aged.
func TestExpiry(t *testing.T) {
	c := newClock()
	dir := t.TempDir()
	l := open(t, Options{Dir: dir, TTL: 24 * time.Hour, Now: c.Now})
	put(t, l, "old", "1")
	c.add(2 * time.Hour) // past TTL/24: the next append starts a segment
	put(t, l, "newer", "2")
	c.add(23 * time.Hour) // "old" is 25h old, "newer" 23h
	must(t, l.Maintain())
	wantNone(t, l, "old")
	want(t, l, "newer", "2")
	c.add(2 * time.Hour)
	must(t, l.Maintain()) // the active one aged out: sealed...
	must(t, l.Maintain()) // ...and deleted
	wantNone(t, l, "newer")
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Errorf("segments left %v, want only the new active one", segs)
	}
}

// An append whose sync fails is not visible and leaves the segment as it
// was; the next one works.
func TestFailedSyncNotVisible(t *testing.T) {
	dir := t.TempDir()
	fail := true
	l := open(t, Options{Dir: dir, sync: func(f *os.File) error {
		if fail {
			return errors.New("disk on fire")
		}
		return f.Sync()
	}})
	if _, err := l.Append([]Entry{{Key: "a", Value: []byte("1")}}); err == nil {
		t.Fatal("append with a failing sync succeeded")
	}
	wantNone(t, l, "a")
	fail = false
	put(t, l, "b", "2")
	must(t, l.Close())
	l = open(t, Options{Dir: dir})
	wantNone(t, l, "a")
	want(t, l, "b", "2")
}

func TestScanNewestFirst(t *testing.T) {
	c := newClock()
	l := open(t, Options{Dir: t.TempDir(), SegmentRecords: 2, Now: c.Now})
	put(t, l, "a", "1")
	c.add(time.Second)
	since := c.Now()
	put(t, l, "b", "2", "c", "3")
	c.add(time.Second)
	put(t, l, "b", "4")
	var got []string
	must(t, l.Scan(since, func(k string, v []byte, _ time.Time) bool {
		got = append(got, k+"="+string(v))
		return true
	}))
	if fmt.Sprint(got) != "[b=4 c=3 b=2]" {
		t.Errorf("scan %v", got)
	}
	got = nil
	must(t, l.Scan(since, func(k string, v []byte, _ time.Time) bool {
		got = append(got, k)
		return false
	}))
	if len(got) != 1 {
		t.Errorf("scan went on after false: %v", got)
	}
}

func TestBadEntriesRefused(t *testing.T) {
	l := open(t, Options{Dir: t.TempDir()})
	for _, e := range []Entry{{Key: ""}, {Key: string(bytes.Repeat([]byte("k"), MaxKey+1))}} {
		if _, err := l.Append([]Entry{{Key: "ok", Value: []byte("1")}, e}); err == nil {
			t.Errorf("entry with a %d-byte key appended", len(e.Key))
		}
	}
	wantNone(t, l, "ok")
}

// Gets run while appends go on (go test -race).
func TestConcurrentGetAppend(t *testing.T) {
	l := open(t, Options{Dir: t.TempDir(), SegmentRecords: 100})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 1000 {
			put(t, l, keyN(i), "v")
		}
	})
	for range 2 {
		wg.Go(func() {
			for i := range 1000 {
				if _, _, err := l.Get(keyN(i)); err != nil && !errors.Is(err, ErrNotFound) {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i := range 1000 {
		want(t, l, keyN(i), "v")
	}
}
