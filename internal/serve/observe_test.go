package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/plumbhq/plumb/internal/telemetry"
	"github.com/plumbhq/plumb/webhook"
)

// logRec is one captured log line: its attributes (the logger's With
// ones too) as strings, and whether a key came twice.
type logRec struct {
	msg   string
	level slog.Level
	attrs map[string]string
	dup   string
}

func (r logRec) String() string { return fmt.Sprintf("%s %s %v", r.level, r.msg, r.attrs) }

// logCapture keeps every line logged through it, at every level.
type logCapture struct {
	mu      sync.Mutex
	recs    []logRec
	changed chan struct{}
}

func newLogCapture() *logCapture { return &logCapture{changed: make(chan struct{})} }

func (c *logCapture) logger() *slog.Logger { return slog.New(capHandler{c: c}) }

func (c *logCapture) add(r logRec) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recs = append(c.recs, r)
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *logCapture) all() []logRec {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]logRec(nil), c.recs...)
}

// wait returns the first line ok accepts, waiting for it to be logged (the
// deadline only turns a hang into a failure).
func (c *logCapture) wait(t testing.TB, what string, ok func(logRec) bool) logRec {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		c.mu.Lock()
		for _, r := range c.recs {
			if ok(r) {
				c.mu.Unlock()
				return r
			}
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no log line %s in:\n%v", what, c.all())
		}
	}
}

type capHandler struct {
	c     *logCapture
	attrs []slog.Attr
}

func (h capHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h capHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return capHandler{c: h.c, attrs: append(h.attrs[:len(h.attrs):len(h.attrs)], as...)}
}

func (h capHandler) WithGroup(string) slog.Handler { return h }

func (h capHandler) Handle(_ context.Context, r slog.Record) error {
	rec := logRec{msg: r.Message, level: r.Level, attrs: map[string]string{}}
	put := func(a slog.Attr) bool {
		if _, ok := rec.attrs[a.Key]; ok {
			rec.dup = a.Key
		}
		rec.attrs[a.Key] = a.Value.Resolve().String()
		return true
	}
	for _, a := range h.attrs {
		put(a)
	}
	r.Attrs(put)
	h.c.add(rec)
	return nil
}

// spanCapture is an in-memory span exporter that can be waited on.
type spanCapture struct {
	*tracetest.InMemoryExporter
	mu      sync.Mutex
	changed chan struct{}
}

func newSpanCapture() *spanCapture {
	return &spanCapture{InMemoryExporter: tracetest.NewInMemoryExporter(), changed: make(chan struct{})}
}

func (c *spanCapture) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := c.InMemoryExporter.ExportSpans(ctx, spans)
	c.mu.Lock()
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	return err
}

// wait returns the spans once ok accepts them.
func (c *spanCapture) wait(t testing.TB, what string, ok func(tracetest.SpanStubs) bool) tracetest.SpanStubs {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		c.mu.Lock()
		ch := c.changed
		c.mu.Unlock()
		if spans := c.GetSpans(); ok(spans) {
			return spans
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("spans never %s: %v", what, spanNames(c.GetSpans()))
		}
	}
}

func spanNames(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func attrOf(s tracetest.SpanStub, key string) string {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

// tracedYAML is a two-step integration whose first step is retried once
// (the partner answers each email's first verify 503), so a lead logs
// attempts, a rule and a backoff.
const tracedYAML = `version: 1
name: traced
settings:
  base_url: { required: true }
steps:
  - name: verify
    request:
      method: POST
      url: "{{settings.base_url}}/verify"
      body: { json: { email: "{{lead.email}}" } }
    retry: [ { on: [503], action: retry, backoff: { initial: 1ms, max: 1ms } } ]
  - name: submit
    request:
      method: POST
      url: "{{settings.base_url}}/submit"
      body: { json: { email: "{{lead.email}}" } }
`

// tracedServer serves tracedYAML against a partner, logging to a capture
// and tracing to an in-memory exporter (none when !traced).
func tracedServer(t *testing.T, traced bool) (client, *logCapture, *spanCapture) {
	t.Helper()
	var mu sync.Mutex
	seen := map[string]bool{}
	p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Email string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		first := r.URL.Path == "/verify" && !seen[body.Email]
		if r.URL.Path == "/verify" {
			seen[body.Email] = true
		}
		mu.Unlock()
		if first {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok": true}`)
	}))
	t.Cleanup(p.Close)
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "traced.yaml"), []byte(tracedYAML), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "traced.settings.yaml"), []byte("base_url: "+p.URL+"\n"), 0o600))
	logs, spans := newLogCapture(), newSpanCapture()
	cfg := Config{Dir: dir, Logger: logs.logger()}
	if traced {
		tp := telemetry.NewProvider(spans, true)
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		cfg.TracerProvider = tp
	}
	s := testServer(t, cfg)
	return client{t: t, base: "http://" + s.Addr()}, logs, spans
}

// doH sends a request with headers and returns the answer's status, body
// and headers.
func (c client) doH(method, path, ctype string, body []byte, hdr http.Header) (int, []byte, http.Header) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	must(c.t, err)
	req.Header = hdr.Clone()
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	must(c.t, err)
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	must(c.t, err)
	return resp.StatusCode, buf.Bytes(), resp.Header
}

const (
	testTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	testSpanID  = "00f067aa0ba902b7"
)

// engineLines are the messages of engine/eventlog.
var engineLines = map[string]bool{"attempt": true, "rule": true, "backoff": true}

// checkLeadLines: every line naming lead carries the request id, the
// trace and the integration, engine lines their step too; no key comes
// twice; the lead logged its three tries, its rule, its backoff and its
// end. It returns the lines.
func checkLeadLines(t *testing.T, logs *logCapture, lead, rid, traceID, end string) []logRec {
	t.Helper()
	var mine []logRec
	n := map[string]int{}
	for _, r := range logs.all() {
		if r.dup != "" {
			t.Errorf("key %s twice on %v", r.dup, r)
		}
		if engineLines[r.msg] && r.attrs[telemetry.KeyLead] == "" {
			t.Errorf("an engine line without its lead: %v", r)
		}
		if r.attrs[telemetry.KeyLead] != lead {
			continue
		}
		mine = append(mine, r)
		n[r.msg]++
		if r.attrs[telemetry.KeyRequestID] != rid || r.attrs[telemetry.KeyTraceID] != traceID || r.attrs[telemetry.KeySpanID] == "" ||
			r.attrs[telemetry.KeyIntegration] != "traced" {
			t.Errorf("lead %s: line %v lacks request id %s, trace %s or the integration", lead, r, rid, traceID)
		}
		if engineLines[r.msg] && r.attrs[telemetry.KeyStep] != "verify" && r.attrs[telemetry.KeyStep] != "submit" {
			t.Errorf("engine line without its step: %v", r)
		}
	}
	if n["attempt"] != 3 || n["rule"] != 1 || n["backoff"] != 1 || n[end] != 1 || end != "lead done" && n["lead done"] != 0 {
		t.Errorf("lead %s logged %v, want 3 attempts, a rule, a backoff and its end (%q):\n%v", lead, n, end, mine)
	}
	return mine
}

// checkLeadSpans: every span of the trace carries it, the request id and
// (but for the request's own) the lead id; the lead's span, its two steps'
// and three tries' are there. It returns the spans by name.
func checkLeadSpans(t *testing.T, spans tracetest.SpanStubs, lead, rid, traceID string) map[string][]tracetest.SpanStub {
	t.Helper()
	by := map[string][]tracetest.SpanStub{}
	for _, s := range spans {
		if s.SpanContext.TraceID().String() != traceID {
			continue
		}
		by[s.Name] = append(by[s.Name], s)
		if attrOf(s, telemetry.AttrRequestID) != rid {
			t.Errorf("span %s: request id %q, want %s", s.Name, attrOf(s, telemetry.AttrRequestID), rid)
		}
		if !strings.HasPrefix(s.Name, "POST ") && attrOf(s, telemetry.AttrLead) != lead {
			t.Errorf("span %s: lead %q, want %s", s.Name, attrOf(s, telemetry.AttrLead), lead)
		}
	}
	if len(by["plumb.lead"]) != 1 || len(by["plumb.step"]) != 2 || len(by["plumb.try"]) != 3 {
		t.Errorf("spans of trace %s: %v, want a lead, two steps, three tries", traceID, spanNames(spans))
	}
	return by
}

// TestRunLogsAndTracesJoin: one /run request with X-Request-Id and
// traceparent: the answer echoes the id; every log line of its lead (the
// engine's tries, rule and backoff, the lead's end) and the access line
// carry the request id, the lead id and the incoming trace; every span is
// in that trace, the request's span a child of the caller's, and each
// carries the ids.
func TestRunLogsAndTracesJoin(t *testing.T) {
	t.Parallel()
	c, logs, spans := tracedServer(t, true)
	hdr := http.Header{"X-Request-Id": {"req-run-1"}, "Traceparent": {"00-" + testTraceID + "-" + testSpanID + "-01"}}
	code, b, ans := c.doH("POST", "/v1/integrations/traced/run", "application/json", []byte(`{"email":"a@x.example"}`), hdr)
	if code != 200 || ans.Get("X-Request-Id") != "req-run-1" {
		t.Fatalf("run: %d %s, X-Request-Id %q", code, b, ans.Get("X-Request-Id"))
	}
	acc := logs.wait(t, "request of req-run-1", func(r logRec) bool {
		return r.msg == "request" && r.attrs[telemetry.KeyRequestID] == "req-run-1"
	})
	if acc.level != slog.LevelInfo || acc.attrs["route"] != "/v1/integrations/{name}/run" || acc.attrs["status"] != "200" ||
		acc.attrs["method"] != "POST" || acc.attrs["duration_ms"] == "" || acc.attrs[telemetry.KeyTraceID] != testTraceID {
		t.Errorf("access line %v", acc)
	}
	// the access line is the lead's end too: no "lead done" of its own
	lead := acc.attrs[telemetry.KeyLead]
	if lead == "" || lead != ans.Get("Plumb-Lead-Id") || acc.attrs["outcome"] != "success" || acc.attrs[telemetry.KeyIntegration] != "traced" {
		t.Fatalf("the access line lacks its lead's end: %v", acc)
	}
	checkLeadLines(t, logs, lead, "req-run-1", testTraceID, "request")

	got := spans.wait(t, "ended the request's span", func(s tracetest.SpanStubs) bool {
		for _, sp := range s {
			if sp.Name == "POST /v1/integrations/{name}/run" {
				return true
			}
		}
		return false
	})
	by := checkLeadSpans(t, got, lead, "req-run-1", testTraceID)
	srv := by["POST /v1/integrations/{name}/run"]
	if len(srv) != 1 || srv[0].Parent.SpanID().String() != testSpanID || !srv[0].Parent.IsRemote() {
		t.Fatalf("the request's span does not continue the caller's: %+v", srv)
	}
	if l := by["plumb.lead"]; len(l) == 1 && l[0].Parent.SpanID() != srv[0].SpanContext.SpanID() {
		t.Errorf("the lead's span is not the request's child")
	}
	if attrOf(srv[0], "http.response.status_code") != "200" {
		t.Errorf("request span attributes %v", srv[0].Attributes)
	}
}

// TestQueuedLeadLogsAndTracesJoin: a lead POSTed to /leads with
// X-Request-Id and traceparent keeps both through the queue: its "lead
// queued" line, its worker's lines and the lead's end carry them with the
// job id, and the worker's span continues the accepting request's.
func TestQueuedLeadLogsAndTracesJoin(t *testing.T) {
	t.Parallel()
	c, logs, spans := tracedServer(t, true)
	hdr := http.Header{"X-Request-Id": {"req-leads-1"}, "Traceparent": {"00-" + testTraceID + "-" + testSpanID + "-01"},
		"Tracestate": {"vendor=abc"}}
	code, b, ans := c.doH("POST", "/v1/integrations/traced/leads", "application/json", []byte(`{"email":"q@x.example"}`), hdr)
	if code != 202 || ans.Get("X-Request-Id") != "req-leads-1" {
		t.Fatalf("accept: %d %s, X-Request-Id %q", code, b, ans.Get("X-Request-Id"))
	}
	id := decode[accepted](t, b).Leads[0].ID
	queued := logs.wait(t, "lead queued", func(r logRec) bool { return r.msg == "lead queued" })
	if queued.attrs[telemetry.KeyLead] != id || queued.attrs[telemetry.KeyRequestID] != "req-leads-1" ||
		queued.attrs[telemetry.KeyTraceID] != testTraceID || queued.level != slog.LevelInfo {
		t.Errorf("lead queued line %v", queued)
	}
	done := logs.wait(t, "lead done", func(r logRec) bool { return r.msg == "lead done" })
	if done.attrs[telemetry.KeyLead] != id || done.attrs["source"] != "leads" || done.attrs["outcome"] != "success" {
		t.Fatalf("lead done line %v", done)
	}
	checkLeadLines(t, logs, id, "req-leads-1", testTraceID, "lead done")

	got := spans.wait(t, "ended the job's span", func(s tracetest.SpanStubs) bool {
		for _, sp := range s {
			if sp.Name == "plumb.job" {
				return true
			}
		}
		return false
	})
	by := checkLeadSpans(t, got, id, "req-leads-1", testTraceID)
	req, job := by["POST /v1/integrations/{name}/leads"], by["plumb.job"]
	if len(req) != 1 || req[0].Parent.SpanID().String() != testSpanID {
		t.Fatalf("the accepting request's span does not continue the caller's: %+v", req)
	}
	if len(job) != 1 || job[0].Parent.SpanID() != req[0].SpanContext.SpanID() || job[0].Parent.TraceState().Get("vendor") != "abc" {
		t.Fatalf("the job's span does not continue the accepting request's (with its tracestate): %+v", job)
	}
	if l := by["plumb.lead"]; len(l) == 1 && l[0].Parent.SpanID() != job[0].SpanContext.SpanID() {
		t.Errorf("the lead's span is not the job's child")
	}
}

// TestTraceparentWithoutTracer: with no TracerProvider, an incoming
// traceparent still names the trace on the request's and its queued lead's
// log lines.
func TestTraceparentWithoutTracer(t *testing.T) {
	t.Parallel()
	c, logs, spans := tracedServer(t, false)
	hdr := http.Header{"X-Request-Id": {"req-untraced"}, "Traceparent": {"00-" + testTraceID + "-" + testSpanID + "-01"}}
	code, b, _ := c.doH("POST", "/v1/integrations/traced/leads", "application/json", []byte(`{"email":"u@x.example"}`), hdr)
	if code != 202 {
		t.Fatalf("accept: %d %s", code, b)
	}
	id := decode[accepted](t, b).Leads[0].ID
	logs.wait(t, "lead done", func(r logRec) bool { return r.msg == "lead done" })
	checkLeadLines(t, logs, id, "req-untraced", testTraceID, "lead done")
	if n := len(spans.GetSpans()); n != 0 {
		t.Errorf("%d spans recorded without a tracer", n)
	}
	// a tracestate longer than a job keeps is dropped, not a reason to
	// refuse the lead
	var long []string
	for i := range 3 {
		long = append(long, fmt.Sprintf("k%d=%s", i, strings.Repeat("v", 250)))
	}
	hdr.Set("Tracestate", strings.Join(long, ","))
	hdr.Set("X-Request-Id", "req-long-state")
	code, b, _ = c.doH("POST", "/v1/integrations/traced/leads", "application/json", []byte(`{"email":"v@x.example"}`), hdr)
	if code != 202 {
		t.Fatalf("accept with a long tracestate: %d %s", code, b)
	}
	id = decode[accepted](t, b).Leads[0].ID
	logs.wait(t, "the second lead's end", func(r logRec) bool { return r.msg == "lead done" && r.attrs[telemetry.KeyLead] == id })
	checkLeadLines(t, logs, id, "req-long-state", testTraceID, "lead done")
}

// TestUntrustedIdsReplaced: an X-Request-Id too long, with spaces,
// quotes, a tab or non-ASCII bytes is replaced by a fresh one, echoed and
// logged instead; the bad value shows nowhere. A malformed traceparent
// starts a trace of its own.
func TestUntrustedIdsReplaced(t *testing.T) {
	t.Parallel()
	c, logs, spans := tracedServer(t, true)
	bad := []string{strings.Repeat("a", 129), "level=ERROR msg=forged", `quo"te`, "tab\there", "ünïcode", "semi;colon"}
	for i, id := range bad {
		hdr := http.Header{"X-Request-Id": {id}}
		code, _, ans := c.doH("GET", "/healthz", "", nil, hdr)
		got := ans.Get("X-Request-Id")
		if code != 200 || got == id || !telemetry.ValidRequestID(got) {
			t.Fatalf("X-Request-Id %q answered %d with %q: want a fresh valid id", id, code, got)
		}
		logs.wait(t, fmt.Sprintf("request %d", i), func(r logRec) bool {
			return r.msg == "request" && r.attrs[telemetry.KeyRequestID] == got
		})
	}
	for _, r := range logs.all() {
		for _, id := range bad {
			if strings.Contains(r.String(), id) {
				t.Errorf("the bad id %q was logged: %v", id, r)
			}
		}
	}
	zero := "00000000000000000000000000000000"
	for _, tp := range []string{
		"00-" + zero + "-" + testSpanID + "-01",                         // zero trace id
		"00-" + strings.ToUpper(testTraceID) + "-" + testSpanID + "-01", // upper case
		"00-" + testTraceID + "-" + testSpanID + "-01-extra",            // version 00 with more
		"ff-" + testTraceID + "-" + testSpanID + "-01",                  // version ff
		"00-" + testTraceID[:31] + "-" + testSpanID + "-01",             // short
		"00-" + testTraceID + "-0000000000000000-01",                    // zero span id
	} {
		hdr := http.Header{"X-Request-Id": {"req-badtp"}, "Traceparent": {tp}}
		if code, _, _ := c.doH("GET", "/healthz", "", nil, hdr); code != 200 {
			t.Fatalf("healthz %d", code)
		}
	}
	got := spans.wait(t, "six requests' spans", func(s tracetest.SpanStubs) bool {
		n := 0
		for _, sp := range s {
			if attrOf(sp, telemetry.AttrRequestID) == "req-badtp" {
				n++
			}
		}
		return n == 6
	})
	for _, sp := range got {
		if attrOf(sp, telemetry.AttrRequestID) != "req-badtp" {
			continue
		}
		if sp.Parent.IsValid() || sp.SpanContext.TraceID().String() == testTraceID {
			t.Errorf("a malformed traceparent was continued: %+v", sp.Parent)
		}
	}
}

// TestWebhookLogsAndTracesJoin: a webhook delivery's X-Request-Id and
// traceparent reach the event's run through the queue.
func TestWebhookLogsAndTracesJoin(t *testing.T) {
	t.Parallel()
	p := newPartner(t)
	dir := t.TempDir()
	writeHookIntegration(t, dir, p.URL)
	logs, spans := newLogCapture(), newSpanCapture()
	tp := telemetry.NewProvider(spans, true)
	s := testServer(t, Config{Dir: dir, Logger: logs.logger(), TracerProvider: tp})
	v, err := webhook.New(webhook.Config{Preset: webhook.PresetActuallyCare, Secrets: []string{hookSecret}}, nil)
	must(t, err)
	body := event(1)
	hdr, err := v.Sign(body, "", time.Time{})
	must(t, err)
	hdr.Set("X-Request-Id", "req-hook-1")
	hdr.Set("Traceparent", "00-"+testTraceID+"-"+testSpanID+"-01")
	c := client{t: t, base: "http://" + s.Addr()}
	code, b, ans := c.doH("POST", "/v1/hooks/acare", "application/json", body, hdr)
	if code != 200 || ans.Get("X-Request-Id") != "req-hook-1" {
		t.Fatalf("delivery: %d %s %v", code, b, ans)
	}
	id := decode[HookAnswer](t, b).ID
	queued := logs.wait(t, "lead queued", func(r logRec) bool { return r.msg == "lead queued" })
	if queued.attrs[telemetry.KeyLead] != id || queued.attrs[telemetry.KeyRequestID] != "req-hook-1" || queued.attrs["duplicate"] != "false" {
		t.Errorf("lead queued line %v", queued)
	}
	done := logs.wait(t, "lead done", func(r logRec) bool { return r.msg == "lead done" })
	if done.attrs[telemetry.KeyLead] != id || done.attrs[telemetry.KeyRequestID] != "req-hook-1" ||
		done.attrs[telemetry.KeyTraceID] != testTraceID || done.attrs["source"] != "webhook" {
		t.Fatalf("lead done line %v", done)
	}
	spans.wait(t, "a webhook lead span in the caller's trace", func(s tracetest.SpanStubs) bool {
		for _, sp := range s {
			if sp.Name == "plumb.lead" && sp.SpanContext.TraceID().String() == testTraceID &&
				attrOf(sp, telemetry.AttrLead) == id && attrOf(sp, telemetry.AttrRequestID) == "req-hook-1" {
				return true
			}
		}
		return false
	})
}

// TestAccessLineSampled: with AccessLogSample 3, 1 of 3 answered requests
// is logged; every error is.
func TestAccessLineSampled(t *testing.T) {
	t.Parallel()
	p := newPartner(t)
	dir := t.TempDir()
	writeIntegration(t, dir, p.URL)
	logs := newLogCapture()
	s := testServer(t, Config{Dir: dir, Logger: logs.logger(), AccessLogSample: 3})
	c := client{t: t, base: "http://" + s.Addr()}
	for range 9 {
		c.do("GET", "/healthz", "", nil)
	}
	for range 2 {
		c.do("GET", "/v1/nope", "", nil)
	}
	c.do("GET", "/healthz", "", nil)
	// each access line is logged before its (small) answer is flushed: the
	// handler has returned by then, so all twelve lines are in
	ok, errs := 0, 0
	for _, r := range logs.all() {
		if r.msg == "request" && r.attrs["status"] == "200" {
			ok++
		}
		if r.msg == "request" && r.attrs["status"] == "404" {
			errs++
		}
	}
	if ok != 4 || errs != 2 {
		t.Errorf("logged %d of 10 answered and %d of 2 errors, want 4 and 2", ok, errs)
	}
}

// TestRunLeadOnItsAccessLine: a /run request logs one line, its access
// line, with its lead's end: lead id (the Plumb-Lead-Id answered),
// integration, outcome, class and reason; at warn when the lead ended in
// error. No "lead done" line is written for it.
func TestRunLeadOnItsAccessLine(t *testing.T) {
	t.Parallel()
	p := newPartner(t)
	p.hook = func(n int) {
		if n == 3 {
			panic(http.ErrAbortHandler) // the connection is cut: the lead ends in error
		}
	}
	dir := t.TempDir()
	writeIntegration(t, dir, p.URL)
	logs := newLogCapture()
	s := testServer(t, Config{Dir: dir, Logger: logs.logger()})
	c := client{t: t, base: "http://" + s.Addr()}
	for i, tc := range []struct {
		body, outcome string
		code          int
		level         slog.Level
	}{
		{`{"n":1,"email":"a@ok.example"}`, "success", 200, slog.LevelInfo},
		{`{"n":2,"email":"b@reject.example"}`, "failure", 422, slog.LevelInfo},
		{`{"n":3,"email":"c@ok.example"}`, "error", 502, slog.LevelWarn},
	} {
		rid := fmt.Sprint("req-lead-", i)
		code, b, ans := c.doH("POST", "/v1/integrations/partner/run", "application/json", []byte(tc.body), http.Header{"X-Request-Id": {rid}})
		if code != tc.code {
			t.Fatalf("%s: %d %s", tc.body, code, b)
		}
		acc := logs.wait(t, "the access line of "+rid, func(r logRec) bool {
			return r.msg == "request" && r.attrs[telemetry.KeyRequestID] == rid
		})
		if acc.level != tc.level || acc.attrs["outcome"] != tc.outcome || acc.attrs[telemetry.KeyLead] != ans.Get("Plumb-Lead-Id") ||
			acc.attrs[telemetry.KeyIntegration] != "partner" || acc.attrs["status"] != fmt.Sprint(tc.code) ||
			tc.outcome != "success" && (acc.attrs["reason"] == "" || acc.attrs["class"] == "") {
			t.Errorf("%s: access line %v", tc.body, acc)
		}
		for _, r := range logs.all() {
			if r.msg == "lead done" {
				t.Errorf("a /run lead logged its own end too: %v", r)
			}
		}
	}
}

// TestRefusedRequestLogged: a request refused at the front gets its id
// and one warning access line with the code.
func TestRefusedRequestLogged(t *testing.T) {
	t.Parallel()
	p := newPartner(t)
	dir := t.TempDir()
	writeIntegration(t, dir, p.URL)
	logs := newLogCapture()
	s := testServer(t, Config{Dir: dir, Logger: logs.logger()})
	code, _ := hostRequest(t, "GET", "http://"+s.Addr()+"/v1/integrations", "evil.example", "X-Request-Id", "req-refused")
	if code != http.StatusForbidden {
		t.Fatalf("status %d", code)
	}
	r := logs.wait(t, "refused", func(r logRec) bool { return r.attrs[telemetry.KeyRequestID] == "req-refused" })
	if r.msg != "request" || r.level != slog.LevelWarn || r.attrs["code"] != CodeForbiddenHost || r.attrs["route"] != "(refused)" {
		t.Errorf("refused line %v", r)
	}
	n := 0
	for _, r := range logs.all() {
		if r.attrs[telemetry.KeyRequestID] == "req-refused" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d lines for the refused request, want 1", n)
	}
}
