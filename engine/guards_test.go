package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestBreakerIgnoresPartnerNo: a breaker counts consecutive errors (the
// partner could not answer), never the partner's "no": after many 404 and
// 422 failures in a row the next good lead still goes to the partner.
func TestBreakerIgnoresPartnerNo(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Query().Get("e") {
		case "gone":
			w.WriteHeader(http.StatusNotFound)
		case "bad":
			w.WriteHeader(http.StatusUnprocessableEntity)
		default:
			io.WriteString(w, `{"score": 7}`)
		}
	}))
	defer srv.Close()
	src := `version: 1
name: ops
settings: { base_url: {} }
steps:
  - name: s
    request: { url: "{{settings.base_url}}/x?e={{lead.e}}" }
    max_attempts: 1
    breaker: { failures: 2, cooldown: 1h }
    capture: { score: { json: score } }
`
	r := bindSrc(t, src, srv.URL)
	for i := range 6 {
		e := []string{"gone", "bad"}[i%2]
		if res := r.Run(context.Background(), map[string]any{"e": e}); res.Outcome != Failure {
			t.Fatalf("lead %d (%s): %s %q, want the partner's failure", i, e, res.Outcome, res.Reason)
		}
	}
	res := r.Run(context.Background(), map[string]any{"e": "ok"})
	if res.Outcome != Success || res.Steps[0].Captured["score"] != 7.0 {
		t.Fatalf("good lead after six partner failures: %s %q (the breaker counted the partner's no)", res.Outcome, res.Reason)
	}
	if hits.Load() != 7 {
		t.Fatalf("the partner got %d requests, want all 7", hits.Load())
	}
}

// TestTooLargeAnswersGiveMemoryBack: an answer over max_bytes without a
// Content-Length is refused as it is read, and the bytes reserved for it go
// back to the runner's response budget: 40 such answers through a budget
// that holds four leave every later lead able to read its answer.
func TestTooLargeAnswersGiveMemoryBack(t *testing.T) {
	chunk := strings.Repeat("x", 32<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("size") == "big" {
			for range 10 { // 320 KiB, chunked: no Content-Length
				io.WriteString(w, chunk)
				w.(http.Flusher).Flush()
			}
			return
		}
		io.WriteString(w, `{"ok": true}`)
	}))
	defer srv.Close()
	src := `version: 1
name: mem
settings: { base_url: {} }
steps:
  - name: get
    request: { url: "{{settings.base_url}}/?size={{lead.size}}" }
    response: { max_bytes: 200000 }
    max_attempts: 1
`
	p, err := Parse("mem.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Bind(Config{Values: map[string]any{"base_url": srv.URL}, MaxResponseMemory: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := range 40 {
		res := r.Run(context.Background(), map[string]any{"size": "big"})
		if res.Outcome != Error || res.Class != ClassTooLarge || !errors.As(res.Err, new(*BodyTooLargeError)) {
			t.Fatalf("big answer %d: %s %s %q, want too_large (max_bytes)", i, res.Outcome, res.Class, res.Reason)
		}
		r.mem.mu.Lock()
		used := r.mem.used
		r.mem.mu.Unlock()
		if used != 0 {
			t.Fatalf("after big answer %d the runner still holds %d bytes of its response budget", i, used)
		}
	}
	if res := r.Run(context.Background(), map[string]any{"size": "small"}); res.Outcome != Success {
		t.Fatalf("small answer after the big ones: %s %q", res.Outcome, fmt.Sprint(res.Reason))
	}
}
