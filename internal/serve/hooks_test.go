package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/hookjob"
	"github.com/plumbhq/plumb/internal/queue"
	"github.com/plumbhq/plumb/webhook"
)

const hookSecret = "hook-test-secret-0123456789"

// hookYAML is an integration receiving seed 000's webhooks: a
// lead.status_changed event is sent to the partner; other events skip.
const hookYAML = `version: 1
name: acare
settings:
  base_url: { required: true }
  hook_secret: { required: true, secret: true }
webhook:
  verify: { preset: actuallycare, secrets: ["{{settings.hook_secret}}"] }
  dedupe: { key: "{{lead.event}}:{{lead.timestamp}}", window: 1h }
  max_bytes: 4096
steps:
  - name: submit
    when: lead.event == "lead.status_changed"
    request:
      method: POST
      url: "{{settings.base_url}}/submit"
      body:
        json:
          n: "{{lead.data.n}}"
          email: "{{lead.data.email}}"
    timeout: 60s
`

func writeHookIntegration(t testing.TB, dir, baseURL string) {
	t.Helper()
	must(t, os.WriteFile(filepath.Join(dir, "acare.yaml"), []byte(hookYAML), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "acare.settings.yaml"),
		[]byte("base_url: "+baseURL+"\nhook_secret: "+hookSecret+"\n"), 0o600))
}

// event is the body of seed 000's event n.
func event(n int) []byte {
	return fmt.Appendf(nil, `{"event":"lead.status_changed","team_id":"t1","timestamp":"2026-06-11T17:42:%02d.%03dZ","data":{"n":%d,"email":"lead%d@x.example"}}`,
		n%60, n, n, n)
}

// delivery is one webhook POST and its answer.
type delivery struct {
	n       int
	forged  bool
	status  int
	answer  HookAnswer
	body    string
	postErr error
}

// post sends body to the hook signed with secret (unsigned when secret is
// ""); it is safe to call from any goroutine.
func post(base, path string, body []byte, secret string) (int, []byte, error) {
	req, err := http.NewRequest("POST", base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		v, err := webhook.New(webhook.Config{Preset: webhook.PresetActuallyCare, Secrets: []string{secret}}, nil)
		if err != nil {
			return 0, nil, err
		}
		h, err := v.Sign(body, "", time.Time{})
		if err != nil {
			return 0, nil, err
		}
		for k, vs := range h {
			req.Header[k] = vs
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// TestWebhookEndToEnd: 50 distinct events, 10 copies of some of them and 5
// forged ones, posted at once to a real server whose partner holds every
// answer until the test has all 65 answers: the answers cannot have waited
// for processing. Then exactly the 50 events reach the partner, once each.
func TestWebhookEndToEnd(t *testing.T) {
	p := newPartner(t)
	release := make(chan struct{})
	var mu sync.Mutex
	seen := map[int]bool{}
	all := make(chan struct{})
	p.hook = func(n int) {
		mu.Lock()
		seen[n] = true
		if len(seen) == 50 {
			close(all)
		}
		mu.Unlock()
		<-release // hold the answer until the test says so
	}
	dir, data := t.TempDir(), t.TempDir()
	writeHookIntegration(t, dir, p.URL)
	logs := &lockedBuffer{}
	s := testServer(t, Config{Dir: dir, DataDir: data, Concurrency: 4,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	base := "http://" + s.Addr()

	var sends []*delivery
	for n := range 50 {
		sends = append(sends, &delivery{n: n})
	}
	for n := range 10 {
		sends = append(sends, &delivery{n: n * 5}) // a copy of event n*5
	}
	for n := range 5 {
		sends = append(sends, &delivery{n: 100 + n, forged: true})
	}
	var wg sync.WaitGroup
	for _, d := range sends {
		wg.Go(func() {
			secret := hookSecret
			if d.forged {
				secret = "not-the-secret"
			}
			code, b, err := post(base, "/v1/hooks/acare", event(d.n), secret)
			d.status, d.body, d.postErr = code, string(b), err
			if code == 200 {
				d.postErr = errors.Join(err, json.Unmarshal(b, &d.answer))
			}
		})
	}
	answered := make(chan struct{})
	go func() { wg.Wait(); close(answered) }()
	select {
	case <-answered:
	case <-time.After(60 * time.Second): // a hang guard, not a timing assertion
		close(release)
		t.Fatal("the receiver did not answer while the partner held its answers: accepting waits for processing")
	}
	// every answer is in, and the partner has not answered anything yet
	close(release)

	ok, dups, refused := 0, 0, 0
	ids := map[int]string{}
	for _, d := range sends {
		switch {
		case d.postErr != nil:
			t.Errorf("event %d: %v", d.n, d.postErr)
		case d.forged && d.status == 401 && strings.Contains(d.body, CodeBadSignature):
			refused++
		case d.forged:
			t.Errorf("forged event %d: %d %s", d.n, d.status, d.body)
		case d.status != 200:
			t.Errorf("event %d: %d %s", d.n, d.status, d.body)
		case d.answer.Duplicate:
			dups++
		default:
			ok++
			ids[d.n] = d.answer.ID
		}
		if d.status == 200 && !hookjob.IsJob(d.answer.ID) {
			t.Errorf("event %d: answer id %q", d.n, d.answer.ID)
		}
	}
	if ok != 50 || dups != 10 || refused != 5 {
		t.Fatalf("answers: %d accepted, %d duplicates, %d refused; want 50, 10, 5", ok, dups, refused)
	}
	if len(ids) != 50 {
		t.Fatalf("%d distinct events accepted, want 50", len(ids))
	}

	select {
	case <-all:
	case <-time.After(60 * time.Second):
		t.Fatal("not every event reached the partner")
	}
	c := client{t: t, base: base}
	for n, id := range ids {
		st := c.waitDone(id)
		if st.Result == nil || st.Result.Outcome != "success" {
			t.Errorf("event %d: %+v", n, st.Result)
		}
	}
	code, m := c.do("GET", "/metrics", "", nil)
	if code != 200 {
		t.Fatalf("metrics: %d", code)
	}
	for _, want := range []string{
		`plumb_serve_webhooks_total{integration="acare",result="accepted"} 50`,
		`plumb_serve_webhooks_total{integration="acare",result="duplicate"} 10`,
		`plumb_serve_webhooks_total{integration="acare",result="bad_signature"} 5`,
	} {
		if !bytes.Contains(m, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// the secret appears in no answer and no metric
	for _, d := range sends {
		if strings.Contains(d.body, hookSecret) {
			t.Errorf("an answer holds the secret: %s", d.body)
		}
	}
	if bytes.Contains(m, []byte(hookSecret)) {
		t.Error("the metrics hold the secret")
	}
	if logs.String() == "" || strings.Contains(logs.String(), hookSecret) {
		t.Errorf("the logs (debug level) are empty or hold the secret")
	}

	// a copy sent after processing is still a duplicate, and is not run
	code, b, err := post(base, "/v1/hooks/acare", event(7), hookSecret)
	must(t, err)
	if code != 200 || !strings.Contains(string(b), `"duplicate":true`) {
		t.Errorf("late copy: %d %s", code, b)
	}
	must(t, s.Shutdown(context.Background()))
	for n, count := range p.snapshot() {
		if count != 1 {
			t.Errorf("event %d reached the partner %d times, want once", n, count)
		}
	}
	if got := len(p.snapshot()); got != 50 {
		t.Errorf("%d events reached the partner, want 50", got)
	}
}

// TestWebhookRefusals: wrong content type 415, oversized 413, unsigned and
// stale 401, a body that is not an object 400; nothing is stored for any.
func TestWebhookRefusals(t *testing.T) {
	p := newPartner(t)
	dir := t.TempDir()
	writeHookIntegration(t, dir, p.URL)
	// a Standard Webhooks hook, whose timestamps are signed
	std := strings.NewReplacer("name: acare", "name: std",
		`preset: actuallycare, secrets: ["{{settings.hook_secret}}"]`, `preset: standard-webhooks, secrets: ["{{settings.hook_secret}}"], tolerance: 1m`,
		`dedupe: { key: "{{lead.event}}:{{lead.timestamp}}", window: 1h }`, "dedupe: { window: 1h }").Replace(hookYAML)
	stdSecret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	must(t, os.WriteFile(filepath.Join(dir, "std.yaml"), []byte(std), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "std.settings.yaml"), []byte("base_url: "+p.URL+"\nhook_secret: "+stdSecret+"\n"), 0o600))
	s := testServer(t, Config{Dir: dir, Tokens: []string{testAPIToken}})
	c := client{t: t, base: "http://" + s.Addr()} // no bearer token: hooks are open

	v, err := webhook.New(webhook.Config{Preset: webhook.PresetActuallyCare, Secrets: []string{hookSecret}}, nil)
	must(t, err)
	signed := func(body []byte) []string {
		h, err := v.Sign(body, "", time.Time{})
		must(t, err)
		return []string{"X-Webhook-Signature", h.Get("X-Webhook-Signature")}
	}
	big := fmt.Appendf(nil, `{"event":"x","pad":"%s"}`, strings.Repeat("a", 5000))
	cases := []struct {
		name, ctype string
		body        []byte
		hdr         []string
		status      int
		code        string
	}{
		{"text/plain", "text/plain", event(1), signed(event(1)), 415, "unsupported_media_type"},
		{"oversized", "application/json", big, signed(big), 413, "body_too_large"},
		{"unsigned", "application/json", event(1), nil, 401, CodeMissingSignature},
		{"tampered", "application/json", event(2), signed(event(1)), 401, CodeBadSignature},
		{"not an object", "application/json", []byte(`[1]`), signed([]byte(`[1]`)), 400, "invalid_json"},
	}
	for _, tc := range cases {
		code, b := c.do("POST", "/v1/hooks/acare", tc.ctype, tc.body, tc.hdr...)
		if code != tc.status || errorCode(t, b) != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, code, b, tc.status, tc.code)
		}
	}
	sv, err := webhook.New(webhook.Config{Preset: webhook.PresetStandard, Secrets: []string{stdSecret}}, nil)
	must(t, err)
	body := []byte(`{"type":"lead.status_changed","data":{"n":1}}`)
	h, err := sv.Sign(body, "msg_1", time.Now().Add(-10*time.Minute))
	must(t, err)
	hdr := []string{}
	for k := range h {
		hdr = append(hdr, k, h.Get(k))
	}
	if code, b := c.do("POST", "/v1/hooks/std", "application/json", body, hdr...); code != 401 || errorCode(t, b) != CodeStale {
		t.Errorf("stale: %d %s", code, b)
	}
	// GET is not a delivery; the API beside the hooks still wants its token
	if code, _ := c.do("GET", "/v1/hooks/acare", "", nil); code != 405 {
		t.Errorf("GET hook: %d, want 405", code)
	}
	if code, _ := c.do("GET", "/v1/queue", "", nil); code != 401 {
		t.Errorf("GET /v1/queue without a token: %d, want 401", code)
	}
	st, err := s.Queue().Stats(context.Background())
	must(t, err)
	if st.Depth != 0 {
		t.Errorf("refused deliveries stored %d jobs", st.Depth)
	}
	if n := len(p.snapshot()); n != 0 {
		t.Errorf("the partner saw %d requests", n)
	}
}

// TestWebhookRetryDeadReplay: an event whose processing keeps failing is
// retried with backoff, dead-lettered, and replayed once the partner works.
func TestWebhookRetryDeadReplay(t *testing.T) {
	var mu sync.Mutex
	failing, calls := true, 0
	pp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if failing {
			http.Error(w, "down", 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(pp.Close)
	dir := t.TempDir()
	writeHookIntegration(t, dir, pp.URL)
	s := testServer(t, Config{Dir: dir, Queue: queue.Config{MaxDeliver: 2, RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 20 * time.Millisecond}})
	c := client{t: t, base: "http://" + s.Addr()}
	code, b, err := post(c.base, "/v1/hooks/acare", event(3), hookSecret)
	must(t, err)
	if code != 200 {
		t.Fatalf("post: %d %s", code, b)
	}
	id := decode[HookAnswer](t, b).ID
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, b := c.do("GET", "/v1/leads/"+id, "", nil)
		if code == 200 && decode[leadStatus](t, b).State == "dead" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("event not dead-lettered: %d %s", code, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, b = c.do("GET", "/v1/dead", "", nil)
	if code != 200 || !strings.Contains(string(b), id) || !strings.Contains(string(b), "HTTP 500") {
		t.Fatalf("dead letters: %d %s", code, b)
	}
	mu.Lock()
	if calls < 2 {
		t.Errorf("%d partner calls before the dead letter, want 2 (one retry)", calls)
	}
	failing = false
	mu.Unlock()
	if code, b := c.do("POST", "/v1/dead/"+id+"/retry", "", nil); code != 202 {
		t.Fatalf("replay: %d %s", code, b)
	}
	st := c.waitDone(id)
	if st.Result == nil || st.Result.Outcome != "success" {
		t.Fatalf("replayed event: %+v", st.Result)
	}
}

// TestWebhookKill9: kill -9 while events are being processed; after the
// restart every accepted event reaches the partner (0 lost).
func TestWebhookKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	const events = 200
	p := newPartner(t)
	g := newGate(60, childConcurrency)
	p.hook = g.hook
	dir, data := t.TempDir(), t.TempDir()
	writeHookIntegration(t, dir, p.URL)

	first := startChild(t, dir, data)
	base := "http://" + first.addr
	ids := map[string]int{}
	for n := range events {
		code, b, err := post(base, "/v1/hooks/acare", event(n), hookSecret)
		if err != nil || code != 200 {
			t.Fatalf("event %d: %d %s %v", n, code, b, err)
		}
		var a HookAnswer
		must(t, json.Unmarshal(b, &a))
		ids[a.ID] = n
	}
	<-g.full // every worker is inside a partner call
	first.Kill9(t)
	inFlight := g.heldLeads()
	close(g.release)

	drainAfterRestart(t, dir, data, func(c client) {
		for id, n := range ids {
			if st := c.waitDone(id); st.Result == nil || st.Result.Outcome != "success" {
				t.Errorf("event %d: %+v", n, st.Result)
			}
		}
	})
	dups := checkRepeats(t, p, events, inFlight, "event")
	t.Logf("kill -9: %d events accepted, %d in flight at the kill, 0 lost; partner-side repeats: %d (all among those in flight)", len(ids), len(inFlight), dups)
}

// TestWebhookExample serves examples/actuallycare-webhook against the
// sandbox: the seed's signed event is accepted at /webhooks/actuallycare and
// creates the contact in the CRM.
func TestWebhookExample(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "actuallycare-webhook")
	must(t, os.MkdirAll(dir, 0o700))
	for _, f := range []string{"integration.yaml", "settings.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "actuallycare-webhook", f))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dir, f), b, 0o600))
	}
	s := testServer(t, Config{Dir: filepath.Dir(dir), Sandbox: true})
	c := client{t: t, base: "http://" + s.Addr()}
	body, err := os.ReadFile(filepath.Join("..", "..", "examples", "actuallycare-webhook", "lead.json"))
	must(t, err)
	code, b, err := post(c.base, "/webhooks/actuallycare", body, "demo-webhook-secret")
	must(t, err)
	if code != 200 {
		t.Fatalf("delivery: %d %s", code, b)
	}
	st := c.waitDone(decode[HookAnswer](t, b).ID)
	if st.Result == nil || st.Result.Outcome != "success" || fmt.Sprint(st.Result.Lead["crm"]) != "map[action:created id:C-00001]" {
		t.Fatalf("event: %+v", st.Result)
	}
	if code, b, _ := post(c.base, "/webhooks/actuallycare", body, "demo-webhook-secret"); code != 200 || !strings.Contains(string(b), `"duplicate":true`) {
		t.Errorf("copy: %d %s", code, b)
	}
	if code, b := c.do("GET", "/v1/integrations", "", nil); code != 200 || !strings.Contains(string(b), `"hook":"/webhooks/actuallycare"`) {
		t.Errorf("integrations: %d %s", code, b)
	}
	if code, _, _ := post(c.base, "/v1/hooks/actuallycare-webhook", body, "demo-webhook-secret"); code == 200 {
		t.Error("the default path answers although the file declares another")
	}
}

// lockedBuffer is a log destination safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
