package serve

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/history"
	"github.com/plumbhq/plumb/internal/sandbox"
)

type batchAnswer struct {
	Accepted int        `json:"accepted"`
	Leads    []Accepted `json:"leads"`
	Batch    string     `json:"batch"`
}

// postBatch posts n leads as NDJSON (every 10th rejected by the partner).
func postBatch(t *testing.T, c client, from, n int, hdr ...string) batchAnswer {
	t.Helper()
	var body bytes.Buffer
	for i := from; i < from+n; i++ {
		email := fmt.Sprintf("l%d@ok.example", i)
		if i%10 == 0 {
			email = fmt.Sprintf("l%d@reject.example", i)
		}
		fmt.Fprintf(&body, `{"n":%d,"email":%q}`+"\n", i, email)
	}
	code, b := c.do("POST", "/v1/integrations/partner/leads", "application/x-ndjson", body.Bytes(), hdr...)
	if code != http.StatusAccepted {
		t.Fatalf("POST /leads: %d %s", code, b)
	}
	a := decode[batchAnswer](t, b)
	if a.Batch == "" || a.Accepted != n || len(a.Leads) != n {
		t.Fatalf("answer: batch %q, accepted %d, %d leads", a.Batch, a.Accepted, len(a.Leads))
	}
	return a
}

// waitBatch polls GET /v1/batches/{id} until it is done (bounded wait on
// a condition).
func waitBatch(t *testing.T, c client, id string) history.Batch {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		code, b := c.do("GET", "/v1/batches/"+id, "", nil)
		if code != 200 {
			t.Fatalf("GET /v1/batches/%s: %d %s", id, code, b)
		}
		bt := decode[history.Batch](t, b)
		if bt.Done {
			return bt
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch not done after 120s: %s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHistoryBatchQueryExport(t *testing.T) {
	t.Parallel()
	s, c, _ := setup(t)
	const n = 2000
	a := postBatch(t, c, 0, n, "X-Request-Id", "req-2000.a:b")
	bt := waitBatch(t, c, a.Batch)
	if bt.Total != n || bt.State["done"] != n || bt.State["queued"] != 0 || bt.State["running"] != 0 ||
		bt.Outcomes["success"] != n*9/10 || bt.Outcomes["failure"] != n/10 || bt.Integration != "partner" {
		t.Fatalf("batch = %+v", bt)
	}
	s.hist.Flush()

	// page through the batch while more leads arrive
	want := map[string]bool{}
	for _, l := range a.Leads {
		want[l.ID] = true
	}
	seen := map[string]bool{}
	q := url.Values{"batch": {a.Batch}, "limit": {"173"}}
	for page := 0; ; page++ {
		code, b := c.do("GET", "/v1/leads?"+q.Encode(), "", nil)
		if code != 200 {
			t.Fatalf("GET /v1/leads: %d %s", code, b)
		}
		p := decode[history.Page](t, b)
		for _, r := range p.Records {
			if seen[r.ID] || !want[r.ID] {
				t.Fatalf("page %d: %s is a duplicate or not of the batch", page, r.ID)
			}
			seen[r.ID] = true
			if r.Integration != "partner" || r.Source != history.SourceLeads || r.RequestID != "req-2000.a:b" ||
				len(r.Steps) != 1 || len(r.Steps[0].Tries) != 1 || r.Steps[0].Tries[0].Status != 200 || r.Finished.IsZero() {
				t.Fatalf("record = %+v", r)
			}
		}
		if page < 3 {
			postBatch(t, c, 10000+page*5, 5) // new leads while paging
		}
		if p.Next == "" {
			break
		}
		q.Set("cursor", p.Next)
	}
	if len(seen) != n {
		t.Fatalf("paged %d leads of %d", len(seen), n)
	}

	// the same query unfiltered by batch, still stable: the failures
	seen = map[string]bool{}
	q = url.Values{"integration": {"partner"}, "outcome": {"failure"}, "limit": {"1000"}}
	for {
		_, b := c.do("GET", "/v1/leads?"+q.Encode(), "", nil)
		p := decode[history.Page](t, b)
		for _, r := range p.Records {
			if r.Outcome != "failure" || seen[r.ID] {
				t.Fatalf("failure query gave %+v", r)
			}
			seen[r.ID] = true
		}
		if p.Next == "" {
			break
		}
		q.Set("cursor", p.Next)
	}
	if len(seen) < n/10 {
		t.Fatalf("%d failures, want at least %d", len(seen), n/10)
	}

	// the export streams every lead of the batch
	code, b := c.do("GET", "/v1/leads/export?batch="+a.Batch, "", nil)
	if code != 200 {
		t.Fatalf("export: %d %s", code, b)
	}
	got := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r history.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		got[r.ID] = true
	}
	if len(got) != n {
		t.Fatalf("export has %d leads, want %d", len(got), n)
	}

	// GET /v1/leads/{id} names the integration
	st := decode[struct {
		Integration string `json:"integration"`
	}](t, must2(c.do("GET", "/v1/leads/"+a.Leads[0].ID, "", nil)))
	if st.Integration != "partner" {
		t.Fatalf("GET /v1/leads/{id}: integration %q", st.Integration)
	}
	hs := s.hist.Stats()
	t.Logf("history: %d records in %d commits (fsyncs), %.2f per lead", hs.Written, hs.Commits, float64(hs.Commits)/float64(hs.Written))
}

func must2(_ int, b []byte) []byte { return b }

func TestHistoryRunAndBadQueries(t *testing.T) {
	t.Parallel()
	s, c, _ := setup(t)
	code, b := c.do("POST", "/v1/integrations/partner/run", "application/json", []byte(`{"n":1,"email":"a@ok.example"}`),
		"X-Request-Id", "bad id with spaces")
	if code != 200 {
		t.Fatalf("run: %d %s", code, b)
	}
	code, _ = c.do("POST", "/v1/integrations/partner/run", "application/json", []byte(`{"n":2,"email":"b@ok.example"}`),
		"X-Request-Id", "good-id")
	if code != 200 {
		t.Fatal(code)
	}
	s.hist.Flush()
	_, b = c.do("GET", "/v1/leads?q=GOOD-ID", "", nil)
	p := decode[history.Page](t, b)
	if len(p.Records) != 1 || p.Records[0].Source != history.SourceRun || p.Records[0].RequestID != "good-id" {
		t.Fatalf("q=good-id: %s", b)
	}
	_, b = c.do("GET", "/v1/leads?integration=partner", "", nil)
	if p := decode[history.Page](t, b); len(p.Records) != 2 || p.Records[1].RequestID != "" {
		t.Fatalf("integration=partner: %s", b)
	}
	for _, bad := range []string{"limit=0", "limit=1001", "since=yesterday", "cursor=!!", "q=" + strings.Repeat("x", 201), "outcome=bogus", "class=slow"} {
		if code, b := c.do("GET", "/v1/leads?"+bad, "", nil); code != 400 || errorCode(t, b) != CodeBadRequest {
			t.Errorf("%s: %d %s", bad, code, b)
		}
	}
	if code, _ := c.do("GET", "/v1/leads/export?cursor=!!", "", nil); code != 400 {
		t.Errorf("export with a bad cursor: %d", code)
	}
	if code, _ := c.do("GET", "/v1/batches/nope", "", nil); code != 404 {
		t.Errorf("unknown batch: %d", code)
	}
}

// waitRecords polls GET /v1/leads?query until it lists n records.
func waitRecords(t *testing.T, c client, query string, n int) []history.Record {
	t.Helper()
	var p history.Page
	waitFor(t, query, func() bool {
		code, b := c.do("GET", "/v1/leads?limit=1000&"+query, "", nil)
		if code != 200 {
			t.Fatalf("GET /v1/leads?%s: %d %s", query, code, b)
		}
		p = decode[history.Page](t, b)
		return len(p.Records) >= n
	}, func() string { return fmt.Sprintf("%d records", len(p.Records)) })
	if len(p.Records) != n {
		t.Fatalf("%s: %d records, want %d", query, len(p.Records), n)
	}
	return p.Records
}

// Webhook events and sync records are recorded too, under their source.
func TestHistoryWebhookAndSyncSources(t *testing.T) {
	t.Parallel()
	p := newPartner(t)
	dir := t.TempDir()
	writeHookIntegration(t, dir, p.URL)
	box := sandbox.New()
	srv := httptest.NewServer(box)
	t.Cleanup(srv.Close)
	copyExample(t, dir, "actuallycare-sync", srv.URL, func(s string) string {
		return strings.Replace(s, "    cron: \"0 2 * * *\"\n    timezone: America/New_York\n    jitter: 5m\n", "    every: 1h\n", 1)
	})
	s := testServer(t, Config{Dir: dir})
	c := client{t: t, base: "http://" + s.Addr()}
	code, b, err := post(c.base, "/v1/hooks/acare", event(3), hookSecret)
	must(t, err)
	if code != 200 {
		t.Fatalf("webhook: %d %s", code, b)
	}
	id := decode[HookAnswer](t, b).ID
	recs := waitRecords(t, c, "integration=acare", 1)
	if r := recs[0]; r.ID != id || r.Source != history.SourceWebhook || r.Outcome != "success" || len(r.Steps) != 1 || len(r.Steps[0].Tries) != 1 {
		t.Fatalf("webhook record = %+v", r)
	}
	c.waitSync("actuallycare-sync", ended)
	for _, r := range waitRecords(t, c, "integration=actuallycare-sync", 132) {
		if r.Source != history.SourceSync || r.Outcome == "" || len(r.Steps) == 0 {
			t.Fatalf("sync record = %+v", r)
		}
	}
}
