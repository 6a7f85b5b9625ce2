package cli

// Tests that pin down what plumb run promises about interrupts, read
// errors and the end-of-input flush; each kills a mutant of
// scripts/mutants (named in its comment). Read-ahead is bounded by
// engine.RunAll (TestRunAllReorderBytesBound in engine).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/plumbhq/plumb/internal/sandbox"
)

// oneCall is an integration of one POST per lead to {{settings.base_url}}/x.
const oneCall = `version: 1
name: one
settings: { base_url: {} }
steps:
  - name: call
    timeout: 1m
    request: { method: POST, url: "{{settings.base_url}}/x", body: { json: { n: "{{lead.n}}" } } }
    capture: { ok: { json: ok } }
`

func writeFile(t *testing.T, name, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// mainResult is what one in-process plumb command left behind.
type mainResult struct {
	code           int
	stdout, stderr string
}

// runMain runs runCmd(ctx, args) with stdin in a goroutine and fails the
// test if it has not returned within limit: a hang is a failure with a
// message, not a ten-minute test timeout.
func runMain(t *testing.T, ctx context.Context, limit time.Duration, stdin io.Reader, args ...string) mainResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		s := &stdio{stdin: stdin, stdout: &stdout, stderr: &stderr, env: func(string) (string, bool) { return "", false }}
		done <- runCmd(ctx, s, args)
	}()
	select {
	case code := <-done:
		return mainResult{code, stdout.String(), stderr.String()}
	case <-time.After(limit):
		t.Fatalf("plumb %s did not finish within %s", strings.Join(args, " "), limit)
		return mainResult{}
	}
}

// TestRunInterruptedExits130: an interrupt while a lead is at the partner
// and the input waits stops reading, ends the lead as cancelled, reports it
// and exits 130 (mutant interrupt-exit-130).
func TestRunInterruptedExits130(t *testing.T) {
	entered := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// the server notices a client that gave up only once the body is read
		io.Copy(io.Discard, r.Body)
		entered <- struct{}{}
		<-r.Context().Done() // held until plumb gives up
	}))
	defer srv.Close()
	file := writeFile(t, "one.yaml", oneCall)
	// one lead, then the input stays open (a terminal or a pipe that has
	// nothing more yet): only the interrupt ends the run, and it must not
	// wait for the input
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("{\"n\":1}\n"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-entered // lead 1 is at the partner
		cancel()  // Ctrl-C
	}()
	r := runMain(t, ctx, time.Minute, pr, "--output", "ndjson", "--set", "base_url="+srv.URL, "--leads", "-", file)
	if r.code != ExitInterrupt {
		t.Fatalf("exit %d, want %d (interrupted)\nstdout:\n%s\nstderr:\n%s", r.code, ExitInterrupt, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "interrupted after 1 lead") || !strings.Contains(r.stderr, "summary: 1 lead in") {
		t.Fatalf("stderr:\n%s", r.stderr)
	}
	var res struct {
		Index   int
		Outcome string
		Reason  string
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &res); err != nil || res.Index != 1 || res.Outcome != "error" || !strings.Contains(res.Reason, "cancelled") {
		t.Fatalf("want lead 1 reported as cancelled, got:\n%s (%v)", r.stdout, err)
	}
}

// TestRunInputReadErrorExits2: a read error of the input itself (not a
// malformed row) stops the run after reporting the leads before it, and
// exits 2 (mutant read-error-exit-2).
func TestRunInputReadErrorExits2(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	file := writeFile(t, "one.yaml", oneCall)
	stdin := io.MultiReader(strings.NewReader("{\"n\":1}\n{\"n\":2}\n"), iotest.ErrReader(errors.New("disk on fire")))
	r := runMain(t, context.Background(), time.Minute, stdin, "--output", "ndjson", "--set", "base_url="+srv.URL, "--leads", "-", file)
	if r.code != ExitUsage {
		t.Fatalf("exit %d, want %d\nstderr:\n%s", r.code, ExitUsage, r.stderr)
	}
	if !strings.Contains(r.stderr, "reading leads from -: disk on fire") || !strings.Contains(r.stderr, "summary: 2 leads") || !strings.Contains(r.stderr, "2 success") {
		t.Fatalf("stderr:\n%s", r.stderr)
	}
	if n := strings.Count(r.stdout, `{"index":`); n != 2 || strings.Contains(r.stdout, `"outcome":"error"`) {
		t.Fatalf("want the 2 leads before the error reported:\n%s", r.stdout)
	}
}

// TestRunFlushesAtEndOfInput: with a batch wait of an hour, the last,
// partial batch can only go because the input ended (settings.Flush); the
// run must finish long before the wait (mutant end-of-input-flush). The
// 30s limit only turns a hang into a failure.
func TestRunFlushesAtEndOfInput(t *testing.T) {
	dir := filepath.Join(examplesDir, "batch-validate")
	src, err := os.ReadFile(filepath.Join(dir, "integration.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Replace(string(src), "wait: 2s ", "wait: 1h ", 1)
	if long == string(src) {
		t.Fatal("the example no longer has wait: 2s; update this test")
	}
	file := writeFile(t, "integration.yaml", long)
	sb := sandbox.New()
	srv := httptest.NewServer(sb)
	defer srv.Close()
	var leads strings.Builder
	for i := range 7 {
		fmt.Fprintf(&leads, `{"id":"l%d","email":"a%d@gmail.example"}`+"\n", i, i)
	}
	r := runMain(t, context.Background(), 30*time.Second, strings.NewReader(leads.String()), "--output", "ndjson", "--set", "base_url="+srv.URL,
		"--settings", filepath.Join(dir, "settings.yaml"), "--leads", "-", file)
	if r.code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if got := sb.BatchSizes(); !slices.Equal(got, []int{5, 2}) {
		t.Fatalf("the sandbox saw batches of %v leads, want [5 2]", got)
	}
}
