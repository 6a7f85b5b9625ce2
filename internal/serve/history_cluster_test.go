package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/plumbhq/plumb/internal/history"
	"github.com/plumbhq/plumb/internal/queue/natstest"
)

// TestClusterHistory: three instances on a 3-node NATS cluster; one
// batch posted to the first runs on several of them. Every instance's
// history then has the whole batch: GET /v1/batches/{id} done with
// matching counts, GET /v1/leads?batch= every lead, GET /v1/leads/{id}
// the lead's integration on an instance that did not run it.
func TestClusterHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("3 NATS nodes and 3 plumb instances: skipped with -short")
	}
	nc := natstest.StartCluster(t, 3)
	// the partner tells the instances apart by the base_url each is given
	// and holds every answer until two instances have called, so the
	// leads of one batch run on several
	var mu sync.Mutex
	ranOn := map[int]int{} // lead n → instance
	callers := map[int]bool{}
	spread := make(chan struct{})
	p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			N     int    `json:"n"`
			Email string `json:"email"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		var inst int
		fmt.Sscanf(r.URL.Path, "/i%d/", &inst)
		mu.Lock()
		ranOn[body.N] = inst
		if !callers[inst] {
			if callers[inst] = true; len(callers) == 2 {
				close(spread)
			}
		}
		mu.Unlock()
		select {
		case <-spread:
		case <-time.After(30 * time.Second): // then the check below fails
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok": %v}`, !strings.HasSuffix(body.Email, "@reject.example"))
	}))
	t.Cleanup(p.Close)
	clients := make([]client, 3)
	var first *Server
	for i := range clients {
		dir := t.TempDir()
		writeIntegration(t, dir, fmt.Sprintf("%s/i%d", p.URL, i))
		cfg := Config{Dir: dir, NATS: nc.URLs(), Concurrency: 2, DrainTimeout: 5 * time.Second}
		cfg.Queue.AckWait = 3 * time.Second
		s := testServer(t, cfg)
		clients[i] = client{t: t, base: "http://" + s.Addr()}
		if first == nil {
			first = s
		}
	}
	const n = 300
	a := postBatch(t, clients[0], 0, n)
	byN := map[string]int{}
	for i, l := range a.Leads {
		byN[l.ID] = i
	}
	// the partner saw every lead: then every view has the batch done
	// within moments (the deadline only turns a missing view into a failure)
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		seen := len(ranOn)
		mu.Unlock()
		if seen == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the partner saw %d leads of %d after 60s", seen, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i, c := range clients {
		bt := waitClusterBatch(t, c, a.Batch)
		if bt.Total != n || bt.State["done"] != n || bt.State["queued"] != 0 || bt.State["running"] != 0 ||
			bt.Outcomes["success"] != n*9/10 || bt.Outcomes["failure"] != n/10 || bt.Integration != "partner" {
			t.Fatalf("instance %d: batch = %+v", i, bt)
		}
	}
	mu.Lock()
	ran := map[int]int{}
	for _, inst := range ranOn {
		ran[inst]++
	}
	mu.Unlock()
	if len(ran) < 2 {
		t.Fatalf("the leads ran on instances %v; want several", ran)
	}
	t.Logf("leads per instance: %v", ran)
	for i, c := range clients {
		if got := batchLeads(t, c, a.Batch); len(got) != n {
			t.Fatalf("instance %d lists %d leads of the batch, want %d", i, len(got), n)
		}
		code, b := c.do("GET", "/v1/leads/export?batch="+a.Batch, "", nil)
		if lines := bytes.Count(b, []byte("\n")); code != 200 || lines != n {
			t.Fatalf("instance %d exports %d leads of the batch (%d), want %d", i, lines, code, n)
		}
	}
	// every instance's health charts count the cluster's leads, each once
	// (its view applied them all: the batch is done there; the stats are
	// fed just after that commit, so a few polls are enough)
	for i, c := range clients {
		var tot StatPoint
		for try := 0; try < 100 && tot.Leads < n; try++ {
			if try > 0 {
				time.Sleep(50 * time.Millisecond)
			}
			_, b := c.do("GET", "/v1/stats?integration=partner&window=1h", "", nil)
			if a := decode[StatsAnswer](t, b); len(a.Integrations) == 1 {
				tot = a.Integrations[0].Total
			}
		}
		if tot.Leads != n || tot.Success != n*9/10 || tot.Failure != n/10 {
			t.Fatalf("instance %d: stats total %+v, want %d leads", i, tot, n)
		}
	}
	// the cost: two log messages per lead (started, record) and two per
	// batch (begun, notified: once, by one instance)
	st, err := first.Queue().JetStream().Stream(t.Context(), "PLUMB_HISTORY")
	must(t, err)
	// the batch's "notified" op is published by a committer after the
	// batch completes, in its next commit (a linger later)
	var si *jetstream.StreamInfo
	for try := 0; try < 200 && (si == nil || si.State.Msgs < 2*n+2); try++ {
		if try > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		si, err = st.Info(t.Context())
		must(t, err)
	}
	if si.Config.Replicas != 3 || si.Config.MaxAge != history.DefaultMaxAge || si.Config.MaxBytes != history.DefaultMaxBytes {
		t.Fatalf("history stream config %+v", si.Config)
	}
	ops := historyOps(t, st, si.State.FirstSeq, si.State.LastSeq)
	if ops[a.Batch] != 1 || si.State.Msgs < 2*n+2 {
		t.Fatalf("history stream: %d messages for %d leads (want at least %d), %d notified ops (want 1)", si.State.Msgs, n, 2*n+2, ops[a.Batch])
	}
	t.Logf("history stream: %d messages, %d bytes for %d leads (%.0f bytes a lead)", si.State.Msgs, si.State.Bytes, n, float64(si.State.Bytes)/n)
	// each instance finds leads it did not run
	for i, c := range clients {
		found := 0
		for id, k := range byN {
			mu.Lock()
			inst := ranOn[k]
			mu.Unlock()
			if inst == i || found >= 5 {
				continue
			}
			c.waitDone(id) // the queue stores a result just after its lead's record
			code, b := c.do("GET", "/v1/leads/"+id, "", nil)
			if st := decode[LeadStatus](t, b); code != 200 || st.State != "done" || st.Integration != "partner" {
				t.Fatalf("instance %d, lead %s run by %d: %d %s", i, id, inst, code, b)
			}
			found++
		}
		if found == 0 {
			t.Fatalf("instance %d ran every lead", i)
		}
	}
}

// waitClusterBatch polls GET /v1/batches/{id} until it is done (its leads
// ran); a 404 is an instance that has not applied the batch's begin yet.
func waitClusterBatch(t *testing.T, c client, id string) history.Batch {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, b := c.do("GET", "/v1/batches/"+id, "", nil)
		if code == 200 {
			if bt := decode[history.Batch](t, b); bt.Done {
				return bt
			}
		} else if code != 404 {
			t.Fatalf("GET /v1/batches/%s: %d %s", id, code, b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch not done 10s after its leads ran: %d %s", code, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// batchLeads pages through GET /v1/leads?batch=.
func batchLeads(t *testing.T, c client, batch string) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	q := url.Values{"batch": {batch}, "limit": {"100"}}
	for {
		code, b := c.do("GET", "/v1/leads?"+q.Encode(), "", nil)
		if code != 200 {
			t.Fatalf("GET /v1/leads: %d %s", code, b)
		}
		p := decode[history.Page](t, b)
		for _, r := range p.Records {
			if seen[r.ID] || r.Batch != batch {
				t.Fatalf("%s twice or not of the batch: %+v", r.ID, r)
			}
			seen[r.ID] = true
		}
		if p.Next == "" {
			return seen
		}
		q.Set("cursor", p.Next)
	}
}

// historyOps reads the history stream's messages first..last and counts, by
// id, the ops that carry nothing but an id: "batch notified" (a batch's
// id) and "lead started" (a lead's).
func historyOps(t *testing.T, st jetstream.Stream, first, last uint64) map[string]int {
	t.Helper()
	// one direct read a message: an ordered consumer's Fetch recreates its
	// consumer and could wait out its 5 s on a loaded machine
	out := map[string]int{}
	for seq := first; seq <= last; seq++ {
		m, err := st.GetMsg(t.Context(), seq)
		must(t, err)
		var op struct {
			L  string          `json:"l"`
			B  json.RawMessage `json:"b"`
			LS []string        `json:"ls"`
			R  json.RawMessage `json:"r"`
			A  json.RawMessage `json:"a"`
		}
		must(t, json.Unmarshal(m.Data, &op))
		if op.B == nil && op.LS == nil && op.R == nil && op.A == nil {
			out[op.L]++
		}
	}
	return out
}
