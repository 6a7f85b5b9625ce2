package source_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/childtest"
	"github.com/plumbhq/plumb/internal/sandbox"
	"github.com/plumbhq/plumb/source"
)

// TestKillChild is the sync TestKillResume runs in a child process (and
// kills); it does nothing in a normal test run.
func TestKillChild(t *testing.T) {
	args := childtest.Entry(t, "sync") // run by TestKillResume
	h := &harness{t: t, url: args[0], file: example, state: args[1]}
	h.sync(source.Options{})
	t.Fatal("the child sync was not killed")
}

// TestKillResume: a sync killed (SIGKILL) when it asks for page 4 goes on,
// in the next sync, from page 3 or 4, and the CRM gets no duplicate:
// the state of a page is saved only once its leads all ran, and every lead
// is looked up before it is created.
func TestKillResume(t *testing.T) {
	sb := sandbox.New()
	ac := sb.ActuallyCare()
	var (
		mu     sync.Mutex
		child  *childtest.Child
		killed bool
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if child != nil && !killed && r.URL.Path == "/v1/leads" && r.URL.Query().Get("page") == "4" {
			killed = true
			_ = child.Signal(syscall.SIGKILL) // no defer, no flush, no goodbye
			mu.Unlock()
			http.Error(w, "gone", http.StatusServiceUnavailable)
			return
		}
		mu.Unlock()
		sb.ServeHTTP(w, r)
	}))
	defer srv.Close()
	state := filepath.Join(t.TempDir(), "sync.db")

	func() {
		mu.Lock()
		defer mu.Unlock()
		child = childtest.Start(t, childtest.Options{Role: "sync", Test: "TestKillChild", Args: []string{srv.URL, state}})
	}()
	err := child.Wait(t, 5*time.Minute)
	mu.Lock()
	wasKilled := killed
	mu.Unlock()
	if !wasKilled {
		t.Fatalf("the child sync ended before page 4 (%v)", err)
	}
	before := len(ac.PageQueries())
	if before != 3 {
		t.Fatalf("the killed sync fetched %d pages, want 3", before)
	}
	contactsAtKill := ac.Contacts()

	h := &harness{t: t, sb: sb, ac: ac, srv: srv, url: srv.URL, file: example, state: state}
	out := h.sync(source.Options{})
	q := ac.PageQueries()
	first := q[before].Get("page")
	if first != "3" && first != "4" {
		t.Errorf("the re-run started at page %s, want 3 or 4", first)
	}
	if out.rep.Ended != "complete" {
		t.Errorf("re-run: %+v", out.rep)
	}
	t.Logf("killed with %d contacts in the CRM; re-run started at page %s and ran %d leads", contactsAtKill, first, len(out.results))
	if n := ac.Contacts(); n != 131 {
		t.Errorf("CRM holds %d contacts, want 131", n)
	}
	h.noDuplicates()
	for i := 1; i <= sandbox.ActuallyCareLeads; i++ {
		if ac.Status(i) != "synced" && i != 77 { // 77: the CRM refuses its address
			t.Errorf("lead %d has status %q after the re-run", i, ac.Status(i))
		}
	}
}
