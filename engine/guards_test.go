package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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
	r := bindCfg(t, src, Config{Values: map[string]any{"base_url": srv.URL}, MaxResponseMemory: 1 << 20})
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

// TestCapturesCountAgainstMemory: what a lead captures from a large answer
// stays with the lead after the answer's bytes go back, so it counts
// against the runner's response memory budget until the lead ends: with a
// budget of 2 MiB, leads capturing 600 KiB each can be three at once, a
// fourth is an error of class too_large, and everything is given back
// when the leads end.
func TestCapturesCountAgainstMemory(t *testing.T) {
	big := strings.Repeat("y", 600<<10)
	hold := make(chan struct{})
	arrived := make(chan struct{}, 8)
	var waiting atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			if waiting.Add(1) <= 3 { // the first three are held; a fourth (a bug) is not
				arrived <- struct{}{}
				<-hold
			}
			io.WriteString(w, `{}`)
			return
		}
		fmt.Fprintf(w, `{"doc": %q}`, big)
	}))
	defer srv.Close()
	src := `version: 1
name: mem
settings: { base_url: {} }
steps:
  - name: get
    request: { url: "{{settings.base_url}}/get" }
    capture: { doc: { json: doc } }
  - name: wait
    request: { url: "{{settings.base_url}}/wait" }
    timeout: 1h
`
	r := bindCfg(t, src, Config{Values: map[string]any{"base_url": srv.URL}, MaxResponseMemory: 2 << 20})
	var once sync.Once
	release := func() { once.Do(func() { close(hold) }) }
	defer release() // before the cleanup's Close, which waits for the held leads
	results := make(chan *Result, 3)
	for range 3 {
		go func() { results <- r.Run(context.Background(), map[string]any{}) }()
	}
	for range 3 {
		<-arrived // each holds its capture while its second step waits
	}
	res := r.Run(context.Background(), map[string]any{})
	if res.Outcome != Error || res.Class != ClassTooLarge || res.Step != "get" || !errors.As(res.Err, new(*MemoryBudgetError)) {
		t.Fatalf("fourth lead: %s %s at %q: %q, want too_large at get", res.Outcome, res.Class, res.Step, res.Reason)
	}
	release()
	for range 3 {
		if res := <-results; res.Outcome != Success || len(res.Steps[0].Captured["doc"].(string)) != len(big) {
			t.Fatalf("held lead: %s %q", res.Outcome, res.Reason)
		}
	}
	r.mem.mu.Lock()
	defer r.mem.mu.Unlock()
	if r.mem.used != 0 {
		t.Fatalf("%d bytes of the budget not given back after the leads ended", r.mem.used)
	}
}
