package cluster_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/queue/natstest"
)

// pullYAML is a scheduled source of syncPages pages of 10 records; each
// record is written to the partner by the one step.
const pullYAML = `version: 1
name: pull
settings:
  base_url: { required: true }
source:
  request:
    url: "{{settings.base_url}}/records"
    query: { page: "{{page.number}}" }
  records: { json: records }
  paginate: { type: page }
  capture:
    more: { json: more, type: bool, required: true }
  stop_when: captured.more == false
  key: id
  schedule: { every: 1h }
steps:
  - name: write
    request:
      method: POST
      url: "{{settings.base_url}}/write"
      body:
        json: { id: "{{lead.id}}" }
    timeout: 5m
`

const syncPages, perPage, gatePage = 10, 10, 4

// pullPartner serves the pages and counts the writes of each record;
// writes of records from gatePage on wait for open.
type pullPartner struct {
	*httptest.Server
	open    chan struct{}
	mu      sync.Mutex
	fetches map[int]int // page number → requests
	writes  map[int]int // record id → writes arrived
	gated   int         // writes waiting at the gate
}

func newPullPartner(t *testing.T) *pullPartner {
	p := &pullPartner{open: make(chan struct{}), fetches: map[int]int{}, writes: map[int]int{}}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/records":
			n, _ := strconv.Atoi(r.URL.Query().Get("page"))
			p.mu.Lock()
			p.fetches[n]++
			p.mu.Unlock()
			recs := []map[string]int{}
			for i := range perPage {
				recs = append(recs, map[string]int{"id": n*100 + i})
			}
			b, _ := json.Marshal(map[string]any{"records": recs, "more": n < syncPages})
			w.Write(b)
		case "/write":
			var body struct {
				ID json.Number `json:"id"`
			}
			_ = json.NewDecoder(r.Body).Decode(&body)
			id, _ := strconv.Atoi(body.ID.String())
			p.mu.Lock()
			p.writes[id]++
			gate := id/100 >= gatePage
			if gate {
				p.gated++
			}
			p.mu.Unlock()
			if gate {
				<-p.open
			}
			fmt.Fprint(w, `{"ok":true}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(func() {
		select {
		case <-p.open:
		default:
			close(p.open)
		}
		p.Close()
	})
	return p
}

func (p *pullPartner) snapshot() (fetches, writes map[int]int, gated int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fetches, writes = map[int]int{}, map[int]int{}
	for k, v := range p.fetches {
		fetches[k] = v
	}
	for k, v := range p.writes {
		writes[k] = v
	}
	return fetches, writes, p.gated
}

// syncStatus is what GET /v1/integrations/pull/sync answers (the fields
// this test reads).
type syncStatus struct {
	Running bool   `json:"running"`
	Here    bool   `json:"here"`
	Holder  string `json:"holder"`
	Ended   string `json:"ended"`
	Resume  int    `json:"resume_page"`
	Last    struct {
		Pages, Records int
	} `json:"last"`
}

func getSync(addr string) (syncStatus, error) {
	var st syncStatus
	resp, err := http.Get("http://" + addr + "/v1/integrations/pull/sync")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return st, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return st, json.Unmarshal(b, &st)
}

// TestScheduledSyncOneRunnerTakeover: three plumb serve processes on a
// 3-node NATS cluster, each serving the same scheduled source. The sync
// runs on exactly one of them (one lease; the others see it held), which
// is killed with SIGKILL while the records of page 4 on are held at the
// partner; another instance takes the lease once it expires and goes on
// from the saved page. At the partner: pages 1-3 were fetched once and
// their records written exactly once; every record was written; the only
// records written twice are records that reached the partner before the
// kill from pages after the saved position (the pages in flight),
// counted.
func TestScheduledSyncOneRunnerTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("3 NATS nodes and 3 plumb processes: skipped with -short")
	}
	c := natstest.StartCluster(t, 3)
	p := newPullPartner(t)
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "pull.yaml"), []byte(pullYAML), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "pull.settings.yaml"), []byte("base_url: "+p.URL+"\n"), 0o600))
	kids := make([]*child, 3)
	for i := range kids {
		kids[i] = startChild(t, dir, c.URLs())
	}

	// the sync reaches the gate: pages 1-3 saved, page 4's writes held;
	// and every instance reads the sync state (a process that started
	// last may answer 503, "try again", until its JetStream requests find
	// responders)
	waitFor(t, "the sync to save page 3 and hold page 4 at the partner", func() (int, bool) {
		st, err := getSync(kids[0].addr)
		for _, k := range kids[1:] {
			if _, kerr := getSync(k.addr); kerr != nil {
				err = kerr
			}
		}
		_, _, gated := p.snapshot()
		return gated, err == nil && st.Resume == gatePage && gated > 0
	})
	runner, holder := -1, ""
	for i, k := range kids {
		st, err := getSync(k.addr)
		must(t, err)
		if !st.Running || st.Holder == "" || (holder != "" && st.Holder != holder) {
			t.Fatalf("instance %d: %+v (holder so far %q)", i+1, st, holder)
		}
		holder = st.Holder
		if st.Here {
			if runner >= 0 {
				t.Fatalf("instances %d and %d both run the sync", runner+1, i+1)
			}
			runner = i
		}
	}
	if runner < 0 {
		t.Fatal("no instance says it runs the sync")
	}
	_, before, _ := p.snapshot()
	kids[runner].Kill9(t)
	killed := time.Now()
	close(p.open) // the killed instance's held writes get their answers, into a closed connection
	live := kids[(runner+1)%3].addr

	var final syncStatus
	waitFor(t, "another instance to finish the sync", func() (int, bool) {
		st, err := getSync(live)
		final = st
		return st.Last.Pages, err == nil && !st.Running && st.Ended == "complete"
	})
	t.Logf("killed instance %d at page %d; another finished the sync %s later", runner+1, gatePage, time.Since(killed).Round(time.Millisecond))

	fetches, writes, _ := p.snapshot()
	for n := 1; n < gatePage; n++ {
		if fetches[n] != 1 {
			t.Errorf("page %d fetched %d times, want once (a saved page is not fetched again)", n, fetches[n])
		}
	}
	if fetches[gatePage] != 2 {
		t.Errorf("page %d (in flight at the kill) fetched %d times, want twice", gatePage, fetches[gatePage])
	}
	dups, inFlight := 0, 0
	for n := 1; n <= syncPages; n++ {
		for i := range perPage {
			id := n*100 + i
			w := writes[id]
			switch {
			case w == 0:
				t.Errorf("record %d never written", id)
			case w > 1 && (n < gatePage || before[id] == 0):
				t.Errorf("record %d written %d times, and it was not in flight at the kill", id, w)
			case w > 2:
				t.Errorf("record %d written %d times", id, w)
			case w == 2:
				dups++
			}
			if n >= gatePage && before[id] > 0 {
				inFlight++
			}
		}
	}
	t.Logf("%d records, %d in flight at the kill (pages %d on), %d written twice (all of them in flight); final state %+v",
		syncPages*perPage, inFlight, gatePage, dups, final)
}
