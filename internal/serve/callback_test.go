package serve

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/history"
	"github.com/plumbhq/plumb/webhook"
)

// callbackKey is the test integration's Standard Webhooks signing key.
const callbackKey = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// receiver is a callback receiver: it verifies every signature with the
// webhook package and counts deliveries by webhook-id.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	byID    map[string]int
	bodies  map[string]json.RawMessage
	bad     int
	failing func(id string, n int) bool // answer 503 to the n-th delivery of id
}

func newReceiver(t testing.TB) *receiver {
	v, err := webhook.New(webhook.Config{Preset: webhook.PresetStandard, Secrets: []string{callbackKey}}, nil)
	must(t, err)
	rc := &receiver{byID: map[string]int{}, bodies: map[string]json.RawMessage{}}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if _, err := v.Verify(r.Header, body); err != nil {
			rc.bad++
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		id := r.Header.Get("webhook-id")
		if rc.failing != nil && rc.failing(id, rc.byID[id]+rc.byID[id+"#failed"]+1) {
			rc.byID[id+"#failed"]++
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		rc.byID[id]++
		rc.bodies[id] = body
	}))
	t.Cleanup(rc.Close)
	return rc
}

// distinct counts the ids delivered (after dedupe) with prefix.
func (rc *receiver) distinct(prefix string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	n := 0
	for id := range rc.byID {
		if strings.HasPrefix(id, prefix) && !strings.HasSuffix(id, "#failed") {
			n++
		}
	}
	return n
}

// waitSeconds bounds waitFor.
const waitSeconds = 120

// waitFor polls cond (a bounded wait on a condition, not a clock).
func waitFor(t testing.TB, what string, cond func() bool, state ...func() string) {
	t.Helper()
	deadline := time.Now().Add(time.Duration(waitSeconds) * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			for _, f := range state {
				what += ": " + f()
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeCallbackIntegration writes the partner integration with a
// callback: section pointing at cbURL.
func writeCallbackIntegration(t testing.TB, dir, baseURL, cbURL, events string) {
	t.Helper()
	y := strings.Replace(partnerYAML, "  base_url: { required: true }\n",
		"  base_url: { required: true }\n  cb_url: { required: true }\n  cb_key: { secret: true, required: true }\n", 1)
	y += "callback:\n  url: \"{{settings.cb_url}}\"\n  secret: \"{{settings.cb_key}}\"\n  events: " + events +
		"\n  origins: [\"" + cbURL + "\", \"https://hooks.example.com\"]\n"
	must(t, os.WriteFile(filepath.Join(dir, "partner.yaml"), []byte(y), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "partner.settings.yaml"),
		[]byte("base_url: "+baseURL+"\ncb_url: "+cbURL+"/cb\ncb_key: "+callbackKey+"\n"), 0o600))
}

func TestCallbacksEveryResultOnceSigned(t *testing.T) {
	t.Parallel()
	p := newPartner(t)
	rc := newReceiver(t)
	rc.failing = func(id string, n int) bool { return strings.HasSuffix(id, "7") && n == 1 } // some fail once
	dir := t.TempDir()
	writeCallbackIntegration(t, dir, p.URL, rc.URL, "all")
	cfg := Config{Dir: dir, CallbackAllowPrivate: true}
	cfg.Queue.RetryDelay, cfg.Queue.MaxRetryDelay = 10*time.Millisecond, 50*time.Millisecond
	s := testServer(t, cfg)
	c := client{t: t, base: "http://" + s.Addr()}
	const n = 300
	var body strings.Builder
	for i := range n {
		fmt.Fprintf(&body, `{"n":%d,"email":"l%d@ok.example"}`+"\n", i, i)
	}
	code, b := c.do("POST", "/v1/integrations/partner/leads?callback_url="+url.QueryEscape(rc.URL+"/batch"), "application/x-ndjson", []byte(body.String()))
	if code != 202 {
		t.Fatalf("POST: %d %s", code, b)
	}
	a := decode[batchAnswer](t, b)
	waitBatch(t, c, a.Batch)
	// each result to the integration's URL and to the batch's, and the
	// summary to both
	waitFor(t, "every callback", func() bool {
		return rc.distinct("res_") == 2*n && rc.distinct("bat_") == 2
	}, func() string {
		_, dead := c.do("GET", "/v1/dead", "", nil)
		var att []byte
		for _, l := range a.Leads {
			if id := history.ResultCallbackID(l.ID); strings.HasSuffix(id, "7") {
				_, att = c.do("GET", "/v1/callbacks/"+id, "", nil)
				_, st := c.do("GET", "/v1/leads/"+id, "", nil)
				att = append(att, st...)
				break
			}
		}
		return fmt.Sprintf("res %d bat %d bad %d dead %.300s att %s", rc.distinct("res_"), rc.distinct("bat_"), rc.bad, dead, att)
	})
	rc.mu.Lock()
	for _, l := range a.Leads {
		id := history.ResultCallbackID(l.ID)
		var cb struct {
			Type string `json:"type"`
			Data struct {
				ID, Batch string
				Result    result
			} `json:"data"`
		}
		must(t, json.Unmarshal(rc.bodies[id], &cb))
		if cb.Type != history.EventResult || cb.Data.ID != l.ID || cb.Data.Batch != a.Batch || cb.Data.Result.Outcome != "success" {
			t.Fatalf("callback %s = %s", id, rc.bodies[id])
		}
	}
	if rc.bad != 0 {
		t.Fatalf("%d callbacks failed verification", rc.bad)
	}
	var summary struct {
		Data history.Batch `json:"data"`
	}
	must(t, json.Unmarshal(rc.bodies[history.BatchCallbackID(a.Batch)], &summary))
	rc.mu.Unlock()
	if !summary.Data.Done || summary.Data.Outcomes["success"] != n {
		t.Fatalf("summary = %+v", summary.Data)
	}
	// a callback that failed once was tried again, and both attempts are recorded
	var retried string
	for _, l := range a.Leads {
		if strings.HasSuffix(history.ResultCallbackID(l.ID), "7") {
			retried = history.ResultCallbackID(l.ID)
			break
		}
	}
	if retried == "" {
		t.Skip("no lead id ends in 7") // ids are random: practically never
	}
	waitFor(t, "attempts recorded", func() bool {
		s.hist.Flush()
		code, b := c.do("GET", "/v1/callbacks/"+retried, "", nil)
		if code != 200 {
			return false
		}
		att := decode[struct{ Attempts []history.Attempt }](t, b).Attempts
		return len(att) == 2 && att[0].Status == 503 && att[1].Status == 200
	})
}

func TestCallbackDeadLettered(t *testing.T) {
	t.Parallel()
	p := newPartner(t)
	rc := newReceiver(t)
	rc.failing = func(string, int) bool { return true }
	dir := t.TempDir()
	writeCallbackIntegration(t, dir, p.URL, rc.URL, "result")
	cfg := Config{Dir: dir}
	cfg.Queue.MaxDeliver, cfg.Queue.RetryDelay, cfg.Queue.MaxRetryDelay = 3, 10*time.Millisecond, 20*time.Millisecond
	s := testServer(t, cfg)
	c := client{t: t, base: "http://" + s.Addr()}
	code, b := c.do("POST", "/v1/integrations/partner/leads", "application/json", []byte(`{"n":1,"email":"a@ok.example"}`))
	if code != 202 {
		t.Fatalf("POST: %d %s", code, b)
	}
	id := history.ResultCallbackID(decode[batchAnswer](t, b).Leads[0].ID)
	waitFor(t, "the dead letter", func() bool {
		_, b := c.do("GET", "/v1/dead", "", nil)
		return strings.Contains(string(b), id)
	})
	s.hist.Flush()
	_, b = c.do("GET", "/v1/callbacks/"+id, "", nil)
	att := decode[struct{ Attempts []history.Attempt }](t, b).Attempts
	if len(att) != 3 || !att[2].Dead || att[0].Status != 503 || att[0].Error == "" {
		t.Fatalf("attempts = %s", b)
	}
}

func TestCallbackURLRefused(t *testing.T) {
	t.Parallel()
	p := newPartner(t)
	rc := newReceiver(t)
	dir := t.TempDir()
	writeCallbackIntegration(t, dir, p.URL, rc.URL, "result")
	s := testServer(t, Config{Dir: dir})
	c := client{t: t, base: "http://" + s.Addr()}
	for _, u := range []string{
		rc.URL + "/x",                         // an allowed origin, but loopback
		"https://other.example.com/x",         // an origin nobody allowed
		"https://user:pw@hooks.example.com/x", // user info
		"ftp://hooks.example.com/x",
	} {
		code, b := c.do("POST", "/v1/integrations/partner/leads?callback_url="+url.QueryEscape(u), "application/json", []byte(`{"n":1}`))
		if code != 400 {
			t.Errorf("%s: %d %s", u, code, b)
		}
	}
	code, b := c.do("POST", "/v1/integrations/partner/leads?callback_url="+url.QueryEscape("https://hooks.example.com/x"), "application/json", []byte(`{"n":1}`))
	if code != 202 {
		t.Errorf("an allowed public origin: %d %s", code, b)
	}
}

// TestCallbacksSurviveKill9: a service killed with -9 while leads are in
// flight and callbacks are pending delivers, after its restart, a signed
// callback for every lead (the receiver drops copies by webhook-id).
func TestCallbacksSurviveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	p, rc := newPartner(t), newReceiver(t)
	g := newGate(300, childConcurrency)
	p.hook = g.hook
	dir, data := t.TempDir(), t.TempDir()
	writeCallbackIntegration(t, dir, p.URL, rc.URL, "result")
	first := startChild(t, dir, data)
	var body strings.Builder
	for i := range subprocessLead {
		fmt.Fprintf(&body, "{\"n\": %d, \"email\": \"lead%d@x.example\"}\n", i, i)
	}
	code, b := client{t: t, base: "http://" + first.addr}.do("POST", "/v1/integrations/partner/leads", "application/x-ndjson", []byte(body.String()))
	if code != 202 {
		t.Fatalf("accept: %d %s", code, b)
	}
	a := decode[batchAnswer](t, b)
	ids := map[string]int{}
	for i, l := range a.Leads {
		ids[l.ID] = i
	}
	<-g.full
	first.Kill9(t)
	before := rc.distinct("res_")
	g.open()

	drainAfterRestart(t, dir, data, func(c client) {
		waitFor(t, "a callback for every lead", func() bool { return rc.distinct("res_") == subprocessLead },
			func() string { return fmt.Sprintf("%d of %d", rc.distinct("res_"), subprocessLead) })
		// the history lost no lead to the kill: the batch completes, its counts match
		bt := waitBatch(t, c, a.Batch)
		if bt.Total != subprocessLead || bt.Outcomes["success"] != subprocessLead || bt.State["done"] != subprocessLead {
			t.Errorf("batch after the restart = %+v", bt)
		}
	})
	rc.mu.Lock()
	defer rc.mu.Unlock()
	copies := 0
	for id := range ids {
		n := rc.byID[history.ResultCallbackID(id)]
		if n == 0 {
			t.Errorf("no callback for lead %s", id)
		}
		copies += n - 1
	}
	if rc.bad != 0 {
		t.Errorf("%d callbacks failed verification", rc.bad)
	}
	t.Logf("kill -9 with %d callbacks delivered before it: every one of %d leads called back after the restart; %d copies (dropped by webhook-id)",
		before, subprocessLead, copies)
}
