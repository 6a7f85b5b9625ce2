package syncstate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/queue"
	"github.com/plumbhq/plumb/internal/queue/natstest"
	"github.com/plumbhq/plumb/internal/syncstate"
	"github.com/plumbhq/plumb/source"
)

func openStore(t *testing.T) *syncstate.Store {
	t.Helper()
	node := natstest.StartServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	q, err := queue.Open(ctx, queue.Config{URLs: []string{node.URL}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	kv, err := q.KV(ctx, "syncstate", 0)
	if err != nil {
		t.Fatal(err)
	}
	return syncstate.New(kv)
}

const key = "acme/source"

// TestSessionFencing: a sync writes the state only at the revision it
// read; a second runner that loaded and saved since makes the first one's
// next save fail with ErrStateConflict instead of overwriting it.
func TestSessionFencing(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	a, b := s.Session(), s.Session()
	if _, err := a.Load(ctx, key); err != nil {
		t.Fatal(err)
	}
	st := source.State{Cursor: "c1", Resume: &source.Resume{Pages: 1}}
	if err := a.Commit(ctx, key, source.Commit{State: &st}); err != nil {
		t.Fatalf("first save: %v", err)
	}
	st.Resume.Pages = 2
	if err := a.Commit(ctx, key, source.Commit{State: &st}); err != nil {
		t.Fatalf("second save: %v", err)
	}
	// b takes over (as after a lease expired)
	got, err := b.Load(ctx, key)
	if err != nil || got.Resume == nil || got.Resume.Pages != 2 || got.Cursor != "c1" {
		t.Fatalf("b loads %+v, %v", got, err)
	}
	got.Resume.Pages = 3
	if err := b.Commit(ctx, key, source.Commit{State: &got}); err != nil {
		t.Fatal(err)
	}
	st.Resume.Pages = 9
	if err := a.Commit(ctx, key, source.Commit{State: &st}); !errors.Is(err, source.ErrStateConflict) {
		t.Fatalf("the old runner's save: %v, want ErrStateConflict", err)
	}
	if got, _ := s.Load(ctx, key); got.Resume.Pages != 3 {
		t.Fatalf("state %+v: overwritten by the old runner", got.Resume)
	}
	// a fresh source: two sessions both create it, the second fails
	c, d := s.Session(), s.Session()
	_, _ = c.Load(ctx, "other")
	_, _ = d.Load(ctx, "other")
	if err := c.Commit(ctx, "other", source.Commit{State: &source.State{}}); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(ctx, "other", source.Commit{State: &source.State{}}); !errors.Is(err, source.ErrStateConflict) {
		t.Fatalf("second create: %v", err)
	}
}

// TestRetryList: entries are added, counted, paged in id order, updated
// as failed again (first failure kept, attempts counted) and removed;
// Reset forgets the state and the list.
func TestRetryList(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	ses := s.Session()
	if _, err := ses.Load(ctx, key); err != nil {
		t.Fatal(err)
	}
	t0, t1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	failed := map[string]source.Failed{}
	for i := range 7 {
		failed[fmt.Sprintf("key:%d/é", i)] = source.Failed{Record: json.RawMessage(fmt.Sprintf(`{"id":%d}`, i)), Reason: "down", Attempts: 1, First: t0, Last: t0}
	}
	if err := ses.Commit(ctx, key, source.Commit{State: &source.State{Cursor: 1}, Failed: failed}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RetryCount(ctx, key); n != 7 || err != nil {
		t.Fatalf("count %d, %v", n, err)
	}
	var ids []string
	for after := ""; ; {
		page, err := s.Retries(ctx, key, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			ids = append(ids, r.ID)
		}
		after = page[len(page)-1].ID
	}
	if fmt.Sprint(ids) != "[key:0/é key:1/é key:2/é key:3/é key:4/é key:5/é key:6/é]" {
		t.Fatalf("paged ids %v", ids)
	}
	again := map[string]source.Failed{"key:3/é": {Reason: "still down", Attempts: 1, First: t1, Last: t1}}
	if err := ses.Commit(ctx, key, source.Commit{Failed: again, Done: []string{"key:0/é", "key:1/é"}}); err != nil {
		t.Fatal(err)
	}
	page, err := s.Retries(ctx, key, "key:2/é", 1)
	if err != nil || len(page) != 1 {
		t.Fatalf("%v %v", page, err)
	}
	if r := page[0]; r.ID != "key:3/é" || r.Attempts != 2 || !r.First.Equal(t0) || !r.Last.Equal(t1) || string(r.Record) != `{"id":3}` || r.Reason != "still down" {
		t.Fatalf("failed again: %+v", r)
	}
	if n, _ := s.RetryCount(ctx, key); n != 5 {
		t.Fatalf("after removing two: %d", n)
	}
	if err := ses.Reset(ctx, key); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.RetryCount(ctx, key); n != 0 {
		t.Fatalf("after reset: %d entries", n)
	}
	if st, _ := s.Load(ctx, key); st.Cursor != nil {
		t.Fatalf("after reset: %+v", st)
	}
	if err := ses.Commit(ctx, key, source.Commit{State: &source.State{Cursor: 2}}); err != nil {
		t.Fatalf("saving after a reset: %v", err)
	}
}
