package serve

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/plumbhq/plumb/internal/queue"
)

// ndjson is n leads numbered from first, one per line.
func ndjson(first, n int) []byte {
	var b bytes.Buffer
	for i := first; i < first+n; i++ {
		fmt.Fprintf(&b, "{\"n\": %d, \"email\": \"lead%d@x.example\"}\n", i, i)
	}
	return b.Bytes()
}

// postWithin posts an NDJSON body of leads, failing the test if the answer
// takes longer than d (the bound only turns a hang into a failure).
func postWithin(t testing.TB, c client, d time.Duration, body []byte) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest("POST", c.base+"/v1/integrations/partner/leads", bytes.NewReader(body))
	must(t, err)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := (&http.Client{Timeout: d}).Do(req)
	if err != nil {
		t.Fatalf("POST /leads: no answer: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	return resp.StatusCode, b, resp.Header
}

// waitReady polls /readyz until it answers 200.
func waitReady(t testing.TB, c client) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, b := c.do("GET", "/readyz", "", nil)
		if code == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz %d %s after 60s", code, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fillStore fills the queue's JetStream storage with a filler stream until
// it refuses a write; the returned func deletes the stream.
func fillStore(t testing.TB, js jetstream.JetStream) (free func()) {
	t.Helper()
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FILLER", Subjects: []string{"filler"}}); err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("f"), 16<<10)
	for {
		if _, err := js.Publish(ctx, "filler", chunk); err != nil {
			if !strings.Contains(err.Error(), "insufficient") {
				t.Fatalf("filling the store: %v", err)
			}
			break
		}
	}
	return func() { must(t, js.DeleteStream(ctx, "FILLER")) }
}

// A full queue store: POST /leads answers 503 storage_unavailable (with
// Retry-After) at once, for a body of many leads too; /readyz, /v1/queue
// and the metrics say so; when space returns, the service takes leads
// again by itself.
func TestStorageFullAnswers503(t *testing.T) {
	t.Parallel()
	p := newPartner(t)
	dir := t.TempDir()
	writeIntegration(t, dir, p.URL)
	s := testServer(t, Config{Dir: dir, Queue: queue.Config{MaxFileStore: 2 << 20, MinFreeDisk: -1}})
	c := client{t: t, base: "http://" + s.Addr()}
	free := fillStore(t, s.Queue().JetStream())

	code, b, hdr := postWithin(t, c, 30*time.Second, ndjson(0, 500))
	if code != 503 || errorCode(t, b) != CodeStorage || hdr.Get("Retry-After") != storageRetryAfter {
		t.Fatalf("POST on a full store: %d %s %v", code, b, hdr)
	}
	if code, b := c.do("POST", "/v1/integrations/partner/leads", "application/json", []byte(`{"n": 1, "email": "a@x.example"}`)); code != 503 || errorCode(t, b) != CodeStorage {
		t.Fatalf("one lead on a full store: %d %s", code, b)
	}
	if code, b := c.do("GET", "/readyz", "", nil); code != 503 || !strings.Contains(string(b), "storage full") {
		t.Fatalf("/readyz on a full store: %d %s", code, b)
	}
	code, b = c.do("GET", "/v1/queue", "", nil)
	if qs := decode[queueState](t, b); code != 200 || qs.Depth != 0 || !strings.Contains(qs.Storage, "storage full") {
		t.Fatalf("/v1/queue on a full store: %d %s", code, b)
	}
	mf := scrape(t, c)
	if v := value(mf, "plumb_queue_storage_ok", nil); v != 0 {
		t.Errorf("plumb_queue_storage_ok %v, want 0", v)
	}

	free()
	waitReady(t, c)
	if code, b, _ := postWithin(t, c, 30*time.Second, ndjson(0, 3)); code != 202 {
		t.Fatalf("POST once space returned: %d %s", code, b)
	}
	if code, b := c.do("GET", "/v1/queue", "", nil); code != 200 || decode[queueState](t, b).Storage != "ok" {
		t.Errorf("/v1/queue once space returned: %d %s", code, b)
	}
}

// When the queue's store fills up, new leads are refused, but the leads
// it holds keep running and store their results — the records are not in
// JetStream's store — each reaching the partner once. (Results that find
// their own storage full are held: internal/queue's
// TestRecordsHeldWhileDiskFull and TestResultHeldWhileStorageFull.)
func TestResultsStoredWhileJobsStoreFull(t *testing.T) {
	t.Parallel()
	p := newPartner(t)
	entered := make(chan int, 6)
	release := make(chan struct{})
	p.hook = func(n int) {
		entered <- n
		<-release
	}
	dir := t.TempDir()
	writeIntegration(t, dir, p.URL)
	s := testServer(t, Config{Dir: dir, Concurrency: 4, Queue: queue.Config{MaxFileStore: 2 << 20, MinFreeDisk: -1}})
	c := client{t: t, base: "http://" + s.Addr()}
	code, b := c.do("POST", "/v1/integrations/partner/leads", "application/x-ndjson", ndjson(0, 6))
	if code != 202 {
		t.Fatalf("accept: %d %s", code, b)
	}
	acc := decode[accepted](t, b)
	for range 4 {
		<-entered
	}
	free := fillStore(t, s.Queue().JetStream())
	if code, b, _ := postWithin(t, c, 30*time.Second, ndjson(10, 1)); code != 503 || errorCode(t, b) != CodeStorage {
		t.Fatalf("POST on a full store: %d %s", code, b)
	}
	close(release)
	for _, l := range acc.Leads {
		if st := c.waitDone(l.ID); st.Result == nil || st.Result.Outcome != "success" {
			t.Fatalf("lead %s while the store was full: %+v", l.ID, st)
		}
	}
	if v := value(scrape(t, c), "plumb_queue_results_held", nil); v != 0 {
		t.Errorf("plumb_queue_results_held %v while the jobs store is full, want 0", v)
	}
	free()
	for n, k := range p.snapshot() {
		if k != 1 || n >= 6 {
			t.Errorf("lead %d reached the partner %d times, want leads 0-5 once", n, k)
		}
	}
}

// An Idempotency-Key reused with other leads is refused (422), nothing
// stored; the same leads again — in another key order and spacing — are
// duplicates; accepted counts only what a request stored.
func TestIdempotencyKeyReused(t *testing.T) {
	t.Parallel()
	s, c, p := setup(t)
	post := func(body string, key string) (int, []byte) {
		return c.do("POST", "/v1/integrations/partner/leads", "application/x-ndjson", []byte(body), "Idempotency-Key", key)
	}
	code, b := post("{\"n\": 1, \"email\": \"a@x.example\"}\n{\"n\": 2, \"email\": \"b@x.example\"}\n", "k1")
	first := decode[accepted](t, b)
	if code != 202 || first.Accepted != 2 {
		t.Fatalf("first: %d %s", code, b)
	}
	code, b = post("{\"email\":\"a@x.example\",\"n\":1}\n\n{ \"n\": 2, \"email\": \"b@x.example\" }\n", "k1")
	again := decode[accepted](t, b)
	if code != 202 || again.Accepted != 0 || len(again.Leads) != 2 || !again.Leads[0].Duplicate || again.Leads[1].ID != first.Leads[1].ID {
		t.Fatalf("same leads again: %d %s", code, b)
	}
	// sent again whole, the leads are answered with their first batch
	if again.Batch == "" || again.Batch != first.Batch {
		t.Errorf("same leads again: batch %q, want the first request's %q", again.Batch, first.Batch)
	}
	for _, body := range []string{
		"{\"n\": 3, \"email\": \"c@x.example\"}\n{\"n\": 2, \"email\": \"b@x.example\"}\n", // one lead changed
		"{\"n\": 1, \"email\": \"a@x.example\"}\n",                                         // one lead fewer
		"{\"n\": 1, \"email\": \"a@x.example\"}\n{\"n\": 2, \"email\": \"b@x.example\"}\n{\"n\": 4, \"email\": \"d@x.example\"}\n",
	} {
		code, b = post(body, "k1")
		if code != 422 || errorCode(t, b) != CodeIdemReused {
			t.Fatalf("k1 with other leads %q: %d %s, want 422 %s", body, code, b, CodeIdemReused)
		}
	}
	// a request refused before anything was stored leaves its key unused
	code, b = c.do("POST", "/v1/integrations/partner/leads?callback_url=https://hooks.example/x", "application/x-ndjson",
		[]byte("{\"n\": 6, \"email\": \"f@x.example\"}\n"), "Idempotency-Key", "k2")
	if code != 400 {
		t.Fatalf("a callback_url the integration does not allow: %d %s, want 400", code, b)
	}
	// another key is new leads
	code, b = post("{\"n\": 5, \"email\": \"e@x.example\"}\n", "k2")
	if code != 202 || decode[accepted](t, b).Accepted != 1 {
		t.Fatalf("another key: %d %s", code, b)
	}
	for _, l := range first.Leads {
		c.waitDone(l.ID)
	}
	st, err := s.Queue().Stats(context.Background())
	must(t, err)
	counts := p.snapshot()
	if counts[3] != 0 || counts[4] != 0 || st.Dead != 0 || st.Depth > 1 {
		t.Errorf("refused leads ran: partner %v, queue %+v", counts, st)
	}
}
