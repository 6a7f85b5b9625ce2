package history

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/plumbhq/plumb/engine"
)

// TestMillionRecords writes PLUMB_HISTORY_RECORDS records (skipped when
// unset; the measurement is 1000000) through the Store, each
// like a queued lead's (one step, two tries, ~600 bytes of JSON), with a
// bound of PLUMB_HISTORY_MAX_BYTES (default 256 MiB), and checks that the
// file stays under its bound and keeps the newest records. It reports the
// file size, what the store holds, the records kept and the time taken
// (BENCHMARKS.md, "Lead history"). PLUMB_HISTORY_NATS=1 writes them
// through a cluster's log on one in-process NATS node.
//
//	PLUMB_HISTORY_RECORDS=1000000 go test -run TestMillionRecords -v ./internal/history
func TestMillionRecords(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PLUMB_HISTORY_RECORDS"))
	if n <= 0 {
		t.Skip("set PLUMB_HISTORY_RECORDS (e.g. 1000000) to measure")
	}
	max := int64(256 << 20)
	if v, err := strconv.ParseInt(os.Getenv("PLUMB_HISTORY_MAX_BYTES"), 10, 64); err == nil && v > 0 {
		max = v
	}
	path := filepath.Join(t.TempDir(), "history.db")
	cfg := Config{Path: path, MaxBytes: max}
	if os.Getenv("PLUMB_HISTORY_NATS") != "" { // through a cluster's log (one NATS node)
		cfg.Log = testNATSLog(t)
	}
	s := open(t, cfg)
	start, at := time.Now(), time.Now()
	var peak int64
	for i := range n {
		id := fmt.Sprintf("01J%023d", i)
		s.Add(Record{ID: id, Integration: "crm", Source: SourceLeads, RequestID: "req-" + id, Batch: "01JBATCH" + strconv.Itoa(i/2000),
			Outcome: "success", Accepted: at, Started: at, Finished: at, QueuedMS: ms(12.5), DurationMS: ms(80.25),
			Steps: []Step{{Name: "submit", Outcome: "success", Method: "POST", URL: "https://partner.example/v1/leads/submit",
				Status: 200, Attempts: 2, DurationMS: ms(80), Tries: []Try{
					{Attempt: 1, Status: 503, Class: "status", Rule: "retry on 5xx", DurationMS: ms(30.2)},
					{Attempt: 2, Status: 200, DurationMS: ms(49.8)}}}}})
		if i%4096 == 4095 { // the committer's queue holds 8192: keep under it
			s.Flush()
			if i%(1<<17) == (1<<17)-1 {
				if fi, err := os.Stat(path); err == nil {
					peak = max64(peak, fi.Size())
				}
			}
		}
	}
	s.Flush()
	took := time.Since(start)
	st := s.Stats()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	peak = max64(peak, fi.Size())
	t.Logf("%d records in %s (%.0f records/s, %d commits): file %d bytes (peak %d) for a bound of %d; holds %d bytes; %d kept, %d pruned, %d dropped",
		n, took.Round(time.Millisecond), float64(n)/took.Seconds(), st.Commits, fi.Size(), peak, max, st.Bytes,
		st.Written-st.Pruned, st.Pruned, st.Dropped)
	if peak > max || st.Dropped != 0 || st.Written != uint64(n) {
		t.Fatalf("file peaked at %d bytes for a bound of %d; stats %+v", peak, max, st)
	}
	got := all(t, s, Query{Limit: MaxLimit, Batch: "01JBATCH" + strconv.Itoa((n-1)/2000)})
	if len(got) == 0 || got[0] != fmt.Sprintf("01J%023d", n-1) {
		t.Fatalf("newest of the last batch = %v", got[:min(1, len(got))])
	}
}

func max64(a, b int64) int64 { return max(a, b) }

func ms(f float64) engine.Duration { return engine.Duration(f * float64(time.Millisecond)) }
