package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/childtest"
	"github.com/plumbhq/plumb/internal/sandbox"
	"github.com/plumbhq/plumb/source"
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

// pagesIntegration syncs pages of 25 small records from a pagesPartner;
// its one step is skipped for every record (no request), so a result line
// is short and the output buffer holds many of them.
const pagesIntegration = `version: 1
name: pages
settings:
  base_url: { required: true }
  token: { secret: true, default: "" }
source:
  request: { url: "{{settings.base_url}}/records?page=%s&since={{state.cursor}}&token={{settings.token}}" }
  records: { json: records }
  paginate: { type: %s }
  incremental: { cursor_field: id }
  key: id
steps:
  - name: never
    when: lead.id < 0
    request: { url: "{{settings.base_url}}/never" }
`

// pagesPartner serves the records with ids since+1 to 25×pages (since:
// the query's since, the sync's state.cursor) in pages of 25, then an
// empty page, with a Link header to the next page (that repeats the
// query's token, as APIs that take their key in the URL do). Before answering a
// page it calls hook, if set, with the page number; a false return
// answers 503.
type pagesPartner struct {
	*httptest.Server
	pages int
	hook  func(page int) bool

	mu sync.Mutex
	// linkHost, when set, is the host of page linkFrom's next link
	linkHost string
	linkFrom int
}

func newPagesPartner(t *testing.T, pages int, hook func(int) bool) *pagesPartner {
	p := &pagesPartner{pages: pages, hook: hook}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

// linkElsewhere makes page from's next link point at host ("": none).
func (p *pagesPartner) linkElsewhere(host string, from int) {
	p.mu.Lock()
	p.linkHost, p.linkFrom = host, from
	p.mu.Unlock()
}

func (p *pagesPartner) serve(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("page"))
	since, _ := strconv.Atoi(r.URL.Query().Get("since"))
	if p.hook != nil && !p.hook(n) {
		http.Error(w, "gone", http.StatusServiceUnavailable)
		return
	}
	first, last := since+(n-1)*25+1, min(since+n*25, p.pages*25)
	var b strings.Builder
	b.WriteString(`{"records":[`)
	for i := first; n >= 1 && i <= last; i++ {
		if i > first {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d}`, i)
	}
	b.WriteString(`]}`)
	if n >= 1 && first <= last {
		host := r.Host
		p.mu.Lock()
		if p.linkHost != "" && n == p.linkFrom {
			host = p.linkHost
		}
		p.mu.Unlock()
		w.Header().Set("Link", fmt.Sprintf(`<http://%s/records?page=%d&since=%d&token=%s>; rel="next"`, host, n+1, since, r.URL.Query().Get("token")))
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, b.String())
}

// pagesFile writes pagesIntegration with page pagination (the page
// number in the URL) or link pagination.
func pagesFile(t *testing.T, paginate string) string {
	t.Helper()
	page := "{{page.number}}"
	if paginate == "link" {
		page = "1"
	}
	return hardWrite(t, filepath.Join(t.TempDir(), "pages.yaml"), fmt.Sprintf(pagesIntegration, page, paginate))
}

// plumbIn runs plumb with args in this process; a hang fails the test
// after a minute (a bound, not a timing).
func plumbIn(t *testing.T, args ...string) mainResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Main(args, strings.NewReader(""), &stdout, &stderr, func(string) (string, bool) { return "", false })
	}()
	code := hardWithin(t, done, time.Minute, "plumb "+strings.Join(args, " "))
	return mainResult{code, stdout.String(), stderr.String()}
}

// TestSyncChildToFile is plumb with its standard output a file (plumb
// sync --output ndjson > FILE), the child TestSyncKillKeepsOutput kills;
// it does nothing in a normal test run.
func TestSyncChildToFile(t *testing.T) {
	args := childtest.Entry(t, "sync-to-file")
	f, err := os.Create(args[0])
	if err != nil {
		t.Fatal(err)
	}
	os.Exit(Main(args[1:], os.Stdin, f, os.Stderr, os.LookupEnv))
}

// TestSyncKillKeepsOutput: plumb sync --output ndjson > FILE killed with
// SIGKILL mid-sync leaves in FILE every record of every page whose state
// was saved (issue 26: the file held nothing of the work done): the
// output is flushed before each save of the state.
func TestSyncKillKeepsOutput(t *testing.T) {
	var (
		mu    sync.Mutex
		child *childtest.Child
	)
	killed := make(chan struct{})
	p := newPagesPartner(t, 10, func(page int) bool {
		if page != 4 {
			return true
		}
		mu.Lock()
		defer mu.Unlock()
		select {
		case <-killed:
		default:
			_ = child.Signal(syscall.SIGKILL) // no defer, no flush, no goodbye
			close(killed)
		}
		return false
	})
	dir := t.TempDir()
	out, state := filepath.Join(dir, "out.ndjson"), filepath.Join(dir, "pages.db")
	file := pagesFile(t, "page")
	mu.Lock()
	child = childtest.Start(t, childtest.Options{Role: "sync-to-file", Test: "TestSyncChildToFile",
		Args: []string{out, "sync", "--set", "base_url=" + p.URL, "--state", state, "--output", "ndjson", file}})
	mu.Unlock()
	child.Wait(t, 5*time.Minute) // a bound on a hang
	select {
	case <-killed:
	default:
		t.Fatalf("the sync ended before page 4 (exit %d)\n%s", child.ExitCode(), child.Stderr)
	}
	st, err := source.ReadStatus(state, "pages/source")
	if err != nil {
		t.Fatal(err)
	}
	saved := int(st.State.Last.Records)
	if saved < 25 || st.Live {
		t.Fatalf("saved state %+v: want at least page 1 saved by the killed sync", st)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	have := map[int]bool{}
	for _, line := range strings.SplitAfter(string(b), "\n") {
		var r struct{ Index int }
		if strings.HasSuffix(line, "\n") && json.Unmarshal([]byte(line), &r) == nil {
			have[r.Index] = true
		}
	}
	t.Logf("killed with %d records saved; the output holds %d results (%d bytes)", saved, len(have), len(b))
	for i := 1; i <= saved; i++ {
		if !have[i] {
			t.Fatalf("the state says %d records are done, the output lacks record %d (it holds %d results)", saved, i, len(have))
		}
	}
}

// TestSyncStatusWhileRunning: plumb sync status reads the state while a
// sync holds the state file (issue 26: "state file is in use"): the state
// as of the sync's last save, and that it is running.
func TestSyncStatusWhileRunning(t *testing.T) {
	reached, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	p := newPagesPartner(t, 4, func(page int) bool {
		if page == 3 { // page 1 is saved before page 3 is asked for
			once.Do(func() { close(reached) })
			<-release
		}
		return true
	})
	releaseHeld := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseHeld) // before the partner closes, which waits for the held page
	state := filepath.Join(t.TempDir(), "pages.db")
	file := pagesFile(t, "page")
	c := hardStart(t, false, "sync", "--set", "base_url="+p.URL, "--state", state, "--output", "ndjson", file)
	select {
	case <-reached:
	case <-c.Exited():
		releaseHeld()
		t.Fatalf("the sync ended before page 3: exit %d\n%s", c.ExitCode(), c.Stderr)
	}
	res := plumbIn(t, "sync", "status", "--state", state, file)
	jres := plumbIn(t, "sync", "status", "--output", "json", "--state", state, file)
	releaseHeld()
	if res.code != ExitOK || !strings.Contains(res.stdout, "running:   a sync (pid ") || !strings.Contains(res.stdout, "last sync: running or killed, ") {
		t.Fatalf("status while syncing: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	var js struct {
		Running bool
		Last    struct{ Pages int }
	}
	if err := json.Unmarshal([]byte(jres.stdout), &js); err != nil || !js.Running || js.Last.Pages < 1 {
		t.Errorf("json status while syncing: %v\n%s%s", err, jres.stdout, jres.stderr)
	}
	c.Wait(t, 5*time.Minute)
	if c.ExitCode() != ExitOK {
		t.Fatalf("sync: exit %d\n%s", c.ExitCode(), c.Stderr)
	}
	res = plumbIn(t, "sync", "status", "--state", state, file)
	if res.code != ExitOK || strings.Contains(res.stdout, "running") || !strings.Contains(res.stdout, "last sync: complete, 5 pages, 100 records") {
		t.Errorf("status after the sync: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

// TestSyncSkipRefusedLink: a next link to another host stops every sync
// at that page with a message naming the page, the link and the way out;
// --skip-page gets past it keeping the cursor and the retry list. A
// secret the link carries is masked.
func TestSyncSkipRefusedLink(t *testing.T) {
	elsewhere := httptest.NewServer(http.NotFoundHandler())
	defer elsewhere.Close()
	p := newPagesPartner(t, 4, nil)
	p.linkElsewhere(strings.TrimPrefix(elsewhere.URL, "http://"), 2)
	state := filepath.Join(t.TempDir(), "pages.db")
	file := pagesFile(t, "link")
	const token = "link-token-0123456789abcdef"
	sync := func(extra ...string) mainResult {
		args := append([]string{"sync", "--set", "base_url=" + p.URL, "--set", "token=" + token, "--state", state, "--output", "ndjson"}, extra...)
		return plumbIn(t, append(args, file)...)
	}
	link := elsewhere.URL + "/records?page=3&since=0&token="
	for i, want := range []string{"sync: error: 2 pages, 50 records", "sync: error: 0 pages, 0 records"} {
		res := sync()
		if strings.Contains(res.stderr, token) {
			t.Errorf("sync %d shows the secret:\n%s", i+1, res.stderr)
		}
		if res.code != ExitLeadError || !strings.Contains(res.stderr, want) ||
			!strings.Contains(res.stderr, `page 3: the link to it from page 2, "`+link) || !strings.Contains(res.stderr, `": next page link not followed`) ||
			!strings.Contains(res.stderr, "every sync tries page 3 again") || !strings.Contains(res.stderr, "--skip-page") {
			t.Fatalf("sync %d: exit %d\n%s", i+1, res.code, res.stderr)
		}
	}
	st := plumbIn(t, "sync", "status", "--state", state, file)
	if !strings.Contains(st.stdout, "resume:    an unfinished sync goes on at page 3 ("+link) || !strings.Contains(st.stdout, "next:      every sync tries page 3 again") {
		t.Errorf("status:\n%s", st.stdout)
	}
	for _, line := range strings.Split(st.stdout, "\n") {
		// the saved error is masked (the resume point keeps the link as
		// the partner gave it: the next sync follows it)
		if strings.HasPrefix(line, "  last sync:") && (strings.Contains(line, token) || !strings.Contains(line, link)) {
			t.Errorf("status: %s", line)
		}
	}
	if res := sync("--skip-page", "--reset"); res.code != ExitUsage {
		t.Errorf("--skip-page --reset: exit %d\n%s", res.code, res.stderr)
	}
	p.linkElsewhere("", 0)
	res := sync("--skip-page")
	if res.code != ExitOK || !strings.Contains(res.stderr, "sync: skipped page 3 ("+link) || !strings.Contains(res.stderr, "; the pages after it are reached only through it") || strings.Contains(res.stderr, token) ||
		!strings.Contains(res.stderr, "sync: complete: 3 pages, 50 records") || !strings.Contains(res.stderr, "cursor 100") {
		t.Fatalf("--skip-page: exit %d\n%s", res.code, res.stderr)
	}
	if res := sync("--skip-page"); res.code != ExitUsage || !strings.Contains(res.stderr, "no page to skip") {
		t.Errorf("--skip-page after a complete sync: exit %d\n%s", res.code, res.stderr)
	}
}
