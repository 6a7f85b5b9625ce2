package cli

// Regression tests of issue 13 (robustness of the CLI): a damaged --cache
// file (13.5), SIGTERM and Ctrl-C on stdin input (13.7), CSV size caps and
// unclosed quotes (13.9), silent cache write failures (13.14). Each runs
// plumb as a real process — this test binary re-executed as plumb, see
// TestHardeningPlumbProcess — on real files, against a loopback server.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/childtest"
)

// TestMain runs plumb itself (Main, with this process's standard
// streams) in a child process of role "plumb", for the tests that run
// plumb as a real process: hardStart and hardRun.
func TestMain(m *testing.M) {
	childtest.Main(m, map[string]func(args []string) int{
		"plumb": func(args []string) int { return Main(args, os.Stdin, os.Stdout, os.Stderr, os.LookupEnv) },
	})
}

// hardStart starts plumb with args in a process of its own; with stdin,
// the test writes its standard input (the child's Stdin).
func hardStart(t *testing.T, stdin bool, args ...string) *childtest.Child {
	t.Helper()
	return childtest.Start(t, childtest.Options{Role: "plumb", Args: args, Stdin: stdin})
}

// hardRun runs plumb with args to its end and returns stdout, stderr and
// the exit code (-1 when a signal ended it).
func hardRun(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	c := hardStart(t, false, args...)
	c.Wait(t, 5*time.Minute) // a bound on a hang, not a timing check
	return c.Stdout.String(), c.Stderr.String(), c.ExitCode()
}

const hardeningIntegration = `version: 1
name: hardening
settings:
  base_url: { required: true }
steps:
  - name: call
    request:
      method: POST
      url: "{{settings.base_url}}/lead"
      body:
        json: { id: "{{lead.id}}" }
    timeout: 60s
    cache: { key: "{{lead.id}}", ttl: 1h }
    capture:
      ok: { json: ok, type: bool }
`

// partner is a loopback server answering {"ok": true}; before answering
// it calls hook, if set, with the lead's id.
type hardPartner struct {
	*httptest.Server
	mu   sync.Mutex
	hook func(id string, r *http.Request)
}

func newHardPartner(t *testing.T) *hardPartner {
	p := &hardPartner{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ ID string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		p.mu.Lock()
		hook := p.hook
		p.mu.Unlock()
		if hook != nil {
			hook(body.ID, r)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok": true}`)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *hardPartner) onLead(hook func(id string, r *http.Request)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hook = hook
}

// hardeningFiles writes the integration and returns its path.
func hardFiles(t *testing.T) (dir, integration string) {
	dir = t.TempDir()
	integration = filepath.Join(dir, "integration.yaml")
	if err := os.WriteFile(integration, []byte(hardeningIntegration), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, integration
}

func hardWrite(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// within fails the test when ch does not deliver within d (a guard against
// hanging, not a synchronisation).
func hardWithin[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("timed out after %s waiting for %s", d, what)
	}
	panic("unreachable")
}

// TestSIGTERMKeepsResults reproduces issue 13.7: SIGTERM (what service
// managers and `timeout` send) killed plumb with exit 143, 0 bytes of
// stdout and the JSON array never closed, although lead 1 was done. It
// must act as Ctrl-C: stop reading, end the lead in flight, print every
// result as valid JSON and exit 130.
func TestSIGTERMKeepsResults(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGTERM on Windows")
	}
	dir, integration := hardFiles(t)
	p := newHardPartner(t)
	reached := make(chan struct{})
	var once sync.Once
	p.onLead(func(id string, r *http.Request) {
		if id == "2" {
			once.Do(func() { close(reached) })
			<-r.Context().Done() // lead 2 hangs until plumb gives up on it
		}
	})
	leads := hardWrite(t, filepath.Join(dir, "leads.ndjson"), "{\"id\":\"1\"}\n{\"id\":\"2\"}\n{\"id\":\"3\"}\n")
	c := hardStart(t, false, "run", "--set", "base_url="+p.URL, "--leads", leads, "--output", "json", integration)
	select {
	case <-reached:
	case <-c.Exited():
		t.Fatalf("plumb ended before lead 2 reached the partner: exit %d\n%s", c.ExitCode(), c.Stderr)
	case <-time.After(60 * time.Second):
		t.Fatal("lead 2 never reached the partner")
	}
	err := c.Stop(t, syscall.SIGTERM, 60*time.Second)
	if code := c.ExitCode(); code != ExitInterrupt {
		t.Errorf("exit code %d (%v), want %d\nstderr: %s", code, err, ExitInterrupt, c.Stderr)
	}
	stdout, stderr := c.Stdout, c.Stderr
	var results []struct {
		Index   int
		Outcome string
	}
	if err := json.Unmarshal([]byte(stdout.String()), &results); err != nil {
		t.Fatalf("stdout is not a JSON array: %v\n%q", err, stdout.String())
	}
	// lead 3 may have been read ahead before the signal: then it is
	// reported too, cancelled
	if len(results) < 2 || results[0].Index != 1 || results[0].Outcome != "success" {
		t.Fatalf("results %+v, want lead 1 success, then the cancelled leads", results)
	}
	for i, r := range results[1:] {
		if r.Index != i+2 || r.Outcome != "error" {
			t.Errorf("result %+v, want lead %d error (cancelled)", r, i+2)
		}
	}
	if !strings.Contains(stderr.String(), "plumb: run: interrupted") || !strings.Contains(stderr.String(), fmt.Sprintf("summary: %d leads", len(results))) {
		t.Errorf("stderr lacks the interruption and the summary:\n%s", stderr.String())
	}
}

// TestInterruptWhileStdinWaits reproduces issue 13.7's second half: with
// --leads - reading a pipe that stays open, Ctrl-C did nothing (plumb
// waited for the next line) and the run later exited 0. Here one lead is
// sent, its result line is awaited (results from a pipe are written as
// they come), then SIGINT must end the run at once with exit 130 and
// valid output.
func TestInterruptWhileStdinWaits(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT to a process on Windows")
	}
	_, integration := hardFiles(t)
	p := newHardPartner(t)
	c := hardStart(t, true, "run", "--set", "base_url="+p.URL, "--leads", "-", "--output", "ndjson", integration)
	if _, err := io.WriteString(c.Stdin, "{\"id\":\"1\"}\n"); err != nil {
		t.Fatal(err)
	}
	n := 0
	c.Stdout.Await(t, 60*time.Second, "the result line for lead 1 (results from a pipe must not wait in a buffer)", func(line string) bool {
		if strings.HasPrefix(line, `{"index":1,`) {
			return true
		}
		if n++; n > 5 {
			t.Fatalf("no result line for lead 1: %q", c.Stdout.Lines())
		}
		return false
	})
	// lead 1 is reported and plumb is blocked reading stdin, which stays
	// open until plumb is gone
	if err := c.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	hardWithin(t, c.Exited(), 60*time.Second, "plumb to stop on SIGINT while waiting for stdin")
	if code := c.ExitCode(); code != ExitInterrupt {
		t.Errorf("exit code %d, want %d\nstderr: %s", code, ExitInterrupt, c.Stderr)
	}
	out := c.Stdout.Lines()
	if len(out) != 1 {
		t.Errorf("stdout has %d lines, want lead 1's result only:\n%s", len(out), strings.Join(out, "\n"))
	}
	for _, line := range out {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil || r["outcome"] != "success" {
			t.Errorf("not a success result (%v): %s", err, line)
		}
	}
	if !strings.Contains(c.Stderr.String(), "interrupted after 1 lead") {
		t.Errorf("stderr:\n%s", c.Stderr)
	}
}

// hardPageSize is the page size bbolt gives new files.
var hardPageSize = os.Getpagesize()

// hardDamageLeaves flips the type of every leaf page of the bbolt file at
// path (pages of the OS page size, as bbolt makes them), as a disk or a crashed copy would.
func hardDamageLeaves(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for id := 2; (id+1)*hardPageSize <= len(b); id++ {
		p := b[id*hardPageSize:]
		if binary.NativeEndian.Uint64(p) == uint64(id) && binary.NativeEndian.Uint16(p[8:]) == 0x02 {
			p[8] ^= 0xff
			n++
		}
	}
	if n == 0 {
		t.Fatal("no leaf page to damage")
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDamagedCacheFile reproduces issue 13.5 through the CLI: a --cache
// file with damaged pages made the run panic (exit 2, a Go stack trace, no
// results) or die with `fatal error: fault`. It must be refused with a
// message naming the file and the way out, and --cache-bad=move must set
// it aside and run with an empty cache.
func TestDamagedCacheFile(t *testing.T) {
	dir, integration := hardFiles(t)
	p := newHardPartner(t)
	var ids []string
	for i := range 40 {
		ids = append(ids, fmt.Sprintf(`{"id":"lead-%03d-%s"}`, i, strings.Repeat("x", 100)))
	}
	leads := hardWrite(t, filepath.Join(dir, "leads.ndjson"), strings.Join(ids, "\n")+"\n")
	cache := filepath.Join(dir, "cache.db")
	args := []string{"run", "--set", "base_url=" + p.URL, "--cache", cache, "--leads", leads, "--output", "ndjson", integration}
	if out, errs, code := hardRun(t, args...); code != 0 || hardCount(out, "success") != 40 {
		t.Fatalf("first run: exit %d\n%s\n%s", code, out, errs)
	}
	damaged := hardDamageLeaves(t, cache)

	out, errs, code := hardRun(t, args...)
	if code != ExitUsage || out != "" {
		t.Errorf("damaged cache: exit %d, stdout %q; want exit 2 and nothing run", code, out)
	}
	want := "plumb: run: --cache: cache file " + cache + " is damaged: "
	if !strings.HasPrefix(errs, want) || !strings.Contains(errs, "--cache-bad=move") || strings.Contains(errs, "goroutine") {
		t.Errorf("stderr:\n%s\nwant a line starting %q that names --cache-bad=move", errs, want)
	}
	if b, _ := os.ReadFile(cache); !bytes.Equal(b, damaged) {
		t.Error("the damaged file was changed")
	}

	out, errs, code = hardRun(t, append([]string{"run", "--cache-bad=move"}, args[1:]...)...)
	if code != 0 || hardCount(out, "success") != 40 || strings.Contains(out, `"cache":"hit"`) {
		t.Errorf("--cache-bad=move: exit %d\n%s\n%s", code, out, errs)
	}
	moved, _ := filepath.Glob(cache + ".corrupt-*")
	if len(moved) != 1 || !strings.Contains(errs, "plumb: warning: --cache: "+cache+" was damaged; moved it to "+moved[0]) {
		t.Fatalf("moved files %v; stderr:\n%s", moved, errs)
	}
	if b, _ := os.ReadFile(moved[0]); !bytes.Equal(b, damaged) {
		t.Error("the file moved aside is not the damaged file")
	}
	// the new cache file works: a third run answers from it
	if out, errs, code := hardRun(t, args...); code != 0 || hardCount(out, "success") != 40 {
		t.Errorf("after the move: exit %d\n%s\n%s", code, out, errs)
	}
	if bad := hardBadFlag(t, "--cache-bad=keep", args[1:]...); !strings.Contains(bad, "--cache-bad must be fail or move") {
		t.Errorf("bad --cache-bad value: %s", bad)
	}
}

// badFlag runs plumb run with an extra flag and returns stderr, expecting
// exit 2.
func hardBadFlag(t *testing.T, extra string, args ...string) string {
	t.Helper()
	_, errs, code := hardRun(t, append([]string{"run", extra}, args...)...)
	if code != ExitUsage {
		t.Errorf("%s: exit %d, want 2", extra, code)
	}
	return errs
}

// TestCacheWriteFailureWarns reproduces issue 13.14: without -v a cache
// that stopped keeping answers (here the file is removed during the run)
// went unnoticed. The first failure must be shown on stderr and the count
// given at the end; the leads themselves still succeed.
func TestCacheWriteFailureWarns(t *testing.T) {
	dir, integration := hardFiles(t)
	p := newHardPartner(t)
	cache := filepath.Join(dir, "cache.db")
	p.onLead(func(id string, _ *http.Request) {
		if id == "1" {
			os.Remove(cache) // before the answer, so before the first write
		}
	})
	leads := hardWrite(t, filepath.Join(dir, "leads.ndjson"), "{\"id\":\"1\"}\n{\"id\":\"2\"}\n{\"id\":\"3\"}\n")
	out, errs, code := hardRun(t, "run", "--set", "base_url="+p.URL, "--cache", cache, "--leads", leads, integration)
	if code != 0 || strings.Count(out, ": success") != 3 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if n := strings.Count(errs, "plumb: warning: cache put failed"); n != 2 {
		t.Errorf("%d warning lines, want the first failure and the count:\n%s", n, errs)
	}
	if !strings.Contains(errs, "removed or replaced while in use") || !strings.Contains(errs, cache) {
		t.Errorf("the warning does not say what happened to which file:\n%s", errs)
	}
	if !strings.Contains(errs, "plumb: warning: cache put failed: 3 times in this run") {
		t.Errorf("no count of the failures:\n%s", errs)
	}
}

// TestCSVCaps reproduces issue 13.9: a CSV cell of any size was read whole
// (300 MiB → 1.9 GB RSS), and an unclosed quote silently swallowed the
// rows after it into one. A record over the NDJSON line cap is now an
// error row, the rows after it still run; a quote never closed is a read
// error naming its line (exit 2) after the rows before it were reported.
func TestCSVCaps(t *testing.T) {
	dir, integration := hardFiles(t)
	p := newHardPartner(t)

	// a 12 MiB cell, quoted and spanning lines, between two good rows
	big := filepath.Join(dir, "big.csv")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	w.WriteString("id,note\n1,short\n2,\"")
	line := strings.Repeat("y", 1023) + "\n"
	for range 12 << 10 {
		w.WriteString(line)
	}
	w.WriteString("\"\n3,\"multi\nline, quoted\"\n4,after\n")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, errs, code := hardRun(t, "run", "--set", "base_url="+p.URL, "--leads", big, "--output", "ndjson", integration)
	if code != ExitLeadError {
		t.Errorf("exit %d, want 1\n%s", code, errs)
	}
	got := strings.Split(strings.TrimSpace(out), "\n")
	if len(got) != 4 ||
		!strings.Contains(got[0], `"index":1,"line":2,"outcome":"success"`) ||
		!strings.Contains(got[1], `"index":2,"line":3,"outcome":"error","reason":"lines 3-12291: longer than 8388608 bytes"`) ||
		!strings.Contains(got[2], `"index":3,"line":12292,"outcome":"success"`) || !strings.Contains(got[2], `"note":"multi\nline, quoted"`) ||
		!strings.Contains(got[3], `"index":4,"line":12294,"outcome":"success"`) {
		t.Errorf("results:\n%.2000s", out)
	}

	// the reader holds one capped record, not the cell: a 128 MiB cell
	// costs a fraction of it (encoding/csv alone held all of it, and more)
	src, err := newCSVSource(io.MultiReader(strings.NewReader("id,note\n1,"), &hardRepeat{n: 128 << 20}, strings.NewReader("\n2,ok\n")))
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	it1, err1 := src.Next()
	it2, err2 := src.Next()
	runtime.ReadMemStats(&after)
	if err1 != nil || it1.err == nil || !strings.Contains(it1.err.Error(), "longer than") || err2 != nil || it2.err != nil || it2.lead["note"] != "ok" {
		t.Errorf("got %v %v / %v %v", it1.err, err1, it2, err2)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 48<<20 {
		t.Errorf("reading a 128 MiB cell allocated %d MiB", alloc>>20)
	}

	// an unclosed quote: rows 1 and 2 run, then a read error at line 4
	unclosed := hardWrite(t, filepath.Join(dir, "unclosed.csv"), "id,note\n1,a\n2,b\n3,\"never closed\n4,d\n5,e\n")
	out, errs, code = hardRun(t, "run", "--set", "base_url="+p.URL, "--leads", unclosed, "--output", "ndjson", integration)
	if code != ExitUsage || hardCount(out, "success") != 2 || strings.Count(out, "\n") != 2 {
		t.Errorf("unclosed quote: exit %d, want 2 after 2 results\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(errs, "line 4: a quoted field opens here and is never closed") {
		t.Errorf("stderr:\n%s", errs)
	}

	// a quote closed rows later in the wrong place: one error naming the
	// lines it spans, the rows after it run
	stray := hardWrite(t, filepath.Join(dir, "stray.csv"), "id,note\n1,\"a\n2,b\n3,\"c\"x\n4,d\n")
	out, _, code = hardRun(t, "run", "--set", "base_url="+p.URL, "--leads", stray, "--output", "ndjson", integration)
	if code != ExitLeadError || !strings.Contains(out, `"reason":"lines 2-4: invalid CSV: `) || !strings.Contains(out, `{"index":2,"line":5,"outcome":"success"`) {
		t.Errorf("stray quote: exit %d\n%s", code, out)
	}
}

// hardCount counts the NDJSON results of outcome in out.
func hardCount(out, outcome string) int {
	return len(regexp.MustCompile(`(?m)^\{"index":\d+,"line":\d+,"outcome":"`+outcome+`"`).FindAllString(out, -1))
}

// hardRepeat yields n bytes of 'z' without holding them.
type hardRepeat struct{ n int }

func (r *hardRepeat) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	k := min(len(p), r.n)
	for i := range k {
		p[i] = 'z'
	}
	r.n -= k
	return k, nil
}

// TestCSVBOMQuotedHeader: a byte order mark before a quoted first column
// name (as spreadsheet exports write it) does not make the quote bare.
func TestCSVBOMQuotedHeader(t *testing.T) {
	src, err := newCSVSource(strings.NewReader("\ufeff\"id\",\"note\"\n1,\"a\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	it, err := src.Next()
	if err != nil || it.err != nil || it.lead["id"] != "1" || it.lead["note"] != "a" {
		t.Fatalf("got %+v %v", it, err)
	}
}
