//go:build unix

package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLoadRefusesNamedPipes: validate, run, try and test refuse a named
// pipe given as the integration at once, with the same error; run refuses
// one given as --settings, test one as a test file (mutant: files read
// with os.ReadFile block on the pipe for ever).
func TestLoadRefusesNamedPipes(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	tfifo := filepath.Join(dir, "x.test.yaml")
	sfifo := filepath.Join(dir, "x.settings.yaml")
	for _, p := range []string{fifo, tfifo, sfifo} {
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lead := filepath.Join(dir, "lead.json")
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(lead, []byte(`{}`), 0o644)
	os.WriteFile(good, []byte(oneCall), 0o644)
	want := fifo + ": cannot read integration: not a regular file"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"validate", fifo}, want},
		{[]string{"run", "--lead", lead, fifo}, want},
		{[]string{"try", "--lead", lead, fifo}, want},
		{[]string{"test", fifo}, want},
		{[]string{"test", tfifo}, tfifo + ": cannot read: not a regular file"},
		{[]string{"validate", tfifo}, tfifo + ": cannot read: not a regular file"},
		{[]string{"run", "--settings", sfifo, "--lead", lead, good}, "settings: open " + sfifo + ": not a regular file"},
		{[]string{"validate", "--integration", good, sfifo}, "settings: open " + sfifo + ": not a regular file"},
		// plumb import: its input, and a file a curl line names (-d @FILE: /dev/zero grew without bound)
		{[]string{"import", "har", fifo}, fifo + ": not a regular file"},
		{[]string{"import", "curl", "curl https://api.example.com/l -d @/dev/zero"}, "/dev/zero: not a regular file"},
		{[]string{"import", "curl", "curl https://api.example.com/l -d @" + fifo}, fifo + ": not a regular file"},
	} {
		r := mainWithin(t, time.Minute, c.args...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("plumb %s: exit %d, stderr:\n%s\nwant %q", strings.Join(c.args, " "), r.code, r.stderr, c.want)
		}
	}
}

// mainWithin runs Main(args) in a goroutine and fails the test if it has
// not returned within limit.
func mainWithin(t *testing.T, limit time.Duration, args ...string) mainResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- Main(args, strings.NewReader(""), &stdout, &stderr, nil) }()
	select {
	case code := <-done:
		return mainResult{code, stdout.String(), stderr.String()}
	case <-time.After(limit):
		t.Fatalf("plumb %s did not finish within %s", strings.Join(args, " "), limit)
		return mainResult{}
	}
}
