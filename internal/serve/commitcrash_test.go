package serve

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestKill9DuringGroupCommit: `plumb serve` is killed with SIGKILL in the
// middle of a group commit of the leads' records — the moment is not
// timed: the child's commit hook (childMain's crashcommit) stops the
// committer there and says so, and the test kills it then.
//
//   - written: the batch is written to the record log and not synced;
//   - torn: the same, and the file is then cut in the middle of the batch,
//     as a power cut during the write would leave it;
//   - synced: the batch is stored and none of its leads acknowledged.
//
// While the committer is stopped no lead can become done, so the test
// reads every lead's state then: a batch's results must not be visible
// before the sync, and must be after it. After a restart every accepted
// lead completes with success (none lost), a lead done before the kill
// never reaches the partner again, and only leads not yet done at the
// kill — at most one per worker — reach it twice; the torn batch's cut
// lead among them. The record log reopens on its torn tail.
func TestKill9DuringGroupCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	for _, mode := range []string{"written", "torn", "synced"} {
		t.Run(mode, func(t *testing.T) {
			point := map[string]string{"written": "written", "torn": "written", "synced": "synced"}[mode]
			p := newPartner(t)
			dir, data := t.TempDir(), t.TempDir()
			writeIntegration(t, dir, p.URL)
			first := startChild(t, dir, data, "crashcommit="+point)
			c := client{t: t, base: "http://" + first.addr}
			ids := acceptAll(t, c, subprocessLead)

			var f []string
			first.Stdout.Await(t, 120*time.Second, "the group commit stopped", func(line string) bool {
				f = strings.Fields(line)
				return len(f) >= 7 && f[0] == "commit"
			})
			if f[1] != point {
				t.Fatalf("child stopped at %q, want %q", f[1], point)
			}
			file, batch := f[2], f[5:]
			off, err1 := strconv.ParseInt(f[3], 10, 64)
			length, err2 := strconv.ParseInt(f[4], 10, 64)
			if point == "written" && (err1 != nil || err2 != nil || length <= 0) {
				t.Fatalf("commit line %q", f)
			}

			// the committer is stopped: the leads done now stay the only
			// ones done until the kill
			done := map[string]bool{}
			for id := range ids {
				code, b := c.do("GET", "/v1/leads/"+id, "", nil)
				if code != 200 {
					t.Fatalf("GET /v1/leads/%s: %d %s", id, code, b)
				}
				done[id] = decode[leadStatus](t, b).State == "done"
			}
			for _, id := range batch {
				if _, ok := ids[id]; !ok {
					t.Fatalf("the batch holds %s, not an accepted lead", id)
				}
				if done[id] != (point == "synced") {
					t.Errorf("lead %s of the batch stopped %s: done=%v, want results visible only once synced", id, point, done[id])
				}
			}
			first.Kill9(t)
			if mode == "torn" {
				// what a power cut in the middle of the write leaves: the
				// batch's first half, its last frame torn
				must(t, os.Truncate(file, off+length/2))
			}

			notDone := map[int]bool{}
			for id, n := range ids {
				if !done[id] {
					notDone[n] = true
				}
			}
			drainAfterRestart(t, dir, data, nil)
			checkResults(t, data, ids)
			dups := checkRepeats(t, p, subprocessLead, notDone, "lead")
			if dups > childConcurrency {
				t.Errorf("%d partner-side repeats, want at most %d (one per worker)", dups, childConcurrency)
			}
			counts := p.snapshot()
			repeatedInBatch := 0
			for _, id := range batch {
				if counts[ids[id]] > 1 {
					repeatedInBatch++
				}
			}
			switch {
			case mode == "torn" && repeatedInBatch == 0:
				t.Errorf("no lead of the torn batch ran again: its cut record was not cut")
			case mode != "torn" && repeatedInBatch > 0:
				t.Errorf("%d leads of the batch ran again, though their records were written whole", repeatedInBatch)
			}
			t.Logf("kill -9 %s in a group commit of %d records: %d leads done before it, all %d done after the restart, 0 lost; %d partner-side repeats (%d of the batch)",
				mode, len(batch), len(doneIDs(done)), len(ids), dups, repeatedInBatch)
		})
	}
}

func doneIDs(done map[string]bool) []string {
	var out []string
	for id, d := range done {
		if d {
			out = append(out, id)
		}
	}
	return out
}
