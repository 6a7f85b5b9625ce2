package cli

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plumbhq/plumb/source"
)

// fullWriter fails every write, as a full disk or a closed pipe does.
type fullWriter struct{}

func (fullWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestSyncWriteErrorNoPageHint: a sync whose results cannot be written
// says so and exits 2, with no summary line and no hint to skip or
// restart a page (the page is not the cause); the next sync goes on where
// the last saved page left off.
func TestSyncWriteErrorNoPageHint(t *testing.T) {
	p := newPagesPartner(t, 3, nil)
	state := filepath.Join(t.TempDir(), "pages.db")
	file := pagesFile(t, "page")
	args := []string{"sync", "--set", "base_url=" + p.URL, "--state", state, "--output", "ndjson", file}
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Main(args, strings.NewReader(""), fullWriter{}, &stderr, func(string) (string, bool) { return "", false })
	}()
	code := hardWithin(t, done, time.Minute, "plumb sync > full")
	got := stderr.String()
	if code != ExitUsage || !strings.Contains(got, "plumb: sync: writing results: ") || strings.Contains(got, "writing results: writing results") || !strings.Contains(got, "disk full") ||
		strings.Contains(got, "every sync tries page") || strings.Contains(got, "--skip-page") || strings.Contains(got, "sync: error:") {
		t.Fatalf("exit %d\n%s", code, got)
	}
	if res := plumbIn(t, args...); res.code != ExitOK || !strings.Contains(res.stderr, "sync: complete: ") {
		t.Fatalf("next sync: exit %d\n%s", res.code, res.stderr)
	}
}

// TestFinishSyncOutput: the output's summary is skipped, and the error
// returned, only when the sync ended for want of writing its results
// (errors.Is source.ErrWriteResults), whatever other errors say.
func TestFinishSyncOutput(t *testing.T) {
	writeErr := fmt.Errorf("%w: %w", source.ErrWriteResults, errors.New("disk full"))
	for _, tc := range []struct {
		name    string
		rep     *source.Report
		wantErr error
	}{
		{"no report", nil, nil},
		{"complete", &source.Report{Ended: "complete"}, nil},
		{"page error", &source.Report{Ended: "error", Err: errors.New("writing results of page 3: HTTP 500")}, nil},
		{"write error", &source.Report{Ended: "error", Err: writeErr}, writeErr},
	} {
		var stdout, stderr bytes.Buffer
		err := finishSyncOutput(newOutput("ndjson", &stdout, &stderr), newSummary(), tc.rep)
		if err != tc.wantErr {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.wantErr)
		}
		if summary := stderr.Len() > 0; summary != (tc.wantErr == nil) {
			t.Errorf("%s: summary written %v:\n%s", tc.name, summary, stderr.String())
		}
	}
}
