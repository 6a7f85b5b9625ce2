package engine

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestDeadlineIsTimeout: a step or flow deadline of the integration's own
// that passes while a try waits on the partner (or on its token endpoint)
// is an error of class timeout naming the deadline, not retried; the
// caller's context ending stays canceled.
func TestDeadlineIsTimeout(t *testing.T) {
	flowDL := func(src string) string { return strings.Replace(src, "name: r\n", "name: r\ndeadline: 100ms\n", 1) }
	for _, c := range []struct{ name, src, reason string }{
		{"step", oneStep("    timeout: 5s\n    deadline: 100ms\n"), "step deadline 100ms exceeded"},
		{"flow", flowDL(oneStep("    timeout: 5s\n")), "flow deadline 100ms exceeded"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := newFaults(t, hang)
			r := runWith(t, c.src, newFakeClock(), srv.URL)
			if r.Outcome != Error || r.Class != ClassTimeout || !strings.HasSuffix(r.Reason, ": "+c.reason) {
				t.Fatalf("%s %s %q, want error timeout naming the %s deadline", r.Outcome, r.Class, r.Reason, c.name)
			}
			if srv.hits.Load() != 1 {
				t.Fatalf("retried past the deadline: %d tries", srv.hits.Load())
			}
		})
	}
	t.Run("caller", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		srv := newFaults(t, func(w http.ResponseWriter, r *http.Request) {
			cancel() // the caller gives up while the partner thinks
			hang(w, r)
		})
		p := plan(t, oneStep("    timeout: 5s\n    deadline: 1h\n"))
		s, _ := p.Settings(map[string]any{"base_url": srv.URL}, nil)
		r := p.Run(ctx, map[string]any{"email": "x"}, s)
		if r.Outcome != Error || r.Class != ClassCanceled {
			t.Fatalf("%s %s %q, want canceled", r.Outcome, r.Class, r.Reason)
		}
	})
}

// TestDeadlineNotRunIsTimeout: a step, alone or in a parallel group, not
// started because the flow's deadline passed is a timeout too.
func TestDeadlineNotRunIsTimeout(t *testing.T) {
	srv := newFaults(t, ok(`{"score": 1}`))
	head := "version: 1\nname: r\ndeadline: 1ns\nsettings: { base_url: {} }\nsteps:\n"
	one := "{ name: NAME, request: { url: \"{{settings.base_url}}/x\" } }"
	for _, steps := range []string{
		"  - " + strings.Replace(one, "NAME", "s", 1) + "\n",
		"  - parallel:\n      - " + strings.Replace(one, "NAME", "a", 1) + "\n      - " + strings.Replace(one, "NAME", "b", 1) + "\n",
	} {
		r := run(t, plan(t, head+steps), map[string]any{}, map[string]any{"base_url": srv.URL})
		if r.Outcome != Error || r.Class != ClassTimeout || !strings.Contains(r.Reason, "not run: flow deadline 1ns exceeded") {
			t.Fatalf("%s%s %s %q", head, steps, r.Class, r.Reason)
		}
	}
}

// TestBreakerCountsDeadline: a step deadline passed waiting on the partner
// opens the breaker as a try timeout does.
func TestBreakerCountsDeadline(t *testing.T) {
	srv := newFaults(t, hang)
	src := oneStep("    timeout: 5s\n    deadline: 50ms\n    breaker: { failures: 1, cooldown: 1h }\n")
	r := bindSrc(t, src, srv.URL, WithClock(newFakeClock()))
	if res := r.Run(context.Background(), map[string]any{"email": "a"}); res.Class != ClassTimeout {
		t.Fatalf("first lead: %s %q", res.Class, res.Reason)
	}
	if res := r.Run(context.Background(), map[string]any{"email": "b"}); res.Class != ClassBreaker || srv.hits.Load() != 1 {
		t.Fatalf("second lead: %s %q after %d tries, want the breaker open", res.Class, res.Reason, srv.hits.Load())
	}
}

// TestTokenFetchDeadline: a hung OAuth2 token endpoint is bounded like a
// try — by the flow's deadline (class timeout naming it), and by the try's
// timeout when the step's limits make the token be fetched before the slot.
func TestTokenFetchDeadline(t *testing.T) {
	var api atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			hang(w, r)
			return
		}
		api.Add(1)
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	head := "version: 1\nname: r\nDL\nsettings: { base_url: {} }\nauth: { type: oauth2, token_url: \"{{settings.base_url}}/token\", client_id: c, client_secret: s }\nsteps:\n  - name: s\n    request: { url: \"{{settings.base_url}}/x\" }\n    retry: [ { on: [timeout], action: fail } ]\n"
	for _, c := range []struct{ name, dl, step, reason string }{
		{"flow deadline", "deadline: 100ms", "    timeout: 5s\n", "flow deadline 100ms exceeded"},
		{"flow deadline, limits", "deadline: 100ms", "    timeout: 5s\n    limits: { max_in_flight: 1 }\n", "flow deadline 100ms exceeded"},
		{"try timeout, limits", "", "    timeout: 100ms\n    limits: { max_in_flight: 1 }\n", "timeout after 100ms"},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(head, "DL\n", c.dl+"\n", 1) + c.step
			r := bindSrc(t, src, srv.URL, WithClock(newFakeClock())).Run(context.Background(), map[string]any{})
			if r.Outcome == Success || r.Class != ClassTimeout || !strings.Contains(r.Reason, c.reason) {
				t.Fatalf("%s %s %q, want a timeout: %s", r.Outcome, r.Class, r.Reason, c.reason)
			}
		})
	}
	if api.Load() != 0 {
		t.Fatalf("%d requests sent without a token", api.Load())
	}
}

// TestBatchWaitDeadline: a lead whose flow deadline passes while it waits
// for its batch to fill is a timeout naming the deadline.
func TestBatchWaitDeadline(t *testing.T) {
	srv := newFaults(t, ok(`{"results": []}`))
	src := strings.Replace(batchSrc, "name: bulk\n", "name: bulk\ndeadline: 50ms\n", 1)
	r := bindSrc(t, src, srv.URL).Run(context.Background(), map[string]any{"id": "1", "email": "a@b.co"})
	if r.Outcome != Error || r.Class != ClassTimeout || !strings.Contains(r.Reason, "flow deadline 50ms exceeded") {
		t.Fatalf("%s %s %q", r.Outcome, r.Class, r.Reason)
	}
}
