package source_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/sandbox"
	"github.com/plumbhq/plumb/source"
)

var example = filepath.Join("..", "examples", "actuallycare-sync", "integration.yaml")

// noWait is a clock whose waits take no time (backoff of retried CRM
// writes), so tests do not sleep.
type noWait struct{}

func (noWait) Now() time.Time                                   { return time.Now() }
func (noWait) Sleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

// harness is the example integration (or a variant of its source:
// section) bound to a sandbox.
type harness struct {
	t     *testing.T
	sb    *sandbox.Sandbox
	ac    *sandbox.ActuallyCare
	srv   *httptest.Server
	url   string
	file  string
	state string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	sb := sandbox.New()
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	return &harness{t: t, sb: sb, ac: sb.ActuallyCare(), srv: srv, url: srv.URL, file: example, state: filepath.Join(t.TempDir(), "sync.db")}
}

// withSource replaces the example's source: section by src.
func (h *harness) withSource(src string) *harness {
	h.t.Helper()
	b, err := os.ReadFile(example)
	if err != nil {
		h.t.Fatal(err)
	}
	s := string(b)
	i, j := strings.Index(s, "\nsource:\n"), strings.Index(s, "\n# Each lead then runs")
	s = s[:i+1] + src + s[j:]
	h.file = filepath.Join(h.t.TempDir(), "integration.yaml")
	if err := os.WriteFile(h.file, []byte(s), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return h
}

type run struct {
	rep     *source.Report
	results []*engine.Result
	recs    []source.Record
}

func (h *harness) sync(opt source.Options, opts ...engine.Option) run {
	h.t.Helper()
	r, spec := h.bind(opts...)
	st, err := source.OpenStore(h.state)
	if err != nil {
		h.t.Fatal(err)
	}
	defer st.Close()
	var out run
	out.rep, err = source.Sync(context.Background(), r, spec, st, opt, func(rec source.Record, res *engine.Result) error {
		out.results = append(out.results, res)
		out.recs = append(out.recs, rec)
		return nil
	})
	if err != nil {
		h.t.Fatalf("sync: %v", err)
	}
	return out
}

// bind loads the integration: its runner (closed at the end of the test)
// and its source.
func (h *harness) bind(opts ...engine.Option) (*engine.Runner, *source.Spec) {
	h.t.Helper()
	if h.srv != nil {
		opts = append([]engine.Option{engine.WithHTTPClient(h.srv.Client())}, opts...)
	}
	plan, err := engine.Load(h.file, opts...)
	if err != nil {
		h.t.Fatalf("load:\n%v", err)
	}
	r, err := plan.Bind(engine.Config{Values: map[string]any{"api_key": sandbox.APIKey, "crm_key": sandbox.APIKey, "base_url": h.url}})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { r.Close(context.Background()) })
	spec, err := source.Compile(plan)
	if err != nil {
		h.t.Fatal(err)
	}
	return r, spec
}

func (h *harness) pageRequests() int { return h.ac.Requests()["GET /v1/leads"] }

// noDuplicates checks the CRM created every contact once at most.
func (h *harness) noDuplicates() {
	h.t.Helper()
	for email, n := range h.ac.Creates() {
		if n > 1 {
			h.t.Errorf("CRM created %s %d times", email, n)
		}
	}
}

func outcomes(rs []*engine.Result) map[engine.Outcome]int {
	m := map[engine.Outcome]int{}
	for _, r := range rs {
		m[r.Outcome]++
	}
	return m
}

// TestSyncPages: 132 leads, 25 a page: exactly 6 page requests, the sync
// stops on hasMore false, every lead reaches the CRM once and gets its
// status written back.
func TestSyncPages(t *testing.T) {
	h := newHarness(t)
	out := h.sync(source.Options{})
	if got := h.pageRequests(); got != 6 {
		t.Errorf("%d page requests, want 6", got)
	}
	if out.rep.Ended != "complete" || out.rep.Err != nil || out.rep.Pages != 6 || out.rep.Records != 132 || len(out.results) != 132 {
		t.Fatalf("report %+v, %d results", out.rep, len(out.results))
	}
	if o := outcomes(out.results); o[engine.Success] != 131 || o[engine.Failure] != 1 {
		t.Errorf("outcomes %v, want 131 success and 1 failure (%s)", o, sandbox.InvalidCRMEmail)
	}
	if n := h.ac.Contacts(); n != 131 {
		t.Errorf("CRM holds %d contacts, want 131", n)
	}
	h.noDuplicates()
	if h.ac.Status(1) != "synced" || h.ac.Status(132) != "synced" {
		t.Errorf("write-back: lead 1 %q, lead 132 %q", h.ac.Status(1), h.ac.Status(132))
	}
	for i, q := range h.ac.PageQueries() {
		if q.Get("page") != string(rune('1'+i)) || q.Get("limit") != "25" || q.Get("updated_since") != "2025-01-01T00:00:00Z" {
			t.Errorf("page request %d: %v", i+1, q)
		}
	}
	if out.rep.State.Cursor != "2026-01-06T11:00:00.000Z" || out.rep.State.Resume != nil {
		t.Errorf("state %+v", out.rep.State)
	}
}

// TestPaginationStyles: every kind of pagination reads all 132 leads once.
func TestPaginationStyles(t *testing.T) {
	const req = `  request:
    url: "{{settings.base_url}}/v1/leads?%s"
    headers: { X-API-Key: "{{settings.api_key}}" }
  capture:
    has_more: { json: data.meta.hasMore, type: bool }
  records: { json: data.leads }
`
	for _, c := range []struct {
		name, query, paginate string
		requests              int
	}{
		{"page+stop_when", "page={{page.number}}&limit={{page.size}}", "  paginate: { type: page, size: 25 }\n  stop_when: captured.has_more == false\n", 6},
		{"page, empty page", "page={{page.number}}&limit={{page.size}}", "  paginate: { type: page, size: 25 }\n", 7},
		{"offset", "offset={{page.offset}}&limit={{page.limit}}", "  paginate: { type: offset, size: 25 }\n", 7},
		{"cursor", "limit=25&cursor={{page.cursor}}", "  paginate: { type: cursor, cursor: { json: data.meta.nextCursor } }\n", 6},
		{"next_url", "limit=25", "  paginate: { type: next_url, next: { json: data.meta.next } }\n", 6},
		{"link", "limit=25", "  paginate: { type: link }\n", 6},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t).withSource("source:\n" + strings.Replace(req, "%s", c.query, 1) + c.paginate)
			out := h.sync(source.Options{})
			if out.rep.Err != nil || out.rep.Ended != "complete" || len(out.results) != 132 {
				t.Fatalf("report %+v (%v), %d results", out.rep, out.rep.Err, len(out.results))
			}
			if got := h.pageRequests(); got != c.requests {
				t.Errorf("%d page requests, want %d", got, c.requests)
			}
			if n := h.ac.Contacts(); n != 131 {
				t.Errorf("CRM holds %d contacts, want 131", n)
			}
			h.noDuplicates()
		})
	}
}

// TestLoopingCursor: a page naming the cursor that led to it is an error
// after one repeat, never a loop; so is a page parameter the API ignores.
func TestLoopingCursor(t *testing.T) {
	h := newHarness(t).withSource(`source:
  request:
    url: "{{settings.base_url}}/v1/leads?limit=25&cursor={{page.cursor}}"
    headers: { X-API-Key: "{{settings.api_key}}" }
  records: { json: data.leads }
  paginate: { type: cursor, cursor: { json: data.meta.nextCursor } }
`)
	h.ac.SetLoopingCursor(true)
	out := h.sync(source.Options{})
	if !errors.Is(out.rep.Err, source.ErrLoop) || out.rep.Ended != "error" {
		t.Fatalf("want a loop error, got %+v (%v)", out.rep, out.rep.Err)
	}
	if got := h.pageRequests(); got != 2 {
		t.Errorf("%d page requests, want 2 (the cursor repeated once)", got)
	}
	// the first page was handled and saved; the loop was not followed
	if len(out.results) != 25 || out.rep.Committed != 1 {
		t.Errorf("%d results, %d pages saved", len(out.results), out.rep.Committed)
	}

	// an API that ignores the page parameter answers page 1 again
	h = newHarness(t).withSource(`source:
  request:
    url: "{{settings.base_url}}/v1/leads?limit=25&p={{page.number}}"
    headers: { X-API-Key: "{{settings.api_key}}" }
  records: { json: data.leads }
  key: id
  paginate: { type: page }
`)
	out = h.sync(source.Options{})
	if !errors.Is(out.rep.Err, source.ErrLoop) || h.pageRequests() != 2 || !strings.Contains(out.rep.Err.Error(), "same records as page 1") {
		t.Fatalf("ignored page parameter: %+v (%v), %d requests", out.rep, out.rep.Err, h.pageRequests())
	}
}

// TestRetryAfter: a 429 makes the sync wait at least Retry-After before
// the next page request, measured by the partner.
func TestRetryAfter(t *testing.T) {
	h := newHarness(t)
	h.ac.SetBudget(2, time.Second)
	out := h.sync(source.Options{})
	if out.rep.Err != nil || len(out.results) != 132 {
		t.Fatalf("report %+v (%v)", out.rep, out.rep.Err)
	}
	gaps := h.ac.RetryGaps()
	if len(gaps) == 0 {
		t.Fatal("the sandbox answered no 429")
	}
	for _, g := range gaps {
		if g < time.Second {
			t.Errorf("the next page request came %s after a 429 with Retry-After: 1", g)
		}
	}
}

// TestIncremental: a second sync without changes makes one request and
// runs no record; a lead edited since is the only one the third sync runs.
func TestIncremental(t *testing.T) {
	h := newHarness(t)
	h.sync(source.Options{})
	before := h.pageRequests()
	out := h.sync(source.Options{})
	if got := h.pageRequests() - before; got != 1 || len(out.results) != 0 || out.rep.Ended != "complete" {
		t.Fatalf("second sync: %d requests, %d records, %+v", got, len(out.results), out.rep)
	}
	q := h.ac.PageQueries()
	if since := q[len(q)-1].Get("updated_since"); since != "2026-01-06T11:00:00.000Z" {
		t.Errorf("second sync asked for updated_since=%s", since)
	}
	h.ac.Touch(5)
	out = h.sync(source.Options{})
	if len(out.results) != 1 || out.results[0].Lead["email"] != "lead005@actuallycare.example" {
		t.Fatalf("third sync ran %d records", len(out.results))
	}
	// its data is the CRM's already (Touch moves updatedAt only): neither
	// created nor updated again — check before you create, and write
	if out.results[0].Steps[2].Outcome != engine.Skip || out.results[0].Steps[1].Outcome != engine.Skip {
		t.Errorf("an edited lead whose data the CRM holds is not written again: %+v", out.results[0].Steps)
	}
	h.noDuplicates()
	// --from starts over from an older cursor; the saved one does not go back
	out = h.sync(source.Options{From: "2026-01-06T00:00:00Z"})
	if len(out.results) != 12 || out.rep.State.Cursor != "2026-01-06T13:00:00.000Z" {
		t.Errorf("--from: %d records, cursor %v", len(out.results), out.rep.State.Cursor)
	}
	h.noDuplicates()
}

// TestLookback: the next sync reads the saved cursor minus lookback.
func TestLookback(t *testing.T) {
	h := newHarness(t)
	b, _ := os.ReadFile(example)
	src := string(b)
	src = src[strings.Index(src, "\nsource:\n")+1 : strings.Index(src, "\n# Each lead then runs")]
	h.withSource(strings.Replace(src, `start: "2025-01-01T00:00:00Z" }`, `start: "2025-01-01T00:00:00Z", lookback: 2h }`, 1))
	h.sync(source.Options{})
	out := h.sync(source.Options{})
	q := h.ac.PageQueries()
	if since := q[len(q)-1].Get("updated_since"); since != "2026-01-06T09:00:00.000Z" || len(out.results) != 2 {
		t.Errorf("updated_since=%s, %d records; want 2 hours back and the 2 leads in them", since, len(out.results))
	}
	h.noDuplicates()
}

// TestErroredRecordsRetried: records whose steps ended in error are kept
// and run again, first, by the next sync.
func TestErroredRecordsRetried(t *testing.T) {
	h := newHarness(t)
	h.ac.SetCRMDown("lead003@actuallycare.example", "lead030@actuallycare.example")
	out := h.sync(source.Options{}, engine.WithClock(noWait{}))
	if out.rep.Errors != 2 || out.rep.Pending != 2 || out.rep.Ended != "complete" {
		t.Fatalf("first sync: %+v", out.rep)
	}
	h.ac.SetCRMDown()
	before := h.pageRequests()
	out = h.sync(source.Options{}, engine.WithClock(noWait{}))
	if out.rep.Retried != 2 || out.rep.Errors != 0 || out.rep.Pending != 0 || out.rep.Records != 0 {
		t.Fatalf("second sync: %+v", out.rep)
	}
	if got := h.pageRequests() - before; got != 1 {
		t.Errorf("second sync: %d page requests, want 1", got)
	}
	if !out.recs[0].Retry || out.results[0].Lead["email"] != "lead003@actuallycare.example" || out.results[1].Lead["email"] != "lead030@actuallycare.example" {
		t.Errorf("retried: %+v", out.recs)
	}
	if n := h.ac.Contacts(); n != 131 {
		t.Errorf("CRM holds %d contacts, want 131", n)
	}
	h.noDuplicates()
}

// TestStopAfterPage: Options.Stop ends the sync after the page being
// worked on, with its state saved; the next sync goes on from there.
func TestStopAfterPage(t *testing.T) {
	h := newHarness(t)
	stop := make(chan struct{})
	out := h.sync(source.Options{Stop: stop, OnPage: func(p source.PageInfo) {
		if p.Number == 2 {
			close(stop)
		}
	}})
	if out.rep.Ended != "stopped" || out.rep.State.Resume == nil || len(out.results) != 50 || out.rep.Committed != 2 {
		t.Fatalf("stopped sync: %+v, %d results", out.rep, len(out.results))
	}
	out = h.sync(source.Options{})
	if q := h.ac.PageQueries(); q[2].Get("page") != "3" || len(out.results) != 82 || out.rep.Ended != "complete" {
		t.Fatalf("resumed at page %s, %d results", q[2].Get("page"), len(out.results))
	}
	h.noDuplicates()
}

// TestMaxPages: max_pages ends a sync; the next one goes on.
func TestMaxPages(t *testing.T) {
	h := newHarness(t)
	b, _ := os.ReadFile(example)
	src := string(b)
	src = src[strings.Index(src, "\nsource:\n")+1 : strings.Index(src, "\n# Each lead then runs")]
	h.withSource(strings.Replace(src, "max_pages: 1000", "max_pages: 4", 1))
	out := h.sync(source.Options{})
	if out.rep.Ended != "max_pages" || len(out.results) != 100 || h.pageRequests() != 4 {
		t.Fatalf("%+v, %d results", out.rep, len(out.results))
	}
	out = h.sync(source.Options{})
	if out.rep.Ended != "complete" || len(out.results) != 32 || h.pageRequests() != 6 {
		t.Fatalf("%+v, %d results", out.rep, len(out.results))
	}
}

// TestPageError: a page that cannot be fetched ends the sync in error;
// the pages before it are saved.
func TestPageError(t *testing.T) {
	h := newHarness(t)
	h.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("page") == "3" {
			http.Error(w, "nope", http.StatusForbidden)
			return
		}
		h.sb.ServeHTTP(w, r)
	})
	out := h.sync(source.Options{})
	if out.rep.Ended != "error" || !strings.Contains(out.rep.Err.Error(), "page 3") || out.rep.State.Resume == nil || out.rep.Committed != 2 {
		t.Fatalf("%+v (%v)", out.rep, out.rep.Err)
	}
}

// TestRate: rate: 10/s spaces page requests 100 ms apart, as the partner
// sees them (a lower bound only).
func TestRate(t *testing.T) {
	h := newHarness(t)
	b, _ := os.ReadFile(example)
	src := string(b)
	src = src[strings.Index(src, "\nsource:\n")+1 : strings.Index(src, "\n# Each lead then runs")]
	h.withSource(strings.Replace(src, "rate: 20/s", "rate: 10/s", 1))
	var (
		mu    sync.Mutex
		times []time.Time
	)
	h.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/v1/leads" {
			mu.Lock()
			times = append(times, time.Now())
			mu.Unlock()
		}
		h.sb.ServeHTTP(w, r)
	})
	out := h.sync(source.Options{})
	mu.Lock()
	defer mu.Unlock()
	if out.rep.Ended != "complete" || len(times) != 6 {
		t.Fatalf("%+v, %d page requests", out.rep, len(times))
	}
	// the limiter spaces the sends by 100 ms: 5 gaps take at least 500 ms
	// (arrival jitter moves single gaps, not the span; 40 ms allowed)
	if span := times[len(times)-1].Sub(times[0]); span < 460*time.Millisecond {
		t.Errorf("6 page requests with rate: 10/s spanned %s", span)
	}
}

// TestStopWhenResponse: stop_when may read the response itself.
func TestStopWhenResponse(t *testing.T) {
	h := newHarness(t).withSource(`source:
  request:
    url: "{{settings.base_url}}/v1/leads?page={{page.number}}&limit=25"
    headers: { X-API-Key: "{{settings.api_key}}" }
  records: { json: data.leads }
  paginate: { type: page }
  stop_when: response.status == 200 && response.body.data.meta.hasMore == false
`)
	out := h.sync(source.Options{})
	if out.rep.Ended != "complete" || len(out.results) != 132 || h.pageRequests() != 6 {
		t.Fatalf("%+v, %d results, %d requests", out.rep, len(out.results), h.pageRequests())
	}
}

// TestConcurrency: records of a page run at once and still come in order;
// the state is saved per page all the same.
func TestConcurrency(t *testing.T) {
	h := newHarness(t)
	out := h.sync(source.Options{Concurrency: 8})
	if out.rep.Ended != "complete" || len(out.results) != 132 || out.rep.Committed != 6 || h.pageRequests() != 6 {
		t.Fatalf("%+v, %d results", out.rep, len(out.results))
	}
	for i, r := range out.recs {
		if r.Index != i+1 || r.Page != i/25+1 {
			t.Fatalf("record %d: %+v", i+1, r)
		}
	}
	h.noDuplicates()
}

// A runner bound from another integration cannot run the source: its steps
// would get records they were never written for.
func TestSyncRefusesAnotherIntegrationsRunner(t *testing.T) {
	h := newHarness(t)
	plan, err := engine.Load(h.file)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := source.Compile(plan)
	if err != nil {
		t.Fatal(err)
	}
	other, err := engine.Load(filepath.Join("..", "examples", "blacklist", "integration.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := other.Bind(engine.Config{Values: map[string]any{"api_key": sandbox.APIKey, "base_url": h.url}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	st, err := source.OpenStore(h.state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = source.Sync(context.Background(), r, spec, st, source.Options{}, func(source.Record, *engine.Result) error {
		t.Error("a record ran")
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "bind the plan of the file the source was compiled from") {
		t.Fatalf("err = %v", err)
	}
	if n := h.pageRequests(); n != 0 {
		t.Errorf("%d page requests, want none", n)
	}
}
