package source_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// genIntegration syncs a generated source: cursor pages of 1000 records,
// each posted to a sink.
const genIntegration = `version: 1
name: generated
settings: { base_url: {} }
source:
  request: { url: "{{settings.base_url}}/records?after={{page.cursor}}&since={{state.cursor}}" }
  records: { json: records }
  paginate: { type: cursor, cursor: { json: next } }
  max_pages: 100000
  incremental: { cursor_field: updated_at }
steps:
  - name: sink
    request:
      method: POST
      url: "{{settings.base_url}}/sink"
      body: { json: { id: "{{lead.id}}", email: "{{lead.email}}" } }
    capture: { ok: { json: ok, type: bool } }
`

// generator serves total records, 1000 a page, made up on the fly.
func generator(total int) http.Handler {
	sinkBody := []byte(`{"ok":true}`)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/sink" {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(sinkBody)
			return
		}
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		var b strings.Builder
		b.WriteString(`{"records":[`)
		end := min(after+1000, total)
		for n := after + 1; n <= end; n++ {
			if n > after+1 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"id":%d,"email":"user%d@gen.example","name":"User %d","updated_at":%d,"note":"%s"}`, n, n, n, n, strings.Repeat("x", 64))
		}
		b.WriteString(`]`)
		if end < total {
			fmt.Fprintf(&b, `,"next":"%d"`, end)
		}
		b.WriteString(`}`)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, b.String())
	})
}

// TestSyncMemoryFlat runs plumb sync (a child process) over 100,000 and
// 1,000,000 generated records and compares the child's peak RSS: it must
// not grow with the number of records. Opt-in: PLUMB_SYNC_MILLION=1 (about
// a minute; PLUMB_BIN=FILE measures that plumb binary).
func TestSyncMemoryFlat(t *testing.T) {
	if os.Getenv("PLUMB_SYNC_MILLION") == "" {
		t.Skip("set PLUMB_SYNC_MILLION=1 to sync 1,000,000 records")
	}
	if runtime.GOOS != "linux" {
		t.Skip("peak RSS from rusage is read on Linux")
	}
	dir := t.TempDir()
	bin := os.Getenv("PLUMB_BIN") // a plumb binary to measure, else built here
	if bin == "" {
		bin = filepath.Join(dir, "plumb")
		build := exec.Command("go", "build", "-o", bin, "github.com/plumbhq/plumb/cmd/plumb")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	file := filepath.Join(dir, "generated.yaml")
	if err := os.WriteFile(file, []byte(genIntegration), 0o644); err != nil {
		t.Fatal(err)
	}
	peak := map[int]int64{}
	for _, total := range []int{100_000, 1_000_000} {
		srv := httptest.NewServer(generator(total))
		cmd := exec.Command(bin, "sync", "--set", "base_url="+srv.URL, "--state", filepath.Join(dir, fmt.Sprint(total, ".db")),
			"--output", "ndjson", "--concurrency", "8", file)
		cmd.Stdout = io.Discard
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		err := cmd.Run()
		srv.Close()
		if err != nil {
			t.Fatalf("%d records: %v\n%s", total, err, stderr.String())
		}
		if !strings.Contains(stderr.String(), fmt.Sprintf("sync: complete: %d pages, %d records, 0 errors", total/1000, total)) {
			t.Fatalf("%d records:\n%s", total, stderr.String())
		}
		rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB on Linux
		peak[total] = rss
		t.Logf("%d records: %s, %.0f records/s, peak RSS %.1f MiB", total, time.Since(start).Round(time.Millisecond),
			float64(total)/time.Since(start).Seconds(), float64(rss)/1024)
	}
	if peak[1_000_000] > peak[100_000]*3/2 {
		t.Errorf("peak RSS grew from %d KiB (100,000 records) to %d KiB (1,000,000)", peak[100_000], peak[1_000_000])
	}
}
