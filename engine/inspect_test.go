package engine

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
)

const twoSteps = `version: 1
name: i
settings: { base_url: {}, key: { secret: true } }
steps:
  - name: auth
    request: { url: "{{settings.base_url}}/auth", headers: { X-Key: "{{settings.key}}" } }
    capture: { token: { json: token } }
  - name: call
    when: lead.go == true
    request: { url: "{{settings.base_url}}/call", headers: { Authorization: "Bearer {{steps.auth.token}}" }, body: { json: { e: "{{lead.email}}" } } }
`

func TestObserverSeesEveryTryMasked(t *testing.T) {
	srv := newFaults(t, status(500), reply(200, "application/json", `{"token":"t-1","echo":"k3y-s3cret"}`))
	var mu sync.Mutex
	var seen []*Exchange
	var steps []string
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		steps = append(steps, StepName(r.Context()))
		mu.Unlock()
		return http.DefaultTransport.RoundTrip(r)
	})}
	p := plan(t, twoSteps, WithHTTPClient(client), withObserver(func(_ context.Context, ex *Exchange) {
		mu.Lock()
		seen = append(seen, ex)
		mu.Unlock()
	}))
	r := run(t, p, map[string]any{"go": false}, map[string]any{"base_url": srv.URL, "key": "k3y-s3cret"})
	wantOutcome(t, r, Success)
	if len(seen) != 2 || seen[0].Status != 500 || seen[0].Attempt != 1 || !strings.HasPrefix(seen[0].Action, "retry (default rule") || seen[1].Action != "" {
		t.Fatalf("exchanges %+v", seen)
	}
	if seen[1].Timing.Total <= 0 || seen[1].Step != "auth" {
		t.Fatalf("timing/step %+v", seen[1])
	}
	if got := seen[1].RequestHeader.Get("X-Key"); got != "****" {
		t.Fatalf("secret header shown as %q", got)
	}
	if strings.Contains(seen[1].ResponseBody, "k3y-s3cret") {
		t.Fatalf("secret in response body dump")
	}
	if len(steps) != 2 || steps[0] != "auth" {
		t.Fatalf("StepName in transport: %v", steps)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestDryRunAndRunStep(t *testing.T) {
	srv := newFaults(t, reply(200, "application/json", `{}`))
	p := plan(t, twoSteps)
	s, _ := p.Settings(map[string]any{"base_url": srv.URL, "key": "k3y"}, nil)
	rs := p.DryRun(map[string]any{"go": true, "email": "a@b.co"}, s)
	if len(rs) != 2 || rs[0].URL != srv.URL+"/auth" || rs[0].Header.Get("X-Key") != "****" || !strings.Contains(rs[1].Err, "steps.auth") {
		t.Fatalf("dry run %+v", rs)
	}
	if srv.hits.Load() != 0 {
		t.Fatal("dry run sent a request")
	}
	p = plan(t, strings.Replace(twoSteps, "steps:\n", "auth: { type: bearer, token: \"{{settings.key}}\" }\nsteps:\n", 1))
	s, _ = p.Settings(map[string]any{"base_url": srv.URL, "key": "k3y"}, nil)
	if rs := p.DryRun(map[string]any{"go": true}, s); rs[0].Auth != "bearer" {
		t.Fatalf("dry run auth %+v", rs[0])
	}
	res, err := p.RunStep(context.Background(), "call", map[string]any{"go": true, "email": "a@b.co"}, s, map[string]map[string]any{"auth": {"token": "t"}})
	if err != nil || res.Outcome != Success || srv.hits.Load() != 1 {
		t.Fatalf("run step: %+v %v", res, err)
	}
	if _, err := p.RunStep(context.Background(), "nope", nil, s, nil); err == nil || !strings.Contains(err.Error(), "[auth call]") {
		t.Fatalf("unknown step: %v", err)
	}
}
