package cli

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/sandbox"
)

// TestSyncInterruptFinishesPage: Ctrl-C during page 2 lets page 2's
// records finish, saves its state and exits 130 without asking for page 3;
// the next sync goes on at page 3.
func TestSyncInterruptFinishesPage(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT to a child on Windows")
	}
	sb := sandbox.New()
	ac := sb.ActuallyCare()
	held := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// lead 30 (page 2) is written back only once the test has sent
		// the interrupt
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "-000000000030") {
			once.Do(func() { close(held) })
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		sb.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close) // after the child is killed: lead 30 may be held
	example, _ := filepath.Abs(filepath.Join("..", "..", "..", "..", "examples", "actuallycare-sync", "integration.yaml"))
	state := filepath.Join(t.TempDir(), "ac.db")
	args := []string{"sync", "--set", "base_url=" + srv.URL, "--set", "api_key=" + sandbox.APIKey, "--set", "crm_key=" + sandbox.APIKey,
		"--state", state, "--output", "ndjson", example}
	c := hardStart(t, false, args...)
	select {
	case <-held:
	case <-c.Exited():
		t.Fatalf("plumb ended before lead 30: exit %d\n%s", c.ExitCode(), c.Stderr)
	case <-time.After(60 * time.Second):
		t.Fatal("lead 30 never reached the partner")
	}
	if err := c.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	// lead 30 goes on once plumb says it saw the interrupt: page 2 is
	// then the last
	c.Stderr.Await(t, 60*time.Second, "plumb's acknowledgement of the interrupt", func(line string) bool {
		return strings.Contains(line, "sync: stopping after the page")
	})
	close(release)
	hardWithin(t, c.Exited(), 60*time.Second, "plumb to exit after Ctrl-C")
	if code := c.ExitCode(); code != ExitInterrupt {
		t.Fatalf("exit code %d, want %d\n%s", code, ExitInterrupt, c.Stderr)
	}
	stdout, stderr := c.Stdout, c.Stderr
	if n := strings.Count(stdout.String(), "\n"); n != 50 {
		t.Errorf("%d results, want the 50 leads of pages 1 and 2", n)
	}
	if !strings.Contains(stderr.String(), "sync: stopped: 2 pages, 50 records, 0 errors") || !strings.Contains(stderr.String(), "next sync goes on at page 3") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
	if n := len(ac.PageQueries()); n != 2 {
		t.Errorf("%d page requests, want 2", n)
	}
	out, errs, code := hardRun(t, args...)
	if code != ExitOK || strings.Count(out, "\n") != 82 || !strings.Contains(errs, "sync: complete: 4 pages, 82 records") {
		t.Fatalf("resumed sync: exit %d, %d results\n%s", code, strings.Count(out, "\n"), errs)
	}
	if q := ac.PageQueries(); q[2].Get("page") != "3" {
		t.Errorf("the resumed sync asked for page %s first", q[2].Get("page"))
	}
	for email, n := range ac.Creates() {
		if n > 1 {
			t.Errorf("%s created %d times", email, n)
		}
	}
}
