package cli

import (
	"bytes"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/plumbhq/plumb/internal/sandbox"
)

// TestRunBatchFlush runs the batch-validate example's 12 leads with the
// default --concurrency 1 against a sandbox the test owns and checks what
// the partner saw: three batch requests of 5, 5 and 2 leads. Full batches
// need at least `size` leads running at once (plumb run raises the
// workers to the batch size), and the last, partial batch is sent once
// the input ends (settings.Flush) rather than after its wait; nothing here
// measures time.
func TestRunBatchFlush(t *testing.T) {
	for _, args := range [][]string{
		{},                     // --concurrency 1 (default): raised to 5
		{"--concurrency", "3"}, // raised to 5
		{"--concurrency", "5"}, // exactly the batch size
		{"--leads-format", "ndjson"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			sb := sandbox.New()
			srv := httptest.NewServer(sb)
			defer srv.Close()
			dir := filepath.Join(examplesDir, "batch-validate")
			var stdout, stderr bytes.Buffer
			argv := append([]string{"run", "--output", "ndjson", "--set", "base_url=" + srv.URL,
				"--settings", filepath.Join(dir, "settings.yaml"),
				"--leads", filepath.Join(dir, "leads.ndjson")}, args...)
			argv = append(argv, filepath.Join(dir, "integration.yaml"))
			code := Main(argv, strings.NewReader(""), &stdout, &stderr, nil)
			if code != ExitLeadError { // the lead the partner leaves out ends in error
				t.Fatalf("exit %d, want %d\n%s", code, ExitLeadError, stderr.String())
			}
			if got := sb.BatchSizes(); !slices.Equal(got, []int{5, 5, 2}) {
				t.Errorf("the sandbox saw batches of %v leads, want [5 5 2]", got)
			}
			if n := strings.Count(stdout.String(), `{"index"`); n != 12 {
				t.Errorf("%d results, want 12:\n%s", n, stdout.String())
			}
			if !strings.Contains(stderr.String(), "summary: 12 leads in") || !strings.Contains(stderr.String(), "9 success, 2 failure, 1 error, 0 skip") {
				t.Errorf("summary:\n%s", stderr.String())
			}
		})
	}
}
