package engine

import (
	"context"
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
	defer r.Close()
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
