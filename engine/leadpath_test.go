package engine

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// A step remembers its last URL, checked: a lead whose URL differs gets
// its own, and a URL that is not absolute http(s) is refused whatever came
// before (the memo is the plan's, shared by runners of other settings).
func TestURLMemo(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
	}))
	defer srv.Close()
	p, err := Parse("memo.yaml", []byte(`version: 1
name: memo
settings:
  base_url: { required: true }
steps:
  - name: a
    request: { method: GET, url: "{{settings.base_url}}/x/{{lead.id}}" }
  - name: b
    request: { method: GET, url: "{{settings.base_url}}/y" }
`))
	if err != nil {
		t.Fatal(err)
	}
	good, err := p.Bind(Config{Values: map[string]any{"base_url": srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close(context.Background())
	for _, id := range []string{"1", "2", "2", "1"} {
		wantOutcome(t, good.Run(context.Background(), map[string]any{"id": id}), Success)
	}
	want := "/x/1 /y /x/2 /y /x/2 /y /x/1 /y"
	if got := strings.Join(paths, " "); got != want {
		t.Fatalf("paths %s, want %s", got, want)
	}
	bad, err := p.Bind(Config{Values: map[string]any{"base_url": "ftp:" + strings.TrimPrefix(srv.URL, "http:")}})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close(context.Background())
	res := bad.Run(context.Background(), map[string]any{"id": "1"})
	if res.Outcome != Error || !strings.Contains(res.Reason, "not an absolute http(s) URL") {
		t.Fatalf("ftp URL: %s %q", res.Outcome, res.Reason)
	}
}

// When no step succeeds or fails, the lead ends with the first error a
// step continued past (on_error: continue), not with another step's.
func TestFirstContinuedError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"ok":false}`))
	}))
	defer srv.Close()
	r := bindSrc(t, `version: 1
name: cont
settings:
  base_url: { required: true }
steps:
  - name: a
    when: lead.go == true
    request: { method: GET, url: "{{settings.base_url}}/a" }
  - name: b
    on_error: continue
    request: { method: GET, url: "{{settings.base_url}}/b" }
    capture: { ok: { json: ok, type: bool } }
    outcome: { error_when: captured.ok == false }
  - name: c
    on_error: continue
    request: { method: GET, url: "{{settings.base_url}}/c" }
    capture: { ok: { json: ok, type: bool } }
    outcome: { error_when: captured.ok == false }
`, srv.URL)
	res := r.Run(context.Background(), map[string]any{"go": false})
	if res.Outcome != Error || res.Step != "b" || !strings.Contains(res.Reason, "error_when") {
		t.Fatalf("outcome %s, step %q, reason %q; want error of step b", res.Outcome, res.Step, res.Reason)
	}
}
