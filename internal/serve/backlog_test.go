package serve

import (
	"bytes"
	"compress/gzip"
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for Config.now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// postLeads posts an NDJSON body and returns the status, body and
// Retry-After.
func postLeads(t *testing.T, c client, body []byte) (int, []byte, string) {
	t.Helper()
	code, b, hdr := postWithin(t, c, 30*time.Second, body)
	return code, b, hdr.Get("Retry-After")
}

// With the partner stalled, a burst beyond --max-queue-depth is refused
// with 429 queue_behind and a Retry-After once the queue holds the limit
// (counted: the clock stands still, so the leads accepted since the last
// reading of the queue are what the service goes by); nothing refused is
// stored, nothing accepted is lost, and leads are taken again once the
// queue has drained.
func TestBackpressureDepth(t *testing.T) {
	t.Parallel()
	p := newPartner(t)
	g := newGate(0, 4) // the partner answers nothing until opened
	t.Cleanup(g.open)
	p.hook = g.hook
	dir := t.TempDir()
	writeIntegration(t, dir, p.URL)
	clock := &fakeClock{t: time.Now()}
	s := testServer(t, Config{Dir: dir, Concurrency: 4, MaxQueueDepth: 50, MaxQueueAge: -1, now: clock.now})
	c := client{t: t, base: "http://" + s.Addr()}
	var ids []string
	for body := 0; body < 5; body++ {
		code, b, _ := postLeads(t, c, ndjson(body*10, 10))
		if code != 202 {
			t.Fatalf("body %d (%d leads accepted before): %d %s", body, len(ids), code, b)
		}
		for _, l := range decode[accepted](t, b).Leads {
			ids = append(ids, l.ID)
		}
	}
	code, b, retry := postLeads(t, c, ndjson(50, 10))
	if code != 429 || errorCode(t, b) != CodeQueueBehind {
		t.Fatalf("a body past the depth limit: %d %s, want 429 %s", code, b, CodeQueueBehind)
	}
	if n, err := strconv.Atoi(retry); err != nil || n < 1 || n > maxRetryAfter {
		t.Errorf("Retry-After %q, want 1..%d seconds", retry, maxRetryAfter)
	}
	if code, b := c.do("POST", "/v1/integrations/partner/leads", "application/json", []byte(`{"n": 60, "email": "x@x.example"}`)); code != 429 {
		t.Fatalf("one lead past the depth limit: %d %s", code, b)
	}
	if v := value(scrape(t, c), "plumb_serve_leads_refused_total", map[string]string{"reason": CodeQueueBehind}); v != 11 {
		t.Errorf("plumb_serve_leads_refused_total %v, want 11", v)
	}

	g.open() // the partner answers again
	for _, id := range ids {
		if st := c.waitDone(id); st.Result == nil || st.Result.Outcome != "success" {
			t.Fatalf("accepted lead %s: %+v", id, st)
		}
	}
	counts := p.snapshot()
	for n := range 61 {
		if want := map[bool]int{true: 1, false: 0}[n < 50]; counts[n] != want {
			t.Errorf("lead %d reached the partner %d times, want %d", n, counts[n], want)
		}
	}
	clock.add(backlogFresh) // the next request reads the queue again: empty
	if code, b, _ := postLeads(t, c, ndjson(70, 10)); code != 202 {
		t.Fatalf("a body once the queue drained: %d %s", code, b)
	}
}

// A lead that has waited --max-queue-age without starting puts the queue
// behind: POST /leads answers 429 queue_behind until it has drained.
// GET /v1/queue and /metrics show the oldest lead's age.
func TestBackpressureAge(t *testing.T) {
	t.Parallel()
	p := newPartner(t)
	g := newGate(0, 2)
	t.Cleanup(g.open)
	p.hook = g.hook
	dir := t.TempDir()
	writeIntegration(t, dir, p.URL)
	clock := &fakeClock{t: time.Now()}
	s := testServer(t, Config{Dir: dir, Concurrency: 2, MaxQueueDepth: -1, MaxQueueAge: time.Minute, now: clock.now})
	c := client{t: t, base: "http://" + s.Addr()}
	code, b, _ := postLeads(t, c, ndjson(0, 10))
	if code != 202 {
		t.Fatalf("accept: %d %s", code, b)
	}
	ids := decode[accepted](t, b).Leads
	<-g.full // two leads run, eight wait
	clock.add(2 * time.Minute)
	code, b, retry := postLeads(t, c, ndjson(10, 1))
	if code != 429 || errorCode(t, b) != CodeQueueBehind || retry == "" {
		t.Fatalf("POST with the oldest waiting lead 2m old: %d %s (Retry-After %q), want 429 %s", code, b, retry, CodeQueueBehind)
	}
	code, b = c.do("GET", "/v1/queue", "", nil)
	qs := decode[struct {
		Pending int     `json:"pending"`
		Age     float64 `json:"oldest_pending_age_seconds"`
		MaxAge  int     `json:"max_age_seconds"`
	}](t, b)
	if code != 200 || qs.Pending != 8 || qs.Age < 100 || qs.MaxAge != 60 {
		t.Errorf("/v1/queue: %d %s, want 8 pending, the oldest about 120s", code, b)
	}
	if v := value(scrape(t, c), "plumb_queue_oldest_pending_age_seconds", nil); v <= 0 {
		t.Errorf("plumb_queue_oldest_pending_age_seconds %v, want > 0 with leads waiting", v)
	}
	g.open()
	for _, l := range ids {
		c.waitDone(l.ID)
	}
	clock.add(backlogFresh)
	if code, b, _ := postLeads(t, c, ndjson(20, 1)); code != 202 {
		t.Fatalf("POST once drained: %d %s", code, b)
	}
}

func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		n    int
		rate float64
		want int
	}{{10, 0, maxRetryAfter}, {10, 100, 1}, {1000, 100, 10}, {1001, 100, 11}, {100000, 100, maxRetryAfter}} {
		if got := retryAfter(tc.n, tc.rate); got != tc.want {
			t.Errorf("retryAfter(%d, %v) = %d, want %d", tc.n, tc.rate, got, tc.want)
		}
	}
}

// Leads admitted under the depth limit count against it before they are
// stored, so requests admitted together cannot pass it together; a body
// that would pass the limit is refused whole, and an admission given up
// (nothing stored) frees its room. The clock stands still: no reading of
// the queue resets the count.
func TestBackpressureAdmitsBodiesInFlight(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeIntegration(t, dir, "http://127.0.0.1:1")
	clock := &fakeClock{t: time.Now()}
	s := testServer(t, Config{Dir: dir, MaxQueueDepth: 20, MaxQueueAge: -1, now: clock.now})
	ctx, q := context.Background(), s.q.Load()
	var dones []func(int)
	for range 4 { // four requests of 5 leads, admitted, none stored yet
		done, ref := s.admit(ctx, q, 5)
		if ref != nil {
			t.Fatalf("admission %d: %s", len(dones)+1, ref.why)
		}
		dones = append(dones, done)
	}
	if _, ref := s.admit(ctx, q, 1); ref == nil {
		t.Fatal("a lead past 20 admitted while 4 bodies of 5 are in flight")
	}
	dones[0](5) // stored: still counted, until the queue is read again
	dones[1](0) // given up: its room is free
	dones[1](0) // a second call changes nothing
	if _, ref := s.admit(ctx, q, 6); ref == nil {
		t.Fatal("6 leads admitted with 15 counted and a limit of 20")
	}
	done, ref := s.admit(ctx, q, 5)
	if ref != nil {
		t.Fatalf("5 leads with 15 counted and a limit of 20: %s", ref.why)
	}
	done(0)
}

// A body of more leads than --max-body-leads, or than --max-queue-depth
// (the queue could never take it), is refused whole with 413; a body with
// a Content-Encoding is refused with 415, not read as JSON that does not
// parse. Nothing of them is stored.
func TestBodyLeadsBounded(t *testing.T) {
	t.Parallel()
	p := newPartner(t)
	dir := t.TempDir()
	writeIntegration(t, dir, p.URL)
	s := testServer(t, Config{Dir: dir, MaxBodyLeads: 7, MaxQueueDepth: 100})
	c := client{t: t, base: "http://" + s.Addr()}
	if code, b := c.do("POST", "/v1/integrations/partner/leads", "application/x-ndjson", ndjson(0, 8)); code != 413 ||
		errorCode(t, b) != CodeTooLarge || !strings.Contains(string(b), "--max-body-leads") {
		t.Fatalf("8 leads with --max-body-leads 7: %d %s", code, b)
	}
	if code, b := c.do("POST", "/v1/integrations/partner/leads", "application/x-ndjson", ndjson(10, 7)); code != 202 {
		t.Fatalf("7 leads: %d %s", code, b)
	}
	small := testServer(t, Config{Dir: dir, MaxBodyLeads: 7, MaxQueueDepth: 3})
	cs := client{t: t, base: "http://" + small.Addr()}
	if code, b := cs.do("POST", "/v1/integrations/partner/leads", "application/x-ndjson", ndjson(20, 4)); code != 413 ||
		!strings.Contains(string(b), "--max-queue-depth") {
		t.Fatalf("4 leads with --max-queue-depth 3: %d %s", code, b)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"n": 30, "email": "z@x.example"}`))
	zw.Close()
	for _, route := range []string{"leads", "run"} {
		code, b := c.do("POST", "/v1/integrations/partner/"+route, "application/json", gz.Bytes(), "Content-Encoding", "gzip")
		if code != 415 || errorCode(t, b) != CodeContentType || !strings.Contains(string(b), "uncompressed") {
			t.Errorf("%s, gzip: %d %s, want 415 %s", route, code, b, CodeContentType)
		}
	}
	drained(t, c)
	if counts := p.snapshot(); len(counts) != 7 || counts[0] != 0 || counts[20] != 0 || counts[30] != 0 {
		t.Errorf("partner saw %v, want leads 10-16 only", counts)
	}
}
