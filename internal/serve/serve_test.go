package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/queue"
)

// partnerYAML is the test integration: one JSON POST to the partner; the
// partner's "ok": false is a failure.
const partnerYAML = `version: 1
name: partner
settings:
  base_url: { required: true }
steps:
  - name: submit
    request:
      method: POST
      url: "{{settings.base_url}}/submit"
      body:
        json:
          n: "{{lead.n}}"
          email: "{{lead.email}}"
    timeout: 60s
    capture:
      ok: { json: ok, type: bool }
    outcome:
      failure_when: captured.ok == false
      reason: rejected by the partner
`

// partner is a loopback partner API that counts the requests per lead n.
type partner struct {
	*httptest.Server
	mu     sync.Mutex
	counts map[int]int
	// hook, when set, runs for each request before it is answered.
	hook func(n int)
}

func newPartner(t testing.TB) *partner {
	p := &partner{counts: map[int]int{}}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			N     int    `json:"n"`
			Email string `json:"email"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		p.mu.Lock()
		p.counts[body.N]++
		hook := p.hook
		p.mu.Unlock()
		if hook != nil {
			hook(body.N)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok": %v}`, !strings.HasSuffix(body.Email, "@reject.example"))
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *partner) snapshot() map[int]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[int]int, len(p.counts))
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

// writeIntegration writes the partner integration and its settings to dir.
func writeIntegration(t testing.TB, dir, baseURL string) {
	t.Helper()
	must(t, os.WriteFile(filepath.Join(dir, "partner.yaml"), []byte(partnerYAML), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "partner.settings.yaml"), []byte("base_url: "+baseURL+"\n"), 0o600))
}

// Tokens strong enough for CheckToken.
const (
	testAPIToken     = "3f9a1c7e5b2d8f4a6c0e9b1d7f3a5c8e"
	testOtherToken   = "b7e2d9c4a1f6038e5d2c9b7a4f1e6d3c"
	testConsoleToken = "c0n5o1e-8d3f6a2b9e4c7d1f5a8b3e6c"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testServer starts a Server on a free loopback port.
func testServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg.Queue.SyncInterval = time.Second // tests need no fsync per write
	s, err := New(cfg)
	must(t, err)
	must(t, s.Start())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

// client calls the API with an optional token.
type client struct {
	t     testing.TB
	base  string
	token string
}

func (c client) do(method, path, ctype string, body []byte, hdr ...string) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	must(c.t, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	must(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(c.t, err)
	return resp.StatusCode, b
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return v
}

type result struct {
	Outcome string         `json:"outcome"`
	Class   string         `json:"class"`
	Reason  string         `json:"reason"`
	Lead    map[string]any `json:"lead"`
}

type accepted struct {
	Accepted int        `json:"accepted"`
	Leads    []Accepted `json:"leads"`
	Batch    string     `json:"batch"`
}

type leadStatus struct {
	ID     string  `json:"id"`
	State  string  `json:"state"`
	Result *result `json:"result"`
}

// waitDone polls the lead's status until it is done (a condition, not a
// clock: the deadline only turns a hang into a failure).
func (c client) waitDone(id string) leadStatus {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, b := c.do("GET", "/v1/leads/"+id, "", nil)
		if code == 200 {
			st := decode[leadStatus](c.t, b)
			if st.State == "done" {
				return st
			}
		} else if code != 404 {
			c.t.Fatalf("GET /v1/leads/%s: %d %s", id, code, b)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("lead %s not done after 60s: %s", id, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func errorCode(t testing.TB, b []byte) string {
	t.Helper()
	e := decode[ErrorBody](t, b)
	if e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not the error shape: %s", b)
	}
	return e.Error.Code
}

func setup(t testing.TB, tokens ...string) (*Server, client, *partner) {
	p := newPartner(t)
	dir := t.TempDir()
	writeIntegration(t, dir, p.URL)
	s := testServer(t, Config{Dir: dir, Tokens: tokens})
	c := client{t: t, base: "http://" + s.Addr()}
	if len(tokens) > 0 {
		c.token = tokens[0]
	}
	return s, c, p
}

func TestSyncRun(t *testing.T) {
	t.Parallel()
	_, c, _ := setup(t)
	code, b := c.do("POST", "/v1/integrations/partner/run", "application/json", []byte(`{"n": 1, "email": "a@x.example"}`))
	if code != 200 {
		t.Fatalf("run: %d %s", code, b)
	}
	if r := decode[result](t, b); r.Outcome != "success" || r.Lead["email"] != "a@x.example" {
		t.Fatalf("result: %s", b)
	}
	// the partner said no: 422, with the result
	code, b = c.do("POST", "/v1/integrations/partner/run", "application/json; charset=utf-8", []byte(`{"n": 2, "email": "b@reject.example"}`))
	if r := decode[result](t, b); code != 422 || r.Outcome != "failure" || r.Reason != "rejected by the partner" {
		t.Fatalf("failure: %d %s", code, b)
	}
	// the lead lacks a field the request needs: error of class template, 400, with the result
	code, b = c.do("POST", "/v1/integrations/partner/run", "application/json", []byte(`{"n": 3}`))
	if r := decode[result](t, b); code != 400 || r.Outcome != "error" || r.Class != "template" {
		t.Fatalf("template error: %d %s", code, b)
	}
	// not a JSON object
	code, b = c.do("POST", "/v1/integrations/partner/run", "application/json", []byte(`[1]`))
	if code != 400 || errorCode(t, b) != CodeInvalidJSON {
		t.Fatalf("bad JSON: %d %s", code, b)
	}
}

func TestAsyncAcceptThenResult(t *testing.T) {
	t.Parallel()
	_, c, p := setup(t)
	code, b := c.do("POST", "/v1/integrations/partner/leads", "application/json", []byte(`{"n": 7, "email": "a@x.example"}`))
	if code != 202 {
		t.Fatalf("accept: %d %s", code, b)
	}
	acc := decode[accepted](t, b)
	if acc.Accepted != 1 || len(acc.Leads) != 1 || acc.Leads[0].Status != "/v1/leads/"+acc.Leads[0].ID {
		t.Fatalf("accepted: %s", b)
	}
	st := c.waitDone(acc.Leads[0].ID)
	if st.Result == nil || st.Result.Outcome != "success" || st.Result.Lead["email"] != "a@x.example" {
		t.Fatalf("status: %+v", st)
	}

	// NDJSON of three, with an Idempotency-Key; sent twice, stored once
	body := []byte("{\"n\": 10, \"email\": \"a@x.example\"}\n\n{\"n\": 11, \"email\": \"b@reject.example\"}\n{\"n\": 12, \"email\": \"c@x.example\"}\n")
	code, b = c.do("POST", "/v1/integrations/partner/leads", "application/x-ndjson", body, "Idempotency-Key", "batch-1")
	if code != 202 {
		t.Fatalf("ndjson: %d %s", code, b)
	}
	first := decode[accepted](t, b)
	if first.Accepted != 3 {
		t.Fatalf("ndjson accepted: %s", b)
	}
	want := []string{"success", "failure", "success"}
	for i, l := range first.Leads {
		if st := c.waitDone(l.ID); st.Result.Outcome != want[i] {
			t.Errorf("lead %d: %+v, want %s", i, st.Result, want[i])
		}
	}
	code, b = c.do("POST", "/v1/integrations/partner/leads", "application/x-ndjson", body, "Idempotency-Key", "batch-1")
	again := decode[accepted](t, b)
	if code != 202 || len(again.Leads) != 3 {
		t.Fatalf("again: %d %s", code, b)
	}
	for i := range again.Leads {
		if !again.Leads[i].Duplicate || again.Leads[i].ID != first.Leads[i].ID {
			t.Errorf("repeat %d: %+v, want a duplicate of %s", i, again.Leads[i], first.Leads[i].ID)
		}
	}
	for _, n := range []int{10, 11, 12} {
		if got := p.snapshot()[n]; got != 1 {
			t.Errorf("partner saw lead %d %d times", n, got)
		}
	}
	// a malformed line: nothing accepted, the line named
	code, b = c.do("POST", "/v1/integrations/partner/leads", "application/x-ndjson", []byte("{\"n\": 1}\n{oops\n"))
	if e := decode[ErrorBody](t, b); code != 400 || e.Error.Code != CodeInvalidJSON || e.Error.Line != 2 {
		t.Fatalf("bad line: %d %s", code, b)
	}
	code, b = c.do("GET", "/v1/leads/nope", "", nil)
	if code != 404 || errorCode(t, b) != CodeNotFound {
		t.Fatalf("unknown lead: %d %s", code, b)
	}
}

func TestAuthAndRequestErrors(t *testing.T) {
	t.Parallel()
	s, c, _ := setup(t, testAPIToken, testOtherToken)
	anon := client{t: t, base: c.base}
	wrong := client{t: t, base: c.base, token: testAPIToken[:len(testAPIToken)-1] + "0"}
	lead := []byte(`{"n": 1, "email": "a@x.example"}`)
	for _, cl := range []client{anon, wrong} {
		code, b := cl.do("POST", "/v1/integrations/partner/run", "application/json", lead)
		if code != 401 || errorCode(t, b) != CodeUnauthorized {
			t.Fatalf("token %q: %d %s", cl.token, code, b)
		}
		if code, _ := cl.do("GET", "/metrics", "", nil); code != 401 {
			t.Fatalf("metrics without a token: %d", code)
		}
	}
	if code, _ := anon.do("GET", "/healthz", "", nil); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
	if code, b := anon.do("GET", "/readyz", "", nil); code != 200 {
		t.Fatalf("readyz: %d %s", code, b)
	}
	if code, b := (client{t: t, base: c.base, token: testOtherToken}).do("POST", "/v1/integrations/partner/run", "application/json", lead); code != 200 {
		t.Fatalf("second token: %d %s", code, b)
	}
	// two Authorization headers present no token, whichever comes first
	for _, pair := range [][2]string{{testAPIToken, "wrong"}, {"wrong", testAPIToken}, {testAPIToken, testAPIToken}} {
		req, err := http.NewRequest("GET", c.base+"/v1/queue", nil)
		must(t, err)
		req.Header.Add("Authorization", "Bearer "+pair[0])
		req.Header.Add("Authorization", "Bearer "+pair[1])
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("Authorization twice (%.5s…, %.5s…): %d, want 401", pair[0], pair[1], resp.StatusCode)
		}
	}

	big := append([]byte(`{"n": 1, "email": "`), bytes.Repeat([]byte("a"), DefaultMaxBody)...)
	big = append(big, `"}`...)
	for _, path := range []string{"/v1/integrations/partner/run", "/v1/integrations/partner/leads"} {
		code, b := c.do("POST", path, "application/json", big)
		if code != 413 || errorCode(t, b) != CodeTooLarge {
			t.Fatalf("%s oversized: %d %s", path, code, b)
		}
		code, b = c.do("POST", path, "text/plain", lead)
		if code != 415 || errorCode(t, b) != CodeContentType {
			t.Fatalf("%s text/plain: %d %s", path, code, b)
		}
		code, b = c.do("POST", strings.Replace(path, "partner", "nobody", 1), "application/json", lead)
		if code != 404 || errorCode(t, b) != CodeUnknownIntegr {
			t.Fatalf("%s unknown integration: %d %s", path, code, b)
		}
		code, b = c.do("GET", path, "", nil)
		if code != 405 || errorCode(t, b) != CodeMethod {
			t.Fatalf("%s GET: %d %s", path, code, b)
		}
	}
	if code, b := c.do("GET", "/v2/whatever", "", nil); code != 404 || errorCode(t, b) != CodeNotFound {
		t.Fatalf("unknown route: %d %s", code, b)
	}
	// dead letters: none, and retrying an unknown one is a 404
	if code, b := c.do("GET", "/v1/dead", "", nil); code != 200 || !bytes.Contains(b, []byte(`"dead":[]`)) {
		t.Fatalf("dead: %d %s", code, b)
	}
	if code, b := c.do("POST", "/v1/dead/nope/retry", "", nil); code != 404 || errorCode(t, b) != CodeNotFound {
		t.Fatalf("retry: %d %s", code, b)
	}
	mf := scrape(t, c)
	if got := value(mf, "plumb_serve_auth_failures_total", nil); got != 7 { // 4, and the 3 doubled headers
		t.Errorf("auth failures = %v, want 7", got)
	}
	_ = s
}

func TestRefusesOpenNonLoopback(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeIntegration(t, dir, "http://127.0.0.1:1")
	for _, addr := range []string{"0.0.0.0:0", ":8080", "192.0.2.1:80"} {
		if _, err := New(Config{Dir: dir, Addr: addr, DataDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "without API tokens") {
			t.Errorf("%s: err = %v, want a refusal", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0"} {
		if !loopback(addr) {
			t.Errorf("%s is loopback", addr)
		}
	}
}

// scrape reads /metrics with the Prometheus text parser.
func scrape(t testing.TB, c client) map[string]*dto.MetricFamily {
	t.Helper()
	code, b := c.do("GET", "/metrics", "", nil)
	if code != 200 {
		t.Fatalf("metrics: %d %s", code, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(bytes.NewReader(b))
	must(t, err)
	return mf
}

// value sums the samples of family name whose labels include want.
func value(mf map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := mf[name]
	if f == nil {
		return -1
	}
	sum := 0.0
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

func TestMetricsCounts(t *testing.T) {
	t.Parallel()
	_, c, _ := setup(t)
	const n = 12
	for i := range n {
		email := "a@x.example"
		if i%4 == 0 {
			email = "a@reject.example" // 3 failures
		}
		c.do("POST", "/v1/integrations/partner/run", "application/json", fmt.Appendf(nil, `{"n": %d, "email": %q}`, i, email))
	}
	var body bytes.Buffer
	for i := range n {
		fmt.Fprintf(&body, "{\"n\": %d, \"email\": \"b@x.example\"}\n", 100+i)
	}
	code, b := c.do("POST", "/v1/integrations/partner/leads", "application/x-ndjson", body.Bytes())
	if code != 202 {
		t.Fatalf("accept: %d %s", code, b)
	}
	for _, l := range decode[accepted](t, b).Leads {
		c.waitDone(l.ID)
	}
	mf := scrape(t, c)
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"plumb_serve_leads_total", map[string]string{"integration": "partner", "mode": "sync", "outcome": "success"}, n - 3},
		{"plumb_serve_leads_total", map[string]string{"integration": "partner", "mode": "sync", "outcome": "failure", "class": "rejected"}, 3},
		{"plumb_serve_leads_total", map[string]string{"integration": "partner", "mode": "async", "outcome": "success"}, n},
		{"plumb_serve_lead_duration_seconds", map[string]string{"integration": "partner", "mode": "sync"}, n},
		{"plumb_serve_lead_duration_seconds", map[string]string{"integration": "partner", "mode": "async"}, n},
		{"plumb_serve_leads_accepted_total", map[string]string{"integration": "partner"}, n},
		{"plumb_serve_http_requests_total", map[string]string{"route": "/v1/integrations/{name}/run", "code": "200"}, n - 3},
		{"plumb_serve_http_requests_total", map[string]string{"route": "/v1/integrations/{name}/run", "code": "422"}, 3},
		{"plumb_serve_http_requests_total", map[string]string{"route": "/v1/integrations/{name}/leads", "code": "202"}, 1},
		{"plumb_serve_integration_up", map[string]string{"integration": "partner"}, 1},
		{"plumb_queue_up", nil, 1},
		{"plumb_queue_dead", nil, 0},
		{"plumb_serve_leads_running", map[string]string{"integration": "partner"}, 0},
		// per step and try: the engine's series, one set for both modes
		{"plumb_step_results_total", map[string]string{"integration": "partner", "step": "submit", "outcome": "success"}, 2*n - 3},
		{"plumb_step_results_total", map[string]string{"integration": "partner", "step": "submit", "outcome": "failure"}, 3},
		{"plumb_http_requests_total", map[string]string{"integration": "partner", "step": "submit", "code": "2xx"}, 2 * n},
		{"plumb_step_duration_seconds", map[string]string{"integration": "partner", "step": "submit"}, 2 * n},
		{"plumb_leads_total", map[string]string{"integration": "partner", "outcome": "success"}, 2*n - 3},
	}
	for _, ch := range checks {
		if got := value(mf, ch.name, ch.labels); got != ch.want {
			t.Errorf("%s%v = %v, want %v", ch.name, ch.labels, got, ch.want)
		}
	}
	if value(mf, "plumb_queue_depth", nil) < 0 || value(mf, "plumb_queue_in_flight", nil) < 0 {
		t.Error("queue gauges missing")
	}
}

func TestReloadKeepsOldVersion(t *testing.T) {
	t.Parallel()
	s, c, _ := setup(t)
	run := func() int {
		code, _ := c.do("POST", "/v1/integrations/partner/run", "application/json", []byte(`{"n": 1, "email": "a@x.example"}`))
		return code
	}
	info := func() IntegrationInfo {
		code, b := c.do("GET", "/v1/integrations", "", nil)
		list := decode[struct{ Integrations []IntegrationInfo }](t, b)
		if code != 200 || len(list.Integrations) != 1 {
			t.Fatalf("integrations: %d %s", code, b)
		}
		return list.Integrations[0]
	}
	before := info()
	if before.Health != "ok" || before.Name != "partner" || len(before.Steps) != 1 || before.Steps[0] != "submit" {
		t.Fatalf("before: %+v", before)
	}
	file := filepath.Join(s.cfg.Dir, "partner.yaml")
	must(t, os.WriteFile(file, []byte(strings.Replace(partnerYAML, "method: POST", "method: [POST", 1)), 0o600))
	rep, err := s.Reload()
	must(t, err)
	if len(rep.Failed) != 1 {
		t.Fatalf("reload report: %+v", rep)
	}
	after := info()
	if after.Health != "stale" || after.Error == "" || after.Version != before.Version {
		t.Fatalf("after a broken reload: %+v", after)
	}
	if code := run(); code != 200 {
		t.Fatalf("the old version should still run: %d", code)
	}
	if code, _ := c.do("GET", "/readyz", "", nil); code != 200 {
		t.Fatalf("readyz with an old version running: %d", code)
	}
	// fixed (and changed): the new version runs
	must(t, os.WriteFile(file, []byte(strings.Replace(partnerYAML, "timeout: 60s", "timeout: 30s", 1)), 0o600))
	rep, err = s.Reload()
	must(t, err)
	if len(rep.Loaded) != 1 || len(rep.Failed) != 0 {
		t.Fatalf("reload report: %+v", rep)
	}
	if fixed := info(); fixed.Health != "ok" || fixed.Version == before.Version || fixed.Error != "" {
		t.Fatalf("after the fix: %+v", fixed)
	}
	if code := run(); code != 200 {
		t.Fatalf("new version: %d", code)
	}
	// unchanged files keep their runner
	rep, err = s.Reload()
	must(t, err)
	if len(rep.Kept) != 1 {
		t.Fatalf("reload report: %+v", rep)
	}
}

func TestNotReadyWithBrokenFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeIntegration(t, dir, "http://127.0.0.1:1")
	must(t, os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte("version: 1\nname: [\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "broken.test.yaml"), []byte("not: read"), 0o600))
	s := testServer(t, Config{Dir: dir})
	c := client{t: t, base: "http://" + s.Addr()}
	code, b := c.do("GET", "/readyz", "", nil)
	if code != 503 || errorCode(t, b) != CodeNotReady {
		t.Fatalf("readyz: %d %s", code, b)
	}
	_, b = c.do("GET", "/v1/integrations", "", nil)
	list := decode[struct{ Integrations []IntegrationInfo }](t, b)
	if len(list.Integrations) != 2 || list.Integrations[0].Health != "failed" || list.Integrations[1].Health != "ok" {
		t.Fatalf("integrations: %s", b)
	}
}

func TestLeadForAnIntegrationThatIsGone(t *testing.T) {
	t.Parallel()
	s, c, _ := setup(t)
	p, err := s.Queue().Publish(context.Background(), queue.Job{Integration: "gone", Payload: []byte(`{"n": 1}`)})
	must(t, err)
	st := c.waitDone(p.ID)
	if st.Result == nil || st.Result.Outcome != "error" || !strings.Contains(st.Result.Reason, `"gone" is not served`) {
		t.Fatalf("status: %+v", st)
	}
}

func TestDiscover(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range []string{"a.yaml", "a.settings.yaml", "a.test.yaml", "settings.yaml", "b.yml", "notes.txt", "sub/integration.yaml", "sub/settings.yaml", "empty/x.yaml"} {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o700))
		must(t, os.WriteFile(filepath.Join(dir, f), nil, 0o600))
	}
	got, err := Discover(dir)
	must(t, err)
	want := []string{filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yml"), filepath.Join(dir, "sub/integration.yaml")}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Discover = %v, want %v", got, want)
	}
	if sf := SettingsFile(want[0]); sf != filepath.Join(dir, "a.settings.yaml") {
		t.Errorf("settings of a.yaml: %s", sf)
	}
	if sf := SettingsFile(want[2]); sf != filepath.Join(dir, "sub/settings.yaml") {
		t.Errorf("settings of sub: %s", sf)
	}
}

// A dead letter (written here the way the queue writes one) is listed by
// GET /v1/dead and re-queued by POST /v1/dead/{id}/retry, then runs.
func TestDeadLetterRetry(t *testing.T) {
	t.Parallel()
	s, c, _ := setup(t)
	msg := &nats.Msg{Subject: "plumb.dead.lead-1", Data: []byte(`{"n": 5, "email": "d@x.example"}`), Header: nats.Header{}}
	msg.Header.Set(queue.HeaderJobID, "lead-1")
	msg.Header.Set(queue.HeaderIntegration, "partner")
	msg.Header.Set(queue.HeaderError, "deliveries exhausted")
	msg.Header.Set(queue.HeaderDeliveries, "5")
	_, err := s.Queue().JetStream().PublishMsg(context.Background(), msg)
	must(t, err)
	code, b := c.do("GET", "/v1/dead", "", nil)
	dead := decode[struct{ Dead []DeadLead }](t, b)
	if code != 200 || len(dead.Dead) != 1 || dead.Dead[0].ID != "lead-1" || dead.Dead[0].Integration != "partner" ||
		dead.Dead[0].Deliveries != 5 || dead.Dead[0].Error != "deliveries exhausted" || !bytes.Contains(dead.Dead[0].Lead, []byte("d@x.example")) {
		t.Fatalf("dead: %d %s", code, b)
	}
	if code, b := c.do("GET", "/v1/leads/lead-1", "", nil); code != 200 || decode[leadStatus](t, b).State != "dead" {
		t.Fatalf("status of a dead lead: %d %s", code, b)
	}
	code, b = c.do("POST", "/v1/dead/lead-1/retry", "", nil)
	if code != 202 || decode[Accepted](t, b).ID != "lead-1" {
		t.Fatalf("retry: %d %s", code, b)
	}
	if st := c.waitDone("lead-1"); st.Result.Outcome != "success" {
		t.Fatalf("after retry: %+v", st.Result)
	}
	if code, b := c.do("GET", "/v1/dead", "", nil); !bytes.Contains(b, []byte(`"dead":[]`)) {
		t.Fatalf("dead after retry: %d %s", code, b)
	}
}

// The statistics count every class the engine declares by name.
func TestStatClassesAreTheEnginesClasses(t *testing.T) {
	if got := statClasses[:len(statClasses)-1]; !slices.Equal(got, engine.Classes()) {
		t.Fatalf("statClasses %q, engine.Classes %q", got, engine.Classes())
	}
}

// A settings file that is a named pipe does not hang the service's start
// (nor any reload): it is refused as not a regular file and the
// integration is not served, with that reason.
func TestSettingsFileNamedPipeRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeIntegration(t, dir, "http://127.0.0.1:1")
	settings := filepath.Join(dir, "partner.settings.yaml")
	must(t, os.Remove(settings))
	must(t, syscall.Mkfifo(settings, 0o600))
	s := testServer(t, Config{Dir: dir})
	c := client{t: t, base: "http://" + s.Addr()}
	code, b := c.do("GET", "/v1/integrations", "", nil)
	if code != 200 || !strings.Contains(string(b), "not a regular file") {
		t.Fatalf("an integration whose settings file is a named pipe: %d %s", code, b)
	}
}
