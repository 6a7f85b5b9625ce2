package source_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/plumbhq/plumb/internal/sandbox"
	"github.com/plumbhq/plumb/internal/source"
)

// TestKillChild is the sync TestKillResume runs in a child process (and
// kills); it does nothing in a normal test run.
func TestKillChild(t *testing.T) {
	url, state := os.Getenv("PLUMB_KILL_SANDBOX"), os.Getenv("PLUMB_KILL_STATE")
	if url == "" {
		t.Skip("run by TestKillResume")
	}
	h := &harness{t: t, url: url, file: example, state: state}
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
		child  *exec.Cmd
		killed bool
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if child != nil && !killed && r.URL.Path == "/v1/leads" && r.URL.Query().Get("page") == "4" {
			killed = true
			_ = child.Process.Kill() // SIGKILL: no defer, no flush, no goodbye
			mu.Unlock()
			http.Error(w, "gone", http.StatusServiceUnavailable)
			return
		}
		mu.Unlock()
		sb.ServeHTTP(w, r)
	}))
	defer srv.Close()
	state := filepath.Join(t.TempDir(), "sync.db")

	cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PLUMB_KILL_SANDBOX="+srv.URL, "PLUMB_KILL_STATE="+state)
	mu.Lock()
	child = cmd
	if err := cmd.Start(); err != nil {
		mu.Unlock()
		t.Fatal(err)
	}
	mu.Unlock()
	err := cmd.Wait()
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
