package engine

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestFetchPage: the source request reads state and page, runs with the
// source's retry rules, captures from the answer, and follows a next link
// only on its own origin.
func TestFetchPage(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(429)
			return
		}
		fmt.Fprintf(w, `{"data":[{"id":1}],"hasMore":true,"got":%q}`, r.URL.RawQuery)
	}))
	defer srv.Close()
	src := `version: 1
name: src
settings: { base_url: {} }
source:
  request: { url: "{{settings.base_url}}/v1/leads?since={{state.cursor}}&page={{page.number}}" }
  capture: { more: { json: hasMore }, got: { json: got } }
  paginate: { type: page }
steps:
  - name: s
    request: { url: "{{settings.base_url}}/x" }
`
	p, err := Parse("src.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Bind(Config{Values: map[string]any{"base_url": srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	pg := r.FetchPage(context.Background(), map[string]any{"cursor": "2026-01-01T00:00:00Z"}, map[string]any{"number": 3}, "")
	if pg.Outcome != Success || pg.Attempts != 2 || pg.Captured["more"] != true || pg.Captured["got"] != "since=2026-01-01T00%3A00%3A00Z&page=3" {
		t.Fatalf("page: %+v", pg)
	}
	if pg := r.FetchPage(context.Background(), map[string]any{"cursor": ""}, map[string]any{"number": 4}, "/v1/leads?cursor=abc"); pg.Outcome != Success || !strings.Contains(fmt.Sprint(pg.Captured["got"]), "cursor=abc") {
		t.Fatalf("relative next link: %+v", pg)
	}
	before := calls.Load()
	if pg := r.FetchPage(context.Background(), map[string]any{"cursor": ""}, map[string]any{"number": 4}, "http://127.0.0.2:1/steal"); pg.Outcome != Error || calls.Load() != before {
		t.Fatalf("cross-origin next link: %+v", pg)
	}
	// state and page are only for the source
	bad := strings.Replace(src, `url: "{{settings.base_url}}/x"`, `url: "{{settings.base_url}}/x?c={{state.cursor}}"`, 1)
	if _, err := Parse("src.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), "state is not available here") {
		t.Fatalf("state in a step: %v", err)
	}
}

// pageBudget is a rate budget that counts its waits and refuses after
// allow of them.
type pageBudget struct {
	waits atomic.Int32
	allow int32
}

func (b *pageBudget) Wait(context.Context) error {
	if b.waits.Add(1) > b.allow {
		return errors.New("no budget left")
	}
	return nil
}

// TestFetchPageRate: a page request waits for the source's rate: budget,
// made with Config.RateLimiter (named integration/source/pages, a bucket
// of one), once a page whatever its retries; a budget refused sends
// nothing and the page is a limit error. A source without rate: waits
// for none.
func TestFetchPageRate(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(429)
			return
		}
		fmt.Fprint(w, `[]`)
	}))
	defer srv.Close()
	src := `version: 1
name: paged
settings: { base_url: {} }
source:
  name: leads
  request: { url: "{{settings.base_url}}/v1/leads" }
  rate: 2/s
steps:
  - name: s
    request: { url: "{{settings.base_url}}/x" }
`
	for _, withRate := range []bool{true, false} {
		text := src
		if !withRate {
			text = strings.Replace(src, "  rate: 2/s\n", "", 1)
		}
		p, err := Parse("src.yaml", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		b := &pageBudget{allow: 1}
		asked := map[string]string{}
		r, err := p.Bind(Config{Values: map[string]any{"base_url": srv.URL}, RateLimiter: func(name string, perSecond float64, burst int) RateLimiter {
			asked[name] = fmt.Sprintf("%g/s burst %d", perSecond, burst)
			return b
		}})
		if err != nil {
			t.Fatal(err)
		}
		calls.Store(0)
		pg := r.FetchPage(context.Background(), nil, nil, "")
		if pg.Outcome != Success || pg.Attempts != 2 {
			t.Fatalf("rate %v: first page %+v", withRate, pg)
		}
		pg = r.FetchPage(context.Background(), nil, nil, "")
		r.Close(context.Background())
		if !withRate {
			if len(asked) != 0 || b.waits.Load() != 0 || pg.Outcome != Success {
				t.Errorf("no rate: asked %v, %d waits, second page %+v", asked, b.waits.Load(), pg)
			}
			continue
		}
		if asked["paged/leads/pages"] != "2/s burst 1" || len(asked) != 1 {
			t.Errorf("budgets asked for: %v", asked)
		}
		if b.waits.Load() != 2 || pg.Outcome != Error || pg.Class != ClassLimit || calls.Load() != 2 || !strings.Contains(pg.Reason, "rate: budget: no budget left") {
			t.Errorf("%d waits, %d requests, second page %+v", b.waits.Load(), calls.Load(), pg)
		}
	}
}

// TestSourceLoadErrors: what a sync would trip over is a load error at its
// place: a records: xpath or a pagination locator that does not compile,
// a page.* or state.* field the sync never sets, the lead root in the
// source's request, and in stop_when a root it is not given.
func TestSourceLoadErrors(t *testing.T) {
	const src = `version: 1
name: s
settings: { base_url: {} }
source:
  request:
    url: "{{settings.base_url}}/v1/leads"
    query: { page: "{{page.number}}", limit: "{{page.size}}", since: "{{state.cursor}}" }
  capture: { more: { json: more } }
  records: { json: data.leads }
  paginate: { type: page, size: 25 }
  stop_when: captured.more == false && page.number < 9 && state.cursor != "" && response.status == 200
steps:
  - name: a
    request: { url: "{{settings.base_url}}/x" }
`
	if _, err := Parse("s.yaml", []byte(src)); err != nil {
		t.Fatalf("a good source: %v", err)
	}
	for _, c := range []struct{ from, to, want string }{
		{`records: { json: data.leads }`, `records: { xpath: "//Lead[" }`, `s.yaml:9:12: source: records: xpath "//Lead[": `},
		{`paginate: { type: page, size: 25 }`, `paginate: { type: cursor, cursor: { xpath: "//n[" } }`, `s.yaml:10:37: source: paginate: xpath "//n[": `},
		{`{{page.size}}`, `{{page.sise}}`, `s.yaml:7:46: unknown field page.sise (paginate type page sets number, size)`},
		{`paginate: { type: page, size: 25 }`, `paginate: { type: page }`, `s.yaml:7:46: unknown field page.size (paginate type page sets number)`},
		{`paginate: { type: page, size: 25 }`, `paginate: { type: cursor, cursor: { json: next } }`, `s.yaml:7:20: unknown field page.number (paginate type cursor sets cursor)`},
		{`paginate: { type: page, size: 25 }`, `max_pages: 3`, `s.yaml:7:20: unknown field page.number (without paginate: the source is one page and page has no fields)`},
		{`{{state.cursor}}`, `{{state.cursr}}`, `s.yaml:7:70: unknown field state.cursr (state has cursor)`},
		{`{{page.size}}`, `{{lead.x}}`, `s.yaml:7:46: lead is not available in the source: section (`},
		{`captured.more == false &&`, `lead.x == false &&`, `s.yaml:11:14: source: stop_when: lead is not available in stop_when (stop_when reads the page just fetched: captured, response, page and state)`},
		{`captured.more == false &&`, `settings.base_url == "" &&`, `s.yaml:11:14: source: stop_when: settings is not available in stop_when (`},
		{`page.number < 9`, `page.numbr < 9`, `s.yaml:11:14: source: stop_when: unknown field page.numbr (`},
	} {
		bad := strings.Replace(src, c.from, c.to, 1)
		if bad == src {
			t.Fatalf("%q not in the source", c.from)
		}
		if _, err := Parse("s.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s → %s: err = %v, want %q", c.from, c.to, err, c.want)
		}
	}
}
