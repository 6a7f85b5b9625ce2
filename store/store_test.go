package store

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func testStore(t *testing.T, s Store) {
	ctx := context.Background()
	if _, found, err := s.Get(ctx, "k"); found || err != nil {
		t.Fatalf("empty store: %v %v", found, err)
	}
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	if err := s.Put(ctx, "k", Entry{Values: map[string]any{"score": 85.0, "ok": true}, At: at}); err != nil {
		t.Fatal(err)
	}
	e, found, err := s.Get(ctx, "k")
	if err != nil || !found || e.Values["score"] != 85.0 || e.Values["ok"] != true || !e.At.Equal(at) {
		t.Fatalf("got %+v %v %v", e, found, err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Put(ctx, "k", Entry{Values: map[string]any{"i": float64(i)}, At: at})
			s.Get(ctx, "k")
		}()
	}
	wg.Wait()
}

func TestMemory(t *testing.T) { testStore(t, NewMemory()) }

func TestBoltPersistsAndLocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	s, err := OpenBolt(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	testStore(t, s)
	s.Put(context.Background(), "persist", Entry{Values: map[string]any{"v": "yesterday"}})
	// a second open while the first holds the lock times out with a clear error
	if _, err := OpenBolt(path, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("second open: %v", err)
	}
	s.Close()
	s2, err := OpenBolt(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	e, found, err := s2.Get(context.Background(), "persist")
	if err != nil || !found || e.Values["v"] != "yesterday" {
		t.Fatalf("after reopen: %+v %v %v", e, found, err)
	}
}
