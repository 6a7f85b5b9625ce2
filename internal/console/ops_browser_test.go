package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"

	"github.com/plumbhq/plumb/internal/console"
	"github.com/plumbhq/plumb/internal/queue"
	"github.com/plumbhq/plumb/internal/serve"
	"github.com/plumbhq/plumb/webhook"
)

const opsToken = "3f9a1c7e5b2d8f4a6c0e9b1d7f3a5c8e"

// opsPartnerYAML: one POST; "ok": false is a failure.
const opsPartnerYAML = `version: 1
name: partner
settings:
  base_url: { required: true }
steps:
  - name: submit
    request:
      method: POST
      url: "{{settings.base_url}}/submit"
      body:
        json: { email: "{{lead.email}}" }
    timeout: 60s
    capture:
      ok: { json: ok, type: bool }
    outcome:
      failure_when: captured.ok == false
      reason: rejected by the partner
`

// opsService is a real plumb serve (queue, dead letters, stats) behind a
// console whose API passage adds a stub of the lead listing (GET
// /v1/leads), which the service does not have yet, and one stored record
// with tries and a parallel group.
type opsService struct {
	t    *testing.T
	srv  *serve.Server
	api  string // the real service's base URL
	con  *httptest.Server
	mu   sync.Mutex
	rows []map[string]any // the stub's records, newest first
	seen []url.Values     // queries the stub answered
}

func newOpsService(t *testing.T) *opsService {
	t.Helper()
	partner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct{ Email string }
		json.NewDecoder(r.Body).Decode(&b)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok": %v}`, !strings.HasSuffix(b.Email, "@reject.example"))
	}))
	t.Cleanup(partner.Close)
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "partner.yaml"), []byte(opsPartnerYAML), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "partner.settings.yaml"), []byte("base_url: "+partner.URL+"\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "hooked.yaml"), []byte(opsHookYAML), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "hooked.settings.yaml"), []byte("base_url: "+partner.URL+"\nhook_secret: "+opsHookSecret+"\n"), 0o600))
	cfg := serve.Config{Dir: dir, DataDir: t.TempDir(), Addr: "127.0.0.1:0", Tokens: []string{opsToken},
		Logger: slog.New(slog.DiscardHandler)}
	cfg.Queue.SyncInterval = time.Second
	s, err := serve.New(cfg)
	must(t, err)
	must(t, s.Start())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	o := &opsService{t: t, srv: s, api: "http://" + s.Addr()}

	real, _ := url.Parse(o.api)
	proxy := httputil.NewSingleHostReverseProxy(real)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/leads", o.stubList)
	mux.HandleFunc("GET /v1/leads/stub-parallel", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"id": "stub-parallel", "integration": "partner", "state": "done", "record": stubRecord})
	})
	mux.HandleFunc("GET /v1/batches/b-1", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"id": "b-1", "integration": "partner", "total": 6, "done": true,
			"state": map[string]int{"done": 6}, "outcomes": map[string]int{"success": 4, "failure": 2}})
	})
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+opsToken)
		proxy.ServeHTTP(w, r)
	}))
	c, err := console.New(console.Config{Dir: dir, Files: func() ([]string, error) { return serve.Discover(dir) },
		SettingsFile: serve.SettingsFile, API: mux})
	must(t, err)
	o.con = httptest.NewServer(c)
	t.Cleanup(o.con.Close)
	return o
}

const opsHookSecret = "ops-hook-secret-0123456789abcdef"

// opsHookYAML receives signed webhooks and sends each event's email on.
const opsHookYAML = `version: 1
name: hooked
settings:
  base_url: { required: true }
  hook_secret: { required: true, secret: true }
webhook:
  verify: { preset: actuallycare, secrets: ["{{settings.hook_secret}}"] }
steps:
  - name: submit
    request:
      method: POST
      url: "{{settings.base_url}}/submit"
      body:
        json: { email: "{{lead.email}}" }
`

// deliver posts a webhook delivery to the real service, signed with
// secret ("" for none), and returns the status.
func (o *opsService) deliver(body, secret string) int {
	o.t.Helper()
	req, err := http.NewRequest("POST", o.api+"/v1/hooks/hooked", strings.NewReader(body))
	must(o.t, err)
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		v, err := webhook.New(webhook.Config{Preset: webhook.PresetActuallyCare, Secrets: []string{secret}}, nil)
		must(o.t, err)
		h, err := v.Sign([]byte(body), "", time.Time{})
		must(o.t, err)
		for k, vs := range h {
			req.Header[k] = vs
		}
	}
	resp, err := http.DefaultClient.Do(req)
	must(o.t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// stubRecord is a stored lead as the history keeps it: two steps run in
// parallel, one retried, with the masked exchange of each try.
var stubRecord = map[string]any{
	"id": "stub-parallel", "integration": "partner", "source": "leads", "outcome": "success", "duration_ms": 420.5,
	"steps": []any{
		map[string]any{"name": "enrich", "outcome": "success", "group": "g1", "attempts": 2, "duration_ms": 300, "tries": []any{
			map[string]any{"attempt": 1, "status": 503, "rule": "retry (default rule)", "duration_ms": 100,
				"request": map[string]any{"method": "POST", "url": "https://api.example/enrich", "header": map[string]any{"Authorization": []string{"Bearer ****"}, "X-Api-Key": []string{"sk-live-stub"}, "Content-Type": []string{"application/json"}},
					"body": `{"email":"a@x.example"}`}, "response": map[string]any{"status": 503, "body": "busy"}},
			map[string]any{"attempt": 2, "status": 200, "duration_ms": 200,
				"request":  map[string]any{"method": "POST", "url": "https://api.example/enrich", "header": map[string]any{"Content-Type": []string{"application/json"}}, "body": `{"email":"a@x.example"}`},
				"response": map[string]any{"status": 200, "body": `{"score":7}`}},
		}},
		map[string]any{"name": "verify", "outcome": "success", "group": "g1", "attempts": 1, "duration_ms": 120, "tries": []any{
			map[string]any{"attempt": 1, "status": 200, "duration_ms": 120}}},
		map[string]any{"name": "submit", "outcome": "success", "attempts": 1, "duration_ms": 80},
	},
}

// stubList answers GET /v1/leads from o.rows as the history will:
// filtered, newest first, paged with an opaque cursor. q=many answers
// endless pages (the page must not keep them all).
func (o *opsService) stubList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	o.mu.Lock()
	o.seen = append(o.seen, q)
	rows := o.rows
	o.mu.Unlock()
	if q.Get("q") == "many" || q.Get("q") == "huge" {
		n, _ := strconv.Atoi(q.Get("cursor"))
		size := 200
		if q.Get("q") == "huge" {
			size = 700 // a page larger than the page keeps
		}
		var page []map[string]any
		for i := range size {
			page = append(page, map[string]any{"id": fmt.Sprintf("%s-%d", q.Get("q"), n+i), "integration": "partner", "outcome": "success"})
		}
		json.NewEncoder(w).Encode(map[string]any{"leads": page, "next": strconv.Itoa(n + size)})
		return
	}
	out := []map[string]any{}
	for _, row := range rows {
		if (q.Get("outcome") == "" || row["outcome"] == q.Get("outcome")) && (q.Get("integration") == "" || row["integration"] == q.Get("integration")) &&
			(q.Get("class") == "" || row["class"] == q.Get("class")) && (q.Get("batch") == "" || row["batch"] == q.Get("batch")) {
			out = append(out, row)
		}
	}
	json.NewEncoder(w).Encode(map[string]any{"leads": out})
}

// call is a request to the real service's API.
func (o *opsService) call(method, path, body string) (int, []byte) {
	o.t.Helper()
	req, err := http.NewRequest(method, o.api+path, strings.NewReader(body))
	must(o.t, err)
	req.Header.Set("Authorization", "Bearer "+opsToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	must(o.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// runLead queues one lead in the real service (POST /leads), waits for
// its result and adds its record to the stub's listing; it returns the
// lead's id.
func (o *opsService) runLead(email string) string {
	o.t.Helper()
	code, b := o.call("POST", "/v1/integrations/partner/leads", `{"email":"`+email+`"}`)
	var acc struct{ Leads []struct{ ID string } }
	json.Unmarshal(b, &acc)
	if code != 202 || len(acc.Leads) != 1 {
		o.t.Fatalf("accept: %d %s", code, b)
	}
	id := acc.Leads[0].ID
	var st struct {
		State  string
		Result struct{ Outcome, Class, Reason string }
	}
	// a condition, not a clock: the deadline only turns a hang into a failure
	for deadline := time.Now().Add(60 * time.Second); st.State != "done"; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			o.t.Fatalf("lead %s not done: %s", id, b)
		}
		_, b = o.call("GET", "/v1/leads/"+id, "")
		json.Unmarshal(b, &st)
	}
	o.mu.Lock()
	o.rows = append([]map[string]any{{"id": id, "integration": "partner", "source": "leads", "outcome": st.Result.Outcome, "class": st.Result.Class,
		"reason": st.Result.Reason, "finished": time.Now().UTC().Format(time.RFC3339Nano), "duration_ms": 3}}, o.rows...)
	o.mu.Unlock()
	return id
}

// deadLetter stores a dead letter in the real service's queue.
func (o *opsService) deadLetter(id string) {
	msg := &nats.Msg{Subject: "plumb.dead." + id, Data: []byte(`{"email": "dead@x.example"}`), Header: nats.Header{}}
	msg.Header.Set(queue.HeaderJobID, id)
	msg.Header.Set(queue.HeaderIntegration, "partner")
	msg.Header.Set(queue.HeaderError, "deliveries exhausted")
	msg.Header.Set(queue.HeaderDeliveries, "5")
	_, err := o.srv.Queue().JetStream().PublishMsg(context.Background(), msg)
	must(o.t, err)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestOpsBrowser drives the operations page in headless Chromium against a
// real service: the lead list filters, a stored lead's timeline shows its
// tries side by side with copy as curl masked, a real lead's timeline, the
// health charts render with the service's counts, a dead letter is retried
// from the page, and the list stays bounded however far it is paged.
// PLUMB_CONSOLE_SCREENSHOTS=DIR saves docs/console.md's ops-*.png there.
func TestOpsBrowser(t *testing.T) {
	bin := needBrowser(t)
	o := newOpsService(t)
	var first string
	for i := range 6 {
		email := fmt.Sprintf("l%d@x.example", i)
		if i%3 == 2 {
			email = fmt.Sprintf("l%d@reject.example", i)
		}
		if id := o.runLead(email); i == 0 {
			first = id
		}
	}
	o.mu.Lock()
	o.rows = append([]map[string]any{{"id": "stub-parallel", "integration": "partner", "source": "leads", "outcome": "success", "duration_ms": 420.5}}, o.rows...)
	o.mu.Unlock()
	o.deadLetter("dead-1")

	shots := os.Getenv("PLUMB_CONSOLE_SCREENSHOTS")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1320, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()
	eval := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("evaluating %s: %v", js, err)
		}
		return s
	}
	poll := func(what, js string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("waiting for %s (%s): %v; status: %s", what, js, err, eval(`document.querySelector('main > .panel:not([hidden]) .status') ? document.querySelector('main > .panel:not([hidden]) .status').textContent : ''`))
		}
	}
	shot := func(name string) {
		t.Helper()
		if shots == "" {
			return
		}
		b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(shots, name), b, 0o644))
	}
	rows := `String(document.querySelectorAll('#leads tbody tr').length)`

	// The lead list, then filtered by outcome.
	if err := chromedp.Do(ctx, chromedp.Navigate(o.con.URL+"/console/ops/")); err != nil {
		t.Fatal(err)
	}
	poll("the lead list", rows+` === '7'`)
	eval(`(document.getElementById('f-outcome').value = 'failure', document.getElementById('f-apply').click(), '')`)
	poll("the failures only", rows+` === '2'`)
	if got := eval(`Array.from(document.querySelectorAll('#leads tbody tr td:nth-child(5)')).map(e => e.textContent).join(',')`); got != "failure,failure" {
		t.Fatalf("filtered outcomes: %q", got)
	}
	o.mu.Lock()
	last := o.seen[len(o.seen)-1]
	o.mu.Unlock()
	if last.Get("outcome") != "failure" {
		t.Fatalf("the page asked for %v", last)
	}
	eval(`(document.getElementById('f-outcome').value = '', document.getElementById('f-batch').value = 'b-1', document.getElementById('f-apply').click(), '')`)
	poll("the batch", `!document.getElementById('batch').hidden`)
	if got := eval(`document.getElementById('batch').textContent`); got != "Batch b-1 (partner): 6 leads, done; states: done 6; outcomes: failure 2, success 4" {
		t.Fatalf("batch line: %q", got)
	}
	eval(`(document.getElementById('f-batch').value = '', document.getElementById('f-apply').click(), '')`)
	poll("every lead again", rows+` === '7' && document.getElementById('batch').hidden`)

	// A stored lead's timeline: parallel steps side by side, every try.
	eval(`(document.querySelector('#leads tbody tr[data-id="stub-parallel"]').click(), '')`)
	poll("the timeline", `document.querySelectorAll('#timeline .tl-try').length === 3`)
	if got := eval(`Array.from(document.querySelectorAll('#timeline .tl-row.parallel .tl-step')).map(e => e.dataset.step).join(',')`); got != "enrich,verify" {
		t.Fatalf("parallel steps side by side: %q", got)
	}
	if got := eval(`document.querySelector('#timeline .tl-step[data-step=enrich]').textContent`); !strings.Contains(got, "try 1 · HTTP 503") || !strings.Contains(got, "try 2 · HTTP 200") {
		t.Fatalf("tries of enrich: %q", got)
	}
	eval(`(document.querySelector('#timeline .tl-step[data-step=enrich] details').open = true, document.querySelector('#timeline .copy-curl').click(), '')`)
	poll("the curl line", `!document.querySelector('#timeline .curl').hidden`)
	curl := eval(`document.querySelector('#timeline .curl').textContent`)
	if !strings.HasPrefix(curl, "curl -X POST 'https://api.example/enrich'") || !strings.Contains(curl, "'X-Api-Key: ****'") ||
		!strings.Contains(curl, "'Authorization: ****'") || strings.Contains(curl, "sk-live-stub") {
		t.Fatalf("copy as curl: %q", curl)
	}
	if strings.Contains(eval(`document.documentElement.outerHTML`), "sk-live-stub") {
		t.Fatal("a credential header's value reached the page")
	}
	shot("ops-lead.png")

	// A lead of the real service: its step and try count.
	eval(`(document.querySelector('#leads tbody tr[data-id="` + first + `"]').click(), '')`)
	poll("the real lead", `document.querySelector('#timeline .tl-step[data-step=submit]') !== null && document.querySelector('#lead-pane h2').textContent.includes('`+first+`')`)
	if got := eval(`document.querySelector('#timeline .tl-step[data-step=submit]').textContent`); !strings.Contains(got, "1 try") || !strings.Contains(got, "success") {
		t.Fatalf("the real lead's step: %q", got)
	}

	// Health: the service's counts and the charts.
	eval(`(document.getElementById('tab-health').click(), '')`)
	poll("the health card", `document.querySelectorAll('#health .card[data-integration=partner] svg.bars rect').length > 0`)
	if got := eval(`document.querySelector('#health .card[data-integration=partner] .nums').textContent`); !strings.HasPrefix(got, "6leads") || !strings.Contains(got, "66.7%success") {
		t.Fatalf("health numbers: %q", got)
	}
	if got := eval(`String(document.querySelectorAll('#health .card[data-integration=partner] svg.lines path').length)`); got != "3" {
		t.Fatalf("latency lines: %s", got)
	}
	if got := eval(`document.querySelector('#health .card[data-integration=partner] .classes').textContent`); !strings.Contains(got, "rejected2") {
		t.Fatalf("classes: %q", got)
	}
	shot("ops-health.png")

	// Dead letters: retry one from the page.
	eval(`(document.getElementById('tab-dead').click(), '')`)
	poll("the dead letter", `document.querySelector('#dead tbody tr[data-id="dead-1"]') !== null`)
	eval(`(document.querySelector('#dead tbody tr[data-id="dead-1"]').click(), '')`)
	shot("ops-dead.png")
	eval(`(document.querySelector('#dead tbody tr[data-id="dead-1"] button.retry').click(), '')`)
	poll("the retry", `document.getElementById('dead-status').textContent.startsWith('Retried dead-1')`)
	poll("the row gone", `document.querySelector('#dead tbody tr[data-id="dead-1"]') === null`)
	if code, b := o.call("GET", "/v1/dead", ""); code != 200 || !bytes.Contains(b, []byte(`"dead":[]`)) {
		t.Fatalf("dead letters after the retry: %d %s", code, b)
	}

	// Webhook deliveries: verified and refused, with their log.
	if a, b := o.deliver(`{"email":"h@x.example"}`, opsHookSecret), o.deliver(`{"email":"h2@x.example"}`, ""); a != 200 || b != 401 {
		t.Fatalf("deliveries: %d %d", a, b)
	}
	eval(`(document.getElementById('tab-hooks').click(), '')`)
	poll("the deliveries", `document.querySelectorAll('#hooks tbody tr').length === 2`)
	if got := eval(`Array.from(document.querySelectorAll('#hooks tbody tr td:nth-child(3)')).map(e => e.textContent).join(',')`); got != "refused,verified" {
		t.Fatalf("verdicts: %q", got)
	}
	eval(`(document.querySelector('#hooks tbody tr').click(), '')`)
	if got := eval(`document.getElementById('hook-pane').textContent`); !strings.Contains(got, "refused (missing_signature)") || strings.Contains(got, opsHookSecret) {
		t.Fatalf("the refused delivery's log: %q", got)
	}
	shot("ops-hooks.png")

	// The list stays bounded however far it is paged; the poll interval too.
	eval(`(document.getElementById('live').checked = false, document.getElementById('tab-leads').click(), document.getElementById('f-q').value = 'many', document.getElementById('f-apply').click(), '')`)
	poll("the first page", rows+` === '200'`)
	for _, want := range []string{"400", "500"} {
		eval(`(document.getElementById('more').click(), '')`)
		poll(want+" rows", rows+` === '`+want+`'`)
	}
	eval(`(document.getElementById('more').click(), '')`) // hidden: no more
	poll("the cap", rows+` === '500' && document.getElementById('more').hidden && document.getElementById('leads-status').textContent.includes('newest 500')`)
	eval(`(document.getElementById('f-q').value = 'huge', document.getElementById('f-apply').click(), '')`)
	poll("one huge page, cut", rows+` === '500' && document.querySelector('#leads tbody tr').dataset.id === 'huge-0'`)
	for in, want := range map[string]string{"0": "2", "999": "60", "7": "7"} {
		if got := eval(`(document.getElementById('interval').value = '` + in + `', document.getElementById('interval').dispatchEvent(new Event('change')), document.getElementById('interval').value)`); got != want {
			t.Fatalf("interval %s became %s, want %s", in, got, want)
		}
	}
}

// TestBrowserRunHistory: the test console keeps the session's runs (the
// last 50, in the page) and diffs two runs' responses.
func TestBrowserRunHistory(t *testing.T) {
	bin := needBrowser(t)
	e := newEnv(t, []string{"blacklist"}, nil)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1320, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()
	eval := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("evaluating %s: %v", js, err)
		}
		return s
	}
	poll := func(what, js string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("waiting for %s (%s): %v", what, js, err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(e.srv.URL+"/console/?integration=blacklist/integration.yaml")); err != nil {
		t.Fatal(err)
	}
	poll("the lead", `document.getElementById('lead').value.includes('@')`)
	run := func(email string, n int) {
		t.Helper()
		eval(`(document.getElementById('lead').value = JSON.stringify({email: '` + email + `', phone: '5125550199', ip_address: '198.51.100.23'}), document.getElementById('run-flow').click(), '')`)
		poll("run "+strconv.Itoa(n), `!document.getElementById('run-flow').disabled && document.getElementById('history-count').textContent === '`+strconv.Itoa(min(n, 50))+`'`)
	}
	run("spam.king@blocked.example", 1)
	run("jane.doe@gmail.example", 2)
	eval(`(document.getElementById('history-box').open = true, document.getElementById('diff-runs').click(), '')`)
	diff := eval(`document.getElementById('diff').textContent`)
	if !strings.Contains(diff, `- `) || !strings.Contains(diff, `+ `) || !strings.Contains(diff, "is_blacklisted") {
		t.Fatalf("diff of the last two runs: %q", diff)
	}
	adds := eval(`Array.from(document.querySelectorAll('#diff .add')).map(e => e.textContent).join('|')`)
	dels := eval(`Array.from(document.querySelectorAll('#diff .del')).map(e => e.textContent).join('|')`)
	if !strings.Contains(dels, `"is_blacklisted": true`) || !strings.Contains(adds, `"is_blacklisted": false`) {
		t.Fatalf("diff lines: - %q + %q", dels, adds)
	}
	if dir := os.Getenv("PLUMB_CONSOLE_SCREENSHOTS"); dir != "" {
		b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dir, "console-diff.png"), b, 0o644))
	}
	// the same run twice: no difference
	run("jane.doe@gmail.example", 3)
	// no checks: the last two (#2 and #3, equal); then #1 and #3 checked
	eval(`(document.getElementById('diff-runs').click(), '')`)
	if n := eval(`String(document.querySelectorAll('#diff .add, #diff .del').length)`); n != "0" {
		t.Fatalf("two equal runs differ in %s lines: %s", n, eval(`document.getElementById('diff').textContent`))
	}
	eval(`(document.querySelector('#history li[data-n="1"] input').click(), document.querySelector('#history li[data-n="3"] input').click(), document.getElementById('diff-runs').click(), '')`)
	if got := eval(`document.querySelector('#diff .note').textContent + ' ' + String(document.querySelectorAll('#diff .add').length)`); got != "--- run #1   +++ run #3 3" {
		t.Fatalf("diff of the checked runs: %s", got)
	}
	// bounded: the page keeps the last 50
	for n := 4; n <= 53; n++ {
		run("jane.doe@gmail.example", n)
	}
	if got := eval(`String(document.querySelectorAll('#history li').length) + ' ' + document.querySelector('#history li').dataset.n + ' ' + document.querySelector('#history li:last-child').dataset.n`); got != "50 53 4" {
		t.Fatalf("runs kept (count, newest, oldest): %s", got)
	}
}
