package engine

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMaskerForms: every encoding a request may carry a secret in is
// masked, and a short secret never mangles text it only appears inside.
func TestMaskerForms(t *testing.T) {
	const long = `s3cr3t/+&<"ü`
	m := newMasker([]string{long, "1234"})
	for _, form := range []string{long, url.QueryEscape(long), url.PathEscape(long),
		base64.StdEncoding.EncodeToString([]byte(long)), base64.RawURLEncoding.EncodeToString([]byte(long)),
		`s3cr3t/+&amp;&lt;&#34;ü`, `s3cr3t/+&<\"ü`, `s3cr3t/+\u0026\u003c\"ü`} {
		if got := m.text("x " + form + " y"); strings.Contains(got, "s3cr3t") || !strings.Contains(got, mask) {
			t.Errorf("form %q: %q", form, got)
		}
	}
	for in, want := range map[string]string{
		"pin=1234":                    "pin=****",
		"http://127.0.0.1:12345/a":    "http://127.0.0.1:12345/a",
		"code 1234.":                  "code ****.",
		"12345 and 91234":             "12345 and 91234",
		"1234":                        "****",
		`{"pin":"1234","n":"123456"}`: `{"pin":"****","n":"123456"}`,
	} {
		if got := m.text(in); got != want {
			t.Errorf("text(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"http://127.0.0.1:12345/v1/1234?pin=1234&x=12345": "http://127.0.0.1:12345/v1/****?pin=****&x=12345",
		"https://u:1234@h.example/p":                      "https://u:****@h.example/p",
		"https://h.example/?k=" + url.QueryEscape(long):   "https://h.example/?k=****",
	} {
		if got := m.url(in); got != want {
			t.Errorf("url(%q) = %q, want %q", in, got, want)
		}
	}
	got := m.body([]byte(`{"pin":"1234","nested":{"k":"` + long + `"},"zip":12345}`))
	var v map[string]any
	if err := json.Unmarshal([]byte(got), &v); err != nil {
		t.Fatalf("masked JSON body is not JSON: %v: %s", err, got)
	}
	if v["pin"] != mask || v["nested"].(map[string]any)["k"] != mask || strings.Contains(got, "s3cr3t") {
		t.Errorf("body: %s", got)
	}
	if got := m.body([]byte("pin=1234&name=ann")); got != "pin=****&name=ann" {
		t.Errorf("form body: %s", got)
	}
	h := m.header(http.Header{"X-Pin": {"1234"}, "X-Token": {"abc"}, "Authorization": {"Bearer xyz"}, "X-Port": {"12345"}}, map[string]bool{"X-Token": true})
	if h.Get("X-Pin") != mask || h.Get("X-Token") != mask || h.Get("Authorization") != "Bearer "+mask || h.Get("X-Port") != "12345" {
		t.Errorf("header: %v", h)
	}
}

// TestSecretsMaskedInResultsAndExchanges runs a lead whose short secret
// goes in the query, a long one in JSON and a captured token in a custom
// header: none shows in the result, the observed exchanges or the reason,
// and the result still serialises to valid JSON.
func TestSecretsMaskedInResultsAndExchanges(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			io.WriteString(w, `{"access_token":"tok-98765-abcdef"}`)
		default:
			// echo what came in, as a careless partner does
			b, _ := io.ReadAll(r.Body)
			w.WriteHeader(500)
			w.Write([]byte(r.URL.RawQuery + " " + r.Header.Get("X-Token") + " " + string(b)))
		}
	}))
	defer srv.Close()
	src := `version: 1
name: mask
settings:
  base_url: {}
  pin: { secret: true }
  key: { secret: true }
steps:
  - name: token
    request: { url: "{{settings.base_url}}/token" }
    capture:
      token: { json: access_token, redact: true }
  - name: call
    request:
      method: POST
      url: "{{settings.base_url}}/call?pin={{settings.pin}}"
      headers: { X-Token: "{{steps.token.token}}" }
      body: { json: { key: "{{settings.key}}", email: "{{lead.email}}" } }
    retry: [ { on: [5xx], action: fail } ]
`
	var mu sync.Mutex
	var seen []*Exchange
	p, err := Parse("mask.yaml", []byte(src), withObserver(func(_ context.Context, ex *Exchange) {
		mu.Lock()
		seen = append(seen, ex)
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Bind(Config{Values: map[string]any{"base_url": srv.URL, "pin": "1234", "key": "k<e>y&long-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	res := r.Run(context.Background(), map[string]any{"email": "a@b.co"})
	if res.Outcome != Failure {
		t.Fatalf("outcome %s: %s", res.Outcome, res.Reason)
	}
	out, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatalf("result JSON: %v", err)
	}
	exs, _ := json.Marshal(seen)
	for _, secret := range []string{"pin=1234", "tok-98765-abcdef", "long-secret", "k\\u003ce\\u003ey", url.QueryEscape("k<e>y&long-secret")} {
		if strings.Contains(string(out), secret) {
			t.Errorf("result shows %q:\n%s", secret, out)
		}
		if strings.Contains(string(exs), secret) {
			t.Errorf("exchanges show %q:\n%s", secret, exs)
		}
	}
	if res.Steps[0].Captured["token"] != mask {
		t.Errorf("redacted capture shown as %v", res.Steps[0].Captured["token"])
	}
	if !strings.Contains(res.Steps[1].URL, "pin=****") || !strings.Contains(res.Steps[1].URL, "127.0.0.1") {
		t.Errorf("URL %s", res.Steps[1].URL)
	}
}

// TestBatchDuplicateIDs: two leads with the same id in one batch cannot be
// told apart in the answer: the second is an error, the first gets its own
// result.
func TestBatchDuplicateIDs(t *testing.T) {
	var bodies []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		io.WriteString(w, `{"results":[{"id":"a","ok":true},{"id":"b","ok":true}]}`)
	}))
	defer srv.Close()
	src := `version: 1
name: dup
settings: { base_url: {} }
steps:
  - name: check
    request:
      method: POST
      url: "{{settings.base_url}}/batch"
      body: { json: "{{ batch.leads }}" }
    batch: { size: 3, wait: 1h, results: results, id: id, lead_id: "{{lead.id}}" }
    capture: { ok: { json: ok } }
`
	p, err := Parse("dup.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Bind(Config{Values: map[string]any{"base_url": srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	leads := []map[string]any{{"id": "a"}, {"id": "a"}, {"id": "b"}}
	var res []*Result
	for _, x := range r.RunAll(context.Background(), Leads(leads), RunAllOptions{Concurrency: 3}) {
		res = append(res, x)
	}
	if res[2].Outcome != Success {
		t.Fatalf("unique id: %s (%s)", res[2].Outcome, res[2].Reason)
	}
	// either of the two "a" leads may join the batch second: that one errs
	ok, dup := res[0], res[1]
	if ok.Outcome != Success {
		ok, dup = dup, ok
	}
	if ok.Outcome != Success || dup.Outcome != Error || dup.Class != ClassInput || !strings.Contains(dup.Reason, `id "a"`) {
		t.Fatalf("duplicate ids: %s (%s) / %s %s (%s)", ok.Outcome, ok.Reason, dup.Outcome, dup.Class, dup.Reason)
	}
	if len(bodies) != 1 {
		t.Fatalf("%d batch requests", len(bodies))
	}
}

// TestResponseMemoryBudget: answers held at once by a runner's leads are
// bounded; one that does not fit is a too_large error, and the budget is
// given back once answers are judged.
func TestResponseMemoryBudget(t *testing.T) {
	big := strings.Repeat("x", 600<<10)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("id") == "slow" {
			w.Write([]byte(big)) // chunked: reserved as it is read
			w.(http.Flusher).Flush()
			<-release
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		w.Write([]byte(big))
	}))
	defer srv.Close()
	defer close(release)
	src := `version: 1
name: mem
settings: { base_url: {} }
steps:
  - name: get
    request: { url: "{{settings.base_url}}/?id={{lead.id}}" }
    response: { format: text }
    retry: [ { on: [timeout, connection], action: fail } ]
`
	p, err := Parse("mem.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Bind(Config{Values: map[string]any{"base_url": srv.URL}, MaxResponseMemory: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	slow := make(chan *Result, 1)
	go func() { slow <- r.Run(context.Background(), map[string]any{"id": "slow"}) }()
	deadline := time.After(20 * time.Second)
	for {
		r.mem.mu.Lock()
		used := r.mem.used
		r.mem.mu.Unlock()
		if used >= 512<<10 {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("the slow answer never held its bytes (used %d)", used)
		case <-time.After(time.Millisecond):
		}
	}
	res := r.Run(context.Background(), map[string]any{"id": "fast"})
	if res.Outcome != Error || res.Class != ClassTooLarge || !errors.As(res.Err, new(*MemoryBudgetError)) {
		t.Fatalf("over budget: %s %s %q", res.Outcome, res.Class, res.Reason)
	}
	release <- struct{}{}
	if res := <-slow; res.Outcome != Success {
		t.Fatalf("slow lead: %s %q", res.Outcome, res.Reason)
	}
	if res := r.Run(context.Background(), map[string]any{"id": "fast"}); res.Outcome != Success {
		t.Fatalf("after the budget was given back: %s %q", res.Outcome, res.Reason)
	}
	if r.mem.used != 0 {
		t.Fatalf("budget not given back: %d", r.mem.used)
	}
}

// TestBatchDataReachesEachLead (issue 14.6): captures, outcomes and appends
// of a batch step read batch.id, batch.size and batch.response.
func TestBatchDataReachesEachLead(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"count":2,"results":[{"id":"a","ok":true},{"id":"b","ok":false}]}`)
	}))
	defer srv.Close()
	src := `version: 1
name: b
settings: { base_url: {} }
steps:
  - name: check
    request: { method: POST, url: "{{settings.base_url}}/batch", body: { json: "{{ batch.leads }}" } }
    batch: { size: 2, wait: 1h, results: results, id: id, lead_id: "{{lead.id}}" }
    capture: { ok: { json: ok } }
    outcome: { failure_when: 'captured.ok == false && batch.size == 2' }
    append: { batch_count: "{{ batch.response.body.count }}", batch_id: "{{ batch.id }}" }
`
	p, err := Parse("b.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Bind(Config{Values: map[string]any{"base_url": srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	var res []*Result
	for _, x := range r.RunAll(context.Background(), Leads([]map[string]any{{"id": "a"}, {"id": "b"}}), RunAllOptions{Concurrency: 2}) {
		res = append(res, x)
	}
	if res[0].Outcome != Success || res[1].Outcome != Failure {
		t.Fatalf("outcomes %s %q / %s %q", res[0].Outcome, res[0].Reason, res[1].Outcome, res[1].Reason)
	}
	for _, x := range res {
		if x.Lead["batch_count"] != 2.0 || x.Lead["batch_id"] != x.Steps[0].Batch || x.Steps[0].Batch == "" {
			t.Fatalf("lead %v, batch %q", x.Lead, x.Steps[0].Batch)
		}
	}
	bad := strings.Replace(src, "batch_id: \"{{ batch.id }}\"", "batch_id: \"{{ batch.leads }}\"", 1)
	if _, err := Parse("b.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), "batch.leads is only available in the request") {
		t.Fatalf("batch.leads in append: %v", err)
	}
}

// TestFreeKeyLinear: keys that mask alike are numbered in turn, and
// naming n of them looks at O(n) keys, not O(n²) (counted, not timed): a
// lead of many keys that mask alike cannot make a masked answer slow.
func TestFreeKeyLinear(t *testing.T) {
	out, next, probes := map[string]bool{"**** #3": true}, map[string]int{}, 0
	taken := func(k string) bool { probes++; return out[k] }
	const n = 1000
	for range n {
		out[freeKey("****", next, taken)] = true
	}
	for _, want := range []string{"****", "**** #2", "**** #4", "**** #1001"} {
		if !out[want] {
			t.Errorf("no key %q", want)
		}
	}
	if len(out) != n+1 || probes > 3*n {
		t.Fatalf("%d keys, %d probes for %d names", len(out), probes, n)
	}
}

// TestDocumentKeysMaskingAlike: every ASCII case of a secret masks as
// "****", so a document holding many of them as keys keeps each, told apart.
func TestDocumentKeysMaskingAlike(t *testing.T) {
	const secret = "KeySecretValue-0042"
	m := newMasker([]string{secret})
	doc := map[string]any{}
	for i := range 500 {
		b, bit := []byte(secret), 0
		for j, c := range b {
			if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
				if i>>bit&1 == 1 {
					b[j] ^= 0x20
				}
				bit++
			}
		}
		doc[string(b)] = i
	}
	got := m.document(doc).(map[string]any)
	if len(got) != len(doc) {
		t.Fatalf("%d keys of %d kept", len(got), len(doc))
	}
	for k := range got {
		if strings.Contains(strings.ToLower(k), "secret") {
			t.Fatalf("key %q shown", k)
		}
	}
}
