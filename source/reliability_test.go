package source_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/source"
)

// TestFlushBeforeSave: the output is flushed before each save of the
// state, so a crash never leaves the state ahead of the output: whenever
// Flush is called, the records the state file says are saved were all
// flushed by an earlier Flush. After the sync, every record was flushed.
func TestFlushBeforeSave(t *testing.T) {
	h := newHarness(t)
	r, spec := h.bind()
	st, err := source.OpenStore(h.state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	emitted, flushed, flushes := 0, 0, 0
	opt := source.Options{Flush: func() error {
		saved, err := st.Load(context.Background(), spec.Key)
		if err != nil {
			return err
		}
		if n := int(saved.Last.Records); n > flushed {
			t.Errorf("flush %d: the state says %d records are saved, %d were flushed", flushes+1, n, flushed)
		}
		flushed, flushes = emitted, flushes+1
		return nil
	}}
	rep, err := source.Sync(context.Background(), r, spec, st, opt, func(source.Record, *engine.Result) error {
		emitted++
		return nil
	})
	if err != nil || rep.Ended != "complete" {
		t.Fatalf("sync: %v, %+v", err, rep)
	}
	if flushed != 132 || flushes < 6 {
		t.Errorf("%d of 132 records flushed in %d flushes (6 pages)", flushed, flushes)
	}
}

// TestFlushErrorSavesNothing: when the output cannot be flushed, the sync
// ends in error and saves no page whose records were not flushed.
func TestFlushErrorSavesNothing(t *testing.T) {
	h := newHarness(t)
	r, spec := h.bind()
	st, err := source.OpenStore(h.state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	full := errors.New("no space left on device")
	calls := 0
	opt := source.Options{Flush: func() error {
		if calls++; calls == 3 { // the retry list's save, page 1's, then page 2's
			return full
		}
		return nil
	}}
	rep, err := source.Sync(context.Background(), r, spec, st, opt, func(source.Record, *engine.Result) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if rep.Ended != "error" || !errors.Is(rep.Err, full) || rep.Committed != 1 {
		t.Fatalf("report %+v (%v), want an error after page 1 was saved", rep, rep.Err)
	}
	if s, _ := st.Load(context.Background(), spec.Key); s.Resume == nil || s.Resume.Pages != 1 || s.Last.Records != 25 {
		t.Errorf("saved state %+v, want page 1 only", s)
	}
}

// TestStatusWhileSyncing: the state can be read while a sync holds the
// state file (issue 26: "state file is in use"), from the sync's status
// snapshot: as of its last save. Once the sync has closed the file, the
// state file itself is read and the snapshot is gone.
func TestStatusWhileSyncing(t *testing.T) {
	h := newHarness(t)
	r, spec := h.bind()
	st, err := source.OpenStore(h.state)
	if err != nil {
		t.Fatal(err)
	}
	held, release := make(chan struct{}), make(chan struct{})
	done := make(chan *source.Report, 1)
	go func() {
		defer st.Close()
		rep, _ := source.Sync(context.Background(), r, spec, st, source.Options{}, func(rec source.Record, _ *engine.Result) error {
			if rec.Index == 26 { // page 1 is saved before page 2's first result comes
				close(held)
				<-release
			}
			return nil
		})
		done <- rep
	}()
	select {
	case <-held:
	case rep := <-done:
		t.Fatalf("the sync ended first: %+v", rep)
	}
	status, err := source.ReadStatus(h.state, spec.Key)
	close(release)
	if err != nil {
		t.Fatalf("status while syncing: %v", err)
	}
	if !status.Live || !status.Running || status.PID != os.Getpid() {
		t.Errorf("status %+v, want the running sync's snapshot", status)
	}
	if s := status.State; s.Last.Pages != 1 || s.Last.Records != 25 || s.Resume == nil || s.Resume.Pages != 1 || s.Ended != "" {
		t.Errorf("state while syncing %+v, want page 1 saved and the sync running", s)
	}
	if rep := <-done; rep == nil || rep.Ended != "complete" {
		t.Fatalf("sync: %+v", rep)
	}
	status, err = source.ReadStatus(h.state, spec.Key)
	if err != nil || status.Live || status.State.Ended != "complete" || status.State.Last.Pages != 6 {
		t.Errorf("status after the sync: %+v (%v)", status, err)
	}
	if _, err := os.Stat(source.StatusPath(h.state)); !os.IsNotExist(err) {
		t.Errorf("the status snapshot outlived the sync: %v", err)
	}
}

// TestRefusedLinkSkipped: a next link to another host is not followed;
// the error names the page, the link and the page it came from, and every
// sync tries it again (the rest is kept) until the operator skips it. With
// link pagination, skipping starts over from page one at the saved cursor:
// the cursor, the totals and the retry list survive.
func TestRefusedLinkSkipped(t *testing.T) {
	h := newHarness(t).withSource(`source:
  request:
    url: "{{settings.base_url}}/v1/leads?limit=25&updated_since={{state.cursor}}"
    headers: { X-API-Key: "{{settings.api_key}}" }
  records: { json: data.leads }
  paginate: { type: link }
  incremental: { cursor_field: updatedAt, start: "2025-01-01T00:00:00Z" }
  key: id
`)
	elsewhere := httptest.NewServer(http.NotFoundHandler())
	defer elsewhere.Close()
	var foreign atomic.Bool
	foreign.Store(true)
	h.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if foreign.Load() && r.URL.Path == "/v1/leads" && r.URL.Query().Get("cursor") == "c_p" {
			r.Host = strings.TrimPrefix(elsewhere.URL, "http://") // page 2 links to another host
		}
		h.sb.ServeHTTP(w, r)
	})
	h.ac.SetCRMDown("lead003@actuallycare.example") // one record in the retry list
	clock := engine.WithClock(noWait{})
	out := h.sync(source.Options{}, clock)
	err := out.rep.Err
	if out.rep.Ended != "error" || !errors.Is(err, engine.ErrNextLink) || out.rep.Committed != 2 {
		t.Fatalf("first sync: %+v (%v)", out.rep, err)
	}
	for _, want := range []string{"page 3", "from page 2", elsewhere.URL + "/v1/leads?", "leaves the source's scheme, host and port"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	t.Logf("first sync: %v", err)
	cursor := out.rep.State.Cursor
	out = h.sync(source.Options{}, clock)
	if out.rep.Pages != 0 || !errors.Is(out.rep.Err, engine.ErrNextLink) || out.rep.Retried != 1 || out.rep.State.Resume == nil {
		t.Fatalf("second sync: %+v (%v), want the link tried again, and nothing lost", out.rep, out.rep.Err)
	}
	foreign.Store(false)
	h.ac.SetCRMDown()
	before := len(h.ac.PageQueries())
	out = h.sync(source.Options{SkipPage: true}, clock)
	if out.rep.Ended != "complete" || !out.rep.Restarted || out.rep.Skipped == nil || out.rep.Skipped.Pages != 2 {
		t.Fatalf("skipping sync: %+v (%v)", out.rep, out.rep.Err)
	}
	if q := h.ac.PageQueries()[before]; q.Get("updated_since") != cursor || q.Has("cursor") {
		t.Errorf("after the skip, the first page asked was %v, want page one since the saved cursor %v", q, cursor)
	}
	if out.rep.Retried != 1 || out.rep.Pending != 0 || out.rep.Records != 82 || out.rep.State.Total.Pages != 2+4 {
		t.Errorf("after the skip: %+v, want the retry list run, 82 new records and the totals kept", out.rep)
	}
	if _, err := h.syncErr(source.Options{SkipPage: true}); !errors.Is(err, source.ErrNothingToSkip) {
		t.Errorf("skipping with nothing unfinished: %v", err)
	}
}

// TestPageSkippedAndRestart: with page pagination, a page that fails at
// every sync can be skipped (the sync goes on at the page after it), or
// the sync restarted from page one at the saved cursor.
func TestPageSkippedAndRestart(t *testing.T) {
	for _, c := range []struct {
		name      string
		opt       source.Options
		firstPage string
		records   int
	}{
		{"skip", source.Options{SkipPage: true}, "4", 132 - 75},
		{"restart", source.Options{Restart: true}, "1", 132 - 50},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			var broken atomic.Bool
			broken.Store(true)
			h.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if broken.Load() && r.URL.Path == "/v1/leads" && r.URL.Query().Get("page") == "3" {
					http.Error(w, `{"error":"bad page"}`, http.StatusBadRequest)
					return
				}
				h.sb.ServeHTTP(w, r)
			})
			out := h.sync(source.Options{})
			if out.rep.Ended != "error" || out.rep.Committed != 2 {
				t.Fatalf("first sync: %+v (%v)", out.rep, out.rep.Err)
			}
			cursor := out.rep.State.Cursor
			broken.Store(c.name == "skip") // a skipped page is not asked again
			before := len(h.ac.PageQueries())
			out = h.sync(c.opt)
			q := h.ac.PageQueries()[before]
			if out.rep.Ended != "complete" || out.rep.Records != c.records || q.Get("page") != c.firstPage {
				t.Fatalf("%s: %+v (%v), first page asked %v", c.name, out.rep, out.rep.Err, q)
			}
			if c.name == "restart" && (q.Get("updated_since") != cursor || !out.rep.Restarted) {
				t.Errorf("restart asked for %v, want updated_since=%v", q, cursor)
			}
			if c.name == "skip" && (out.rep.Restarted || out.rep.Skipped == nil || fmt.Sprint(out.rep.Skipped.Page["number"]) != "3") {
				t.Errorf("skip: %+v, skipped %+v", out.rep, out.rep.Skipped)
			}
			h.noDuplicates()
		})
	}
}

// syncErr is sync for a sync expected not to start.
func (h *harness) syncErr(opt source.Options) (*source.Report, error) {
	h.t.Helper()
	r, spec := h.bind()
	st, err := source.OpenStore(h.state)
	if err != nil {
		h.t.Fatal(err)
	}
	defer st.Close()
	return source.Sync(context.Background(), r, spec, st, opt, func(source.Record, *engine.Result) error { return nil })
}
