package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// pageSz is the page size bbolt gives new files.
var pageSz = os.Getpagesize()

// goodCache writes a cache file with n entries (enough for branch pages)
// and returns its bytes.
func goodCache(t *testing.T, path string, n int) []byte {
	t.Helper()
	s, err := OpenBolt(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// in several transactions, so the file has free pages too
	for lo := 0; lo < n; lo += n / 4 {
		err := s.db.Update(func(tx *bolt.Tx) error {
			for i := lo; i < min(lo+n/4, n); i++ {
				v := fmt.Sprintf(`{"values":{"v":"%s%d"}}`, strings.Repeat("x", 40), i)
				if err := tx.Bucket(bucket).Put(fmt.Appendf(nil, "plan/step/%06d", i), []byte(v)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pagesOf returns the ids of the pages in use in the file at path with
// the given type flags, in order.
func pagesOf(t *testing.T, path string, flags uint16) []int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	v := &boltVerifier{f: f, size: fi.Size(), seen: map[uint64]bool{}}
	if err := v.verify(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var ids []int
	for id := range v.seen {
		if binary.NativeEndian.Uint16(b[int(id)*pageSz+8:]) == flags {
			ids = append(ids, int(id))
		}
	}
	slices.Sort(ids)
	return ids
}

// useAll reads and writes through s; with a damaged file that was not
// caught at open this panics or faults.
func useAll(s *Bolt, n int) {
	ctx := context.Background()
	for i := range n {
		s.Get(ctx, fmt.Sprintf("plan/step/%06d", i))
	}
	for i := range 3 {
		s.Put(ctx, fmt.Sprintf("plan/new/%06d", i), Entry{Values: map[string]any{"i": i}})
		s.Put(ctx, fmt.Sprintf("plan/step/%06d", i*100), Entry{Values: map[string]any{"i": i}})
	}
}

// TestBoltCorruptFileIsAnError reproduces issue 13.5: bytes flipped in a
// real cache file made bbolt panic (`invalid page type`, `invalid freelist
// page`) or fault (a page id outside the mapped file: `fatal error:
// fault`, which no recover catches) at open or at the first read. Each
// damaged file must be a *CorruptError naming the file, the file left
// alone.
func TestBoltCorruptFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	goodPath := filepath.Join(dir, "good.db")
	good := goodCache(t, goodPath, 3000)
	ne := binary.NativeEndian
	branches, leaves, freelists := pagesOf(t, goodPath, 0x01), pagesOf(t, goodPath, 0x02), pagesOf(t, goodPath, 0x10)
	if len(branches) == 0 || len(leaves) < 2 || len(freelists) == 0 {
		t.Fatalf("test file has %d branch, %d leaf, %d freelist pages", len(branches), len(leaves), len(freelists))
	}
	cases := map[string]func(b []byte){
		"leaf page type flipped":     func(b []byte) { b[leaves[1]*pageSz+8] ^= 0xff },
		"branch page type flipped":   func(b []byte) { b[branches[0]*pageSz+8] ^= 0xff },
		"freelist page type flipped": func(b []byte) { b[freelists[0]*pageSz+8] ^= 0xff },
		// a child page id far outside the file: bbolt reads it through
		// its memory map and the process dies with `fatal error: fault`
		"branch child out of the file": func(b []byte) { ne.PutUint64(b[branches[0]*pageSz+16+8:], 1<<40) },
		"branch child beyond the mmap": func(b []byte) { ne.PutUint64(b[branches[0]*pageSz+16+8:], uint64(len(b)/pageSz+100)) },
		"leaf element past its page":   func(b []byte) { ne.PutUint32(b[leaves[1]*pageSz+16+4:], 1<<30) },
		"overflow past the end":        func(b []byte) { ne.PutUint32(b[leaves[1]*pageSz+12:], 1<<20) },
		"freelist count too large":     func(b []byte) { ne.PutUint16(b[freelists[0]*pageSz+10:], 0xfff0) },
		"not a bbolt file":             func(b []byte) { copy(b, bytes.Repeat([]byte("id,email\n"), 1024)) },
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cache.db")
			b := bytes.Clone(good)
			damage(b)
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := OpenBolt(path, time.Second)
			if err == nil {
				useAll(s, 3000)
				s.Close()
				t.Fatal("a damaged file opened without error")
			}
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Path != path || !strings.Contains(err.Error(), "cache file "+path+" is damaged: ") {
				t.Fatalf("error %T %v, want a CorruptError naming %s", err, err, path)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, b) {
				t.Error("the damaged file was changed")
			}

			// moved aside on request, and a fresh cache starts
			s, err = OpenBoltWith(path, BoltOptions{Timeout: time.Second, MoveCorrupt: true})
			if err != nil {
				t.Fatalf("MoveCorrupt: %v", err)
			}
			defer s.Close()
			moved := s.MovedTo()
			if !strings.HasPrefix(moved, path+".corrupt-") {
				t.Fatalf("moved to %q", moved)
			}
			if kept, _ := os.ReadFile(moved); !bytes.Equal(kept, b) {
				t.Error("the moved file is not the damaged file")
			}
			if _, found, err := s.Get(context.Background(), "plan/step/000001"); found || err != nil {
				t.Errorf("fresh cache: found=%v err=%v", found, err)
			}
			useAll(s, 10)
		})
	}
}

// TestBoltFlippedBytesNeverCrash flips bytes all over the used pages of a
// real file: every variant must either open and then serve reads and
// writes, or be a *CorruptError — never a panic or a fault.
func TestBoltFlippedBytesNeverCrash(t *testing.T) {
	dir := t.TempDir()
	goodPath := filepath.Join(dir, "good.db")
	good := goodCache(t, goodPath, 800)
	pages := append(append(pagesOf(t, goodPath, 0x01), pagesOf(t, goodPath, 0x02)...), pagesOf(t, goodPath, 0x10)...)
	opened, corrupt := 0, 0
	for _, id := range pages {
		for _, off := range []int{8, 9, 10, 11, 12, 14, 16, 20, 24, 28, 40, 100} {
			b := bytes.Clone(good)
			b[id*pageSz+off] ^= 0xa5
			path := filepath.Join(dir, fmt.Sprintf("p%d-%d.db", id, off))
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := OpenBolt(path, time.Second)
			var ce *CorruptError
			switch {
			case err == nil:
				opened++
				useAll(s, 800)
				s.Close()
			case errors.As(err, &ce):
				corrupt++
			default:
				t.Errorf("page %d offset %d: %v", id, off, err)
			}
			os.Remove(path)
		}
	}
	t.Logf("%d damaged files: %d reported as damaged, %d still usable", opened+corrupt, corrupt, opened)
	if corrupt == 0 {
		t.Error("no damage detected")
	}
}

// TestBoltFileRemovedWhileOpen reproduces issue 13.14: a cache file removed
// during a run kept taking writes into the deleted file, silently.
func TestBoltFileRemovedWhileOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	s, err := OpenBolt(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Put(ctx, "a", Entry{Values: map[string]any{"v": 1}}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	err = s.Put(ctx, "b", Entry{Values: map[string]any{"v": 2}})
	if !errors.Is(err, ErrFileGone) || !strings.Contains(err.Error(), path) {
		t.Fatalf("put after removal: %v", err)
	}
	// replaced by another file: the same
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "c", Entry{Values: map[string]any{"v": 3}}); !errors.Is(err, ErrFileGone) {
		t.Fatalf("put after replacement: %v", err)
	}
	if _, found, err := s.Get(ctx, "b"); !found || err != nil {
		t.Fatalf("this process still reads its answers: %v %v", found, err)
	}
}
