package engine

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/testkit"
)

func TestRoutingVariants(t *testing.T) {
	srv := newServer(t, map[string]http.HandlerFunc{
		"/premium":  hang,
		"/regional": reply(200, "application/json", `{"tier":"regional"}`),
		"/standard": reply(200, "application/json", `{"tier":"standard"}`),
	})
	src := `version: 1
name: router
settings: { base_url: {} }
steps:
  - name: validate
    request: { url: "{{settings.base_url}}/standard/validate", headers: { X-Base: "1" } }
    timeout: 2s
    variants:
      - when: lead.value > 100
        url: "{{settings.base_url}}/premium/validate"
        timeout: 50ms
      - when: lead.state in ["CA", "TX"]
        url: "{{settings.base_url}}/regional/validate"
        headers: { X-Region: "{{lead.state}}" }
      - timeout: 1s
    capture: { tier: { json: tier } }
`
	p := plan(t, src)
	cases := []struct {
		lead    map[string]any
		variant int
		outcome Outcome
		path    string
	}{
		{map[string]any{"value": 150.0, "state": "CA"}, 1, Error, "/premium/validate"},
		{map[string]any{"value": 50.0, "state": "TX"}, 2, Success, "/regional/validate"},
		{map[string]any{"value": 50.0, "state": "NY"}, 3, Success, "/standard/validate"},
	}
	for _, c := range cases {
		before := len(srv.requests())
		r := run(t, p, c.lead, map[string]any{"base_url": srv.URL})
		wantOutcome(t, r, c.outcome)
		sr := r.Steps[0]
		if sr.Variant != c.variant || !strings.HasSuffix(sr.URL, c.path) {
			t.Fatalf("lead %v: variant %d url %s", c.lead, sr.Variant, sr.URL)
		}
		req := srv.requests()[before]
		if req.Header.Get("X-Base") != "1" || (c.variant == 2) != (req.Header.Get("X-Region") == "TX") {
			t.Fatalf("headers %v", req.Header)
		}
		if c.variant == 1 && !strings.Contains(r.Reason, "timeout after 50ms") {
			t.Fatalf("premium timeout not applied: %q", r.Reason)
		}
	}
}

func TestVarsTransformations(t *testing.T) {
	srv := newServer(t, map[string]http.HandlerFunc{"/": reply(200, "application/json", `{"ok":true}`)})
	src := `version: 1
name: prep
settings: { base_url: {} }
vars:
  phone: "{{ lead.phone | digits }}"
  birth_date: '{{ dateFormat "MM/DD/YYYY" lead.birth_date }}'
  age: "{{ age lead.birth_date }}"
  type: '{{ ternary "B2B" "B2C" lead.corporate }}'
  contact: "{{ coalesce lead.mobile vars.phone }}"
steps:
  - name: submit
    vars:
      tag: "{{vars.type}}-{{vars.age}}"
    request:
      url: "{{settings.base_url}}/submit"
      body: { json: { phone: "{{vars.phone}}", dob: "{{vars.birth_date}}", age: "{{vars.age}}", type: "{{vars.type}}", contact: "{{vars.contact}}", tag: "{{vars.tag}}" } }
  - name: after
    request: { url: "{{settings.base_url}}/after", query: { tag: "{{vars.tag}}" } }
`
	p := plan(t, src) // the fake clock says 2026-11-23
	r := run(t, p, map[string]any{"phone": "(512) 555-0100", "birth_date": "1990-12-01", "corporate": true}, map[string]any{"base_url": srv.URL})
	wantOutcome(t, r, Success)
	var body map[string]any
	json.Unmarshal([]byte(srv.requests()[0].Body), &body)
	want := map[string]any{"phone": "5125550100", "dob": "12/01/1990", "age": 35.0, "type": "B2B", "contact": "5125550100", "tag": "B2B-35"}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("%s = %#v, want %#v (body %v)", k, body[k], v, body)
		}
	}
	if q := srv.requests()[1].Query.Get("tag"); q != "B2B-35" {
		t.Fatalf("a step's vars are not visible later: %q", q)
	}
	r = run(t, p, map[string]any{"phone": "1", "birth_date": "not a date"}, map[string]any{"base_url": srv.URL})
	wantOutcome(t, r, Error)
	if !strings.Contains(r.Reason, "vars: birth_date") || len(srv.requests()) != 2 {
		t.Fatalf("reason %q, %d requests", r.Reason, len(srv.requests()))
	}
}

// TestParallelGroup counts requests in flight at the server: the three
// group members overlap, a failing one does not stop the others, and every
// capture is visible afterwards.
// TestParallelGroup: the four requests of a group are at the partner at
// the same time. Each handler waits at a barrier until all four have
// arrived, so the test proves the overlap without timing anything: run one
// after the other, the first would wait alone until its timeout.
func TestParallelGroup(t *testing.T) {
	var inflight, peak atomic.Int32
	all := testkit.NewBarrier(4)
	slow := func(body string, code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			n := inflight.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			all.Wait(r.Context())
			inflight.Add(-1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			io.WriteString(w, body)
		}
	}
	srv := newServer(t, map[string]http.HandlerFunc{
		"/email": slow(`{"valid":true}`, 200), "/phone": slow(`{"valid":false}`, 200), "/blacklist": slow(`{"hit":false}`, 200),
		"/broken": slow(`{}`, 500), "/deliver": reply(200, "application/json", `{"id":"d-1"}`),
	})
	src := `version: 1
name: par
settings: { base_url: {} }
steps:
  - parallel:
      - name: email
        request: { url: "{{settings.base_url}}/email" }
        capture: { valid: { json: valid } }
        append: { email_valid: "{{captured.valid}}" }
      - name: phone
        request: { url: "{{settings.base_url}}/phone" }
        capture: { valid: { json: valid } }
        append: { phone_valid: "{{captured.valid}}" }
      - name: blacklist
        request: { url: "{{settings.base_url}}/blacklist" }
        capture: { hit: { json: hit } }
      - name: broken
        on_error: continue
        request: { url: "{{settings.base_url}}/broken" }
        retry: [ { on: [5xx], action: retry, max_attempts: 1 } ]
  - name: deliver
    request:
      url: "{{settings.base_url}}/deliver"
      body: { json: { email: "{{steps.email.valid}}", phone: "{{steps.phone.valid}}", hit: "{{steps.blacklist.hit}}" } }
`
	p := plan(t, src)
	r := run(t, p, map[string]any{}, map[string]any{"base_url": srv.URL})
	wantOutcome(t, r, Success)
	if peak.Load() != 4 {
		t.Fatalf("at most %d group requests in flight, want 4", peak.Load())
	}
	if len(r.Steps) != 5 || r.Steps[3].Outcome != Error || r.Steps[4].Outcome != Success {
		t.Fatalf("steps %+v", r.Steps)
	}
	for i, want := range []string{"email", "email", "email", "email", ""} {
		if r.Steps[i].Group != want { // the timeline shows a group side by side
			t.Errorf("step %s: group %q, want %q", r.Steps[i].Name, r.Steps[i].Group, want)
		}
	}
	if b := srv.requests()[4].Body; b != `{"email":true,"phone":false,"hit":false}` {
		t.Fatalf("deliver body %s", b)
	}
	if r.Lead["email_valid"] != true || r.Lead["phone_valid"] != false {
		t.Fatalf("appends from the group: %v", r.Lead)
	}

	// a sibling's captures are not readable inside the group
	bad := strings.Replace(src, `request: { url: "{{settings.base_url}}/phone" }`, `request: { url: "{{settings.base_url}}/phone", query: { e: "{{steps.email.valid}}" } }`, 1)
	if _, err := Parse("p.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), `step "email" does not run before step "phone"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestParallelFailFast(t *testing.T) {
	srv := newServer(t, map[string]http.HandlerFunc{"/fail": reply(422, "application/json", `{}`), "/hang": hang})
	src := `version: 1
name: ff
settings: { base_url: {} }
steps:
  - fail_fast: true
    parallel:
      - name: fails
        request: { url: "{{settings.base_url}}/fail" }
      - name: slow
        timeout: 10s
        request: { url: "{{settings.base_url}}/hang" }
`
	start := time.Now()
	r := run(t, plan(t, src), nil, map[string]any{"base_url": srv.URL})
	wantOutcome(t, r, Failure)
	if r.Step != "fails" || r.Steps[1].Outcome != Error || !strings.Contains(r.Steps[1].Reason, "fail_fast") || time.Since(start) > 5*time.Second {
		t.Fatalf("%+v after %s", r.Steps, time.Since(start))
	}
}

func TestResponseCache(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"valid":true}`)
	}))
	defer srv.Close()
	src := `version: 1
name: c
settings: { base_url: {} }
steps:
  - name: validate
    request: { url: "{{settings.base_url}}/v", query: { e: "{{lead.email}}" } }
    cache: { key: "{{lead.email | lower}}", ttl: 1h }
    capture: { valid: { json: valid } }
    append: { valid: "{{captured.valid}}" }
`
	clock := newFakeClock()
	p := plan(t, src, WithClock(clock))
	s, _ := p.Settings(map[string]any{"base_url": srv.URL}, nil)
	first := p.Run(context.Background(), map[string]any{"email": "A@b.co"}, s)
	second := p.Run(context.Background(), map[string]any{"email": "a@b.co"}, s)
	if hits.Load() != 1 || first.Steps[0].Cache != "miss" || second.Steps[0].Cache != "hit" || second.Lead["valid"] != true {
		t.Fatalf("hits %d, %+v / %+v", hits.Load(), first.Steps[0], second.Steps[0])
	}
	clock.Advance(61 * time.Minute)
	third := p.Run(context.Background(), map[string]any{"email": "a@b.co"}, s)
	if hits.Load() != 2 || third.Steps[0].Cache != "miss" {
		t.Fatalf("after ttl: hits %d %+v", hits.Load(), third.Steps[0])
	}
}

func TestGzipRequests(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err == nil {
				b, _ := io.ReadAll(zr)
				got = string(b)
			}
		}
	}))
	defer srv.Close()
	src := "version: 1\nname: g\nsettings: { base_url: {} }\nhttp: { gzip_requests: true, max_conns_per_host: 4, http2: false }\nsteps:\n  - name: s\n    request: { url: \"{{settings.base_url}}/x\", body: { json: { a: \"{{lead.a}}\" } } }\n"
	r := run(t, plan(t, src), map[string]any{"a": "z"}, map[string]any{"base_url": srv.URL})
	wantOutcome(t, r, Success)
	if got != `{"a":"z"}` {
		t.Fatalf("server decoded %q", got)
	}
}

const batchSrc = `version: 1
name: bulk
settings: { base_url: {} }
steps:
  - name: validate
    batch: { size: 100, wait: 5m, results: results, id: lead_id }
    request:
      url: "{{settings.base_url}}/validate-batch"
      body:
        json: |
          {"batch_id": "{{batch.id}}", "leads": [{{range batch.items}}{{if not .first}},{{end}}{"id": "{{.lead.id}}", "email": "{{.lead.email}}"}{{end}}]}
    capture:
      valid: { json: valid }
    outcome: { failure_when: captured.valid == false }
    append: { valid: "{{captured.valid}}" }
`

// batchServer answers every lead of a batch except ids in skip.
func batchServer(t *testing.T, sizes *[]int, mu *sync.Mutex, skip string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			BatchID string `json:"batch_id"`
			Leads   []struct{ ID, Email string }
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		*sizes = append(*sizes, len(in.Leads))
		mu.Unlock()
		var out []string
		for _, l := range in.Leads {
			if l.ID == skip {
				continue
			}
			out = append(out, fmt.Sprintf(`{"lead_id": %q, "valid": %v}`, l.ID, !strings.HasPrefix(l.Email, "bad")))
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"results": [%s]}`, strings.Join(out, ","))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestBatchBySize(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	srv := batchServer(t, &sizes, &mu, "lead-77")
	clock := testkit.NewManualClock(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
	p := plan(t, batchSrc, WithClock(clock))
	s, _ := p.Settings(map[string]any{"base_url": srv.URL}, nil)
	results := make([]*Result, 250)
	var wg sync.WaitGroup
	s.Expect(len(results))
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			email := fmt.Sprintf("l%d@x.co", i)
			if i%10 == 0 {
				email = "bad" + email
			}
			results[i] = p.Run(context.Background(), map[string]any{"id": fmt.Sprintf("lead-%d", i), "email": email}, s)
		}()
	}
	// no more leads are coming: the last, partial batch goes as soon as
	// every announced lead waits in it (the 5m wait never passes here);
	// Expect keeps a lead that has not reached Run yet from missing it
	s.Flush()
	wg.Wait()
	slices.Sort(sizes) // batches are sent concurrently
	if !slices.Equal(sizes, []int{50, 100, 100}) {
		t.Fatalf("batch sizes %v, want 100, 100 and 50", sizes)
	}
	for i, r := range results {
		want := Success
		switch {
		case i == 77:
			want = Error
			if !strings.Contains(r.Reason, `no result for lead id "lead-77"`) {
				t.Fatalf("lead 77 reason %q", r.Reason)
			}
		case i%10 == 0:
			want = Failure
		}
		if r.Outcome != want || (want != Error && r.Lead["valid"] != (want == Success)) || r.Steps[0].Batch == "" {
			t.Fatalf("lead %d: %s %v %+v", i, r.Outcome, r.Lead, r.Steps[0])
		}
	}
}

func TestBatchByTime(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	srv := batchServer(t, &sizes, &mu, "")
	clock := testkit.NewManualClock(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
	p := plan(t, batchSrc, WithClock(clock))
	s, _ := p.Settings(map[string]any{"base_url": srv.URL}, nil)
	var wg sync.WaitGroup
	results := make([]*Result, 3)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = p.Run(context.Background(), map[string]any{"id": fmt.Sprint(i), "email": "a@b.co"}, s)
		}()
	}
	waitFor(t, "the batch's wait to start", func() bool { return clock.Sleepers() > 0 })
	waitFor(t, "three leads waiting in the batch", func() bool {
		s.run.mu.Lock()
		defer s.run.mu.Unlock()
		return s.run.waiting == 3
	})
	clock.Advance(4 * time.Minute)
	mu.Lock()
	early := len(sizes)
	mu.Unlock()
	if early != 0 {
		t.Fatal("batch sent before its wait")
	}
	clock.Advance(time.Minute)
	wg.Wait()
	if len(sizes) != 1 || sizes[0] != 3 {
		t.Fatalf("sizes %v", sizes)
	}
	for _, r := range results {
		wantOutcome(t, r, Success)
	}
}

// TestHTTPSettingsShapeTheTransport checks the http: section reaches the
// plan's own client.
func TestHTTPSettingsShapeTheTransport(t *testing.T) {
	src := "version: 1\nname: h\nhttp: { max_conns_per_host: 4, idle_timeout: 7s, http2: false, gzip_responses: false }\nsteps:\n  - name: s\n    request: { url: \"http://x\" }\n"
	p := plan(t, src)
	r, err := p.Bind(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	tr := r.transport
	if r.client.Transport != tr {
		t.Fatalf("transport %T", r.client.Transport)
	}
	if tr.MaxConnsPerHost != 4 || tr.IdleConnTimeout != 7*time.Second || tr.ForceAttemptHTTP2 || tr.TLSNextProto == nil || !tr.DisableCompression {
		t.Fatalf("transport not configured: %+v", tr)
	}
	if d := newTransport(nil); !d.ForceAttemptHTTP2 || d.DisableCompression || d.MaxIdleConnsPerHost != 128 {
		t.Fatalf("default transport: %+v", d)
	}
}

// waitFor polls cond until it holds, and fails the test if it does not
// within 10 seconds: a regression is a failure naming what never happened,
// not a hang until the test binary's timeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
