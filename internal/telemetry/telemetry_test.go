package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/engine/eventlog"
	"github.com/plumbhq/plumb/internal/telemetry/otlptest"
)

// jsonLines logs through a Handler over a JSON handler and returns the
// lines decoded.
func jsonLines(t *testing.T, log func(l *slog.Logger)) []map[string]any {
	t.Helper()
	var buf bytes.Buffer
	log(slog.New(NewHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if strings.Count(line, `"`+KeyRequestID+`"`) > 1 || strings.Count(line, `"step"`) > 1 || strings.Count(line, `"integration"`) > 1 {
			t.Errorf("a key twice: %s", line)
		}
		out = append(out, m)
	}
	return out
}

var testSpan = trace.NewSpanContext(trace.SpanContextConfig{
	TraceID: trace.TraceID{0x4b, 0xf9, 1}, SpanID: trace.SpanID{0x0f, 2}, TraceFlags: trace.FlagsSampled})

// TestHandlerAddsContextIds: a line logged with a context gets its ids,
// the trace and span, once each (the line's or logger's own value wins);
// durations become KEY_ms in milliseconds, in groups too; a line without
// a context gets nothing.
func TestHandlerAddsContextIds(t *testing.T) {
	ctx := stepContext(t, WithIntegration(WithLead(WithRequestID(context.Background(), "req-1"), "lead-9"), "acme"), "verify")
	ctx = trace.ContextWithSpanContext(ctx, testSpan)
	lines := jsonLines(t, func(l *slog.Logger) {
		l.InfoContext(ctx, "one", "wait", 1500*time.Microsecond)
		l.InfoContext(ctx, "two", "step", "own")
		l.With("integration", "fixed").InfoContext(ctx, "three")
		l.InfoContext(ctx, "four", slog.Group("g", slog.Duration("took", 2*time.Second)))
		l.Info("five", "d", time.Millisecond)
		l.WithGroup("grp").InfoContext(ctx, "six")
	})
	one := lines[0]
	for k, want := range map[string]any{KeyRequestID: "req-1", KeyLead: "lead-9", KeyIntegration: "acme", KeyStep: "verify",
		KeyTraceID: testSpan.TraceID().String(), KeySpanID: testSpan.SpanID().String(), "wait_ms": 1.5} {
		if one[k] != want {
			t.Errorf("%s = %v, want %v: %v", k, one[k], want, one)
		}
	}
	if _, ok := one["wait"]; ok {
		t.Errorf("the duration kept its key: %v", one)
	}
	if lines[1]["step"] != "own" || lines[2]["integration"] != "fixed" {
		t.Errorf("the line's own value lost: %v %v", lines[1], lines[2])
	}
	if g, _ := lines[3]["g"].(map[string]any); g["took_ms"] != 2000.0 {
		t.Errorf("group duration: %v", lines[3])
	}
	if lines[4][KeyRequestID] != nil || lines[4]["d_ms"] != 1.0 {
		t.Errorf("a line without context: %v", lines[4])
	}
	if g, _ := lines[5]["grp"].(map[string]any); g[KeyRequestID] != "req-1" {
		t.Errorf("in a group the ids go in the group: %v", lines[5])
	}
}

// oneStep is an integration of one step, verify, against {{settings.base_url}}.
const oneStep = `
version: 1
name: acme
settings:
  base_url: { required: true }
steps:
  - name: verify
    request: { method: GET, url: "{{settings.base_url}}/v" }
    outcome:
      error_when: response.status == 299
`

// runOne runs a lead of oneStep against an answer of status with opts;
// it returns the result.
func runOne(t *testing.T, ctx context.Context, status int, opts ...engine.Option) *engine.Result {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }))
	defer srv.Close()
	plan, err := engine.Parse("acme.yaml", []byte(oneStep), opts...)
	if err != nil {
		t.Fatal(err)
	}
	r, err := plan.Bind(engine.Config{Values: map[string]any{"base_url": srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	return r.Run(ctx, map[string]any{})
}

// stepSeen keeps the contexts of the lead's and the step's start.
type stepSeen struct {
	engine.NopEvents
	lead, ctx context.Context
}

func (s *stepSeen) LeadStart(ctx context.Context, _ engine.LeadStart) context.Context {
	s.lead = ctx
	return ctx
}

func (s *stepSeen) StepStart(ctx context.Context, _ engine.StepStart) context.Context {
	s.ctx = ctx
	return ctx
}

// stepContext is ctx as the engine hands it to a step named step: the
// step is the engine's (engine.StepName), not an id of this package.
func stepContext(t *testing.T, ctx context.Context, step string) context.Context {
	t.Helper()
	var seen stepSeen
	runOne(t, ctx, 200, engine.WithEvents(&seen))
	if seen.ctx == nil || engine.StepName(seen.ctx) != "verify" {
		t.Fatalf("no step context: %v", seen.ctx)
	}
	return seen.ctx
}

// TestEventsNameIntegrationAndStep: with the Events, the lines the engine
// logs in a lead name its integration and the step the engine runs, leads
// without an id are numbered, a given one is kept, and each lead's end is
// logged at info (warn for an error); a lead run from inside a step starts
// outside any.
func TestEventsNameIntegrationAndStep(t *testing.T) {
	lines := jsonLines(t, func(l *slog.Logger) {
		ev := Events(l)
		inStep := stepContext(t, context.Background(), "verify")
		var seen stepSeen
		for _, ctx := range []context.Context{context.Background(), inStep, WithLead(context.Background(), "given")} {
			runOne(t, ctx, 299, engine.WithLogger(l), engine.WithEvents(ev), engine.WithEvents(eventlog.New(l)), engine.WithEvents(&seen))
			if engine.StepName(seen.lead) != "" {
				t.Errorf("a lead started in step %q", engine.StepName(seen.lead))
			}
		}
		Events(nil).LeadEnd(context.Background(), engine.LeadEnd{Integration: "quiet"})
	})
	var tries, ends []map[string]any
	for _, line := range lines {
		switch line["msg"] {
		case "attempt":
			tries = append(tries, line)
		case "lead done":
			ends = append(ends, line)
		}
	}
	if len(tries) != 3 || len(ends) != 3 {
		t.Fatalf("%d tries and %d ends: %v", len(tries), len(ends), lines)
	}
	for i, lead := range []string{"1", "2", "given"} {
		in, end := tries[i], ends[i]
		if in[KeyLead] != lead || in[KeyStep] != "verify" || in[KeyIntegration] != "acme" {
			t.Errorf("line in the step: %v, want lead %s, step verify", in, lead)
		}
		if end["level"] != "WARN" || end[KeyLead] != lead || end[KeyStep] != "verify" || end["outcome"] != "error" ||
			end["class"] != "rejected" || end["duration_ms"] == nil || strings.Count(fmt.Sprint(end), "verify") != 1 {
			t.Errorf("lead end: %v", end)
		}
	}
}

func TestValidRequestID(t *testing.T) {
	for id, ok := range map[string]bool{
		"req-1": true, "a1b2c3d4-e5f6-7890-abcd-ef0123456789": true, "b64+/=": true, "svc:42@host.example": true,
		strings.Repeat("a", MaxRequestID): true, strings.Repeat("a", MaxRequestID+1): false,
		"": false, "a b": false, "a\nb": false, `a"b`: false, "ü": false, "a\x00": false, "a;b": false, "a<b>": false,
	} {
		if ValidRequestID(id) != ok {
			t.Errorf("ValidRequestID(%q) = %v", id, !ok)
		}
	}
	if a, b := NewRequestID(), NewRequestID(); a == b || !ValidRequestID(a) {
		t.Errorf("new ids %q %q", a, b)
	}
}

func TestNewLoggerFormats(t *testing.T) {
	var buf bytes.Buffer
	l, err := NewLogger(&buf, FormatText, slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	l.InfoContext(WithRequestID(context.Background(), "r1"), "hi", "d", 2*time.Millisecond)
	l.Debug("hidden")
	if got := buf.String(); !strings.Contains(got, "msg=hi request_id=r1 d_ms=2\n") || strings.Contains(got, "hidden") {
		t.Errorf("text line %q", got)
	}
	if _, err := NewLogger(&buf, "xml", slog.LevelInfo); err == nil {
		t.Error("format xml accepted")
	}
	for s, want := range map[string]slog.Level{"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError} {
		if l, err := ParseLevel(s); err != nil || l != want {
			t.Errorf("ParseLevel(%q) = %v, %v", s, l, err)
		}
	}
	if _, err := ParseLevel("info+2"); err == nil {
		t.Error("level info+2 accepted")
	}
}

// env is a Lookup over a map.
func env(m map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// TestFromEnvOff: no endpoint, or export turned off: no exporter.
func TestFromEnvOff(t *testing.T) {
	for _, m := range []map[string]string{
		{},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": ""},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"},
	} {
		tr, err := FromEnv(env(m), "plumb", slog.New(slog.DiscardHandler))
		if tr != nil || err != nil {
			t.Errorf("%v: %v, %v; want no exporter", m, tr, err)
		}
	}
}

// TestFromEnvErrors: a value that cannot be used stops with the
// variable's name, never a header's value.
func TestFromEnvErrors(t *testing.T) {
	base := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}
	for name, c := range map[string]struct {
		k, v, want string
	}{
		"grpc":        {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc: plumb sends OTLP over HTTP"},
		"protocol":    {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "thrift", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
		"scheme":      {"OTEL_EXPORTER_OTLP_ENDPOINT", "c:4318", "OTEL_EXPORTER_OTLP_ENDPOINT: want an http"},
		"traces url":  {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://c/x", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		"headers":     {"OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%zzs3cret", "the value of authorization is not percent-encoded"},
		"header pair": {"OTEL_EXPORTER_OTLP_HEADERS", "a=1,s3cret", "OTEL_EXPORTER_OTLP_HEADERS: pair 2 is not key=value"},
		"timeout":     {"OTEL_EXPORTER_OTLP_TIMEOUT", "10s", "OTEL_EXPORTER_OTLP_TIMEOUT"},
		"compression": {"OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", "OTEL_EXPORTER_OTLP_COMPRESSION"},
		"sampler":     {"OTEL_TRACES_SAMPLER", "sometimes", "OTEL_TRACES_SAMPLER"},
		"ratio":       {"OTEL_TRACES_SAMPLER_ARG", "2", "OTEL_TRACES_SAMPLER_ARG"},
		"exporter":    {"OTEL_TRACES_EXPORTER", "zipkin", "OTEL_TRACES_EXPORTER"},
	} {
		m := map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio"}
		for k, v := range base {
			m[k] = v
		}
		m[c.k] = c.v
		tr, err := FromEnv(env(m), "plumb", slog.New(slog.DiscardHandler))
		if err == nil || tr != nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the secret shows: %v", name, err)
		}
	}
}

// span records one span with ids through tr and ends it.
func span(tr *Tracing) {
	ctx := WithLead(WithRequestID(context.Background(), "req-otlp"), "lead-otlp")
	_, sp := tr.Provider.Tracer("test").Start(ctx, "plumb.lead")
	sp.End()
}

// TestOTLPExport: spans go to a real OTLP/HTTP receiver at ENDPOINT +
// /v1/traces as protobuf, with the configured headers and resource, each
// with the request and lead ids of its context; Shutdown sends what is
// left.
func TestOTLPExport(t *testing.T) {
	rcv := otlptest.New(t)
	tr, err := FromEnv(env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL + "/base",
		"OTEL_EXPORTER_OTLP_HEADERS":  "authorization=Bearer%20s3cret, x-tenant = t1",
		"OTEL_RESOURCE_ATTRIBUTES":    "deployment.environment=test,service.name=ignored",
		"OTEL_SERVICE_NAME":           "plumb-test",
	}), "plumb", slog.New(slog.DiscardHandler))
	if err != nil || tr == nil {
		t.Fatalf("FromEnv: %v, %v", tr, err)
	}
	span(tr)
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ex := rcv.Exports()
	if len(ex) != 1 || len(ex[0].Spans) != 1 {
		t.Fatalf("exports %+v", ex)
	}
	e, s := ex[0], ex[0].Spans[0]
	if e.Path != "/base/v1/traces" || e.Header.Get("Authorization") != "Bearer s3cret" || e.Header.Get("X-Tenant") != "t1" ||
		e.Header.Get("Content-Type") != "application/x-protobuf" {
		t.Errorf("export %s %v", e.Path, e.Header)
	}
	if s.Name != "plumb.lead" || s.Attrs[AttrRequestID] != "req-otlp" || s.Attrs[AttrLead] != "lead-otlp" {
		t.Errorf("span %+v", s)
	}
	if s.Resource["service.name"] != "plumb-test" || s.Resource["deployment.environment"] != "test" || s.Resource["telemetry.sdk.name"] != "opentelemetry" {
		t.Errorf("resource %v", s.Resource)
	}
}

// TestOTLPExportVariants: a traces endpoint is used as it is; gzip and
// JSON are sent as asked; the service name defaults to the caller's.
func TestOTLPExportVariants(t *testing.T) {
	rcv := otlptest.New(t)
	tr, err := FromEnv(env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://unused.invalid:1",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": rcv.URL + "/custom/traces",
		"OTEL_EXPORTER_OTLP_COMPRESSION":     "gzip",
	}), "plumb-serve", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	span(tr)
	must(t, tr.Shutdown(context.Background()))
	ex := rcv.Exports()
	if len(ex) != 1 || ex[0].Path != "/custom/traces" || ex[0].Header.Get("Content-Encoding") != "gzip" ||
		len(ex[0].Spans) != 1 || ex[0].Spans[0].Resource["service.name"] != "plumb-serve" {
		t.Fatalf("exports %+v", ex)
	}
	tr, err = FromEnv(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}),
		"plumb", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	span(tr)
	must(t, tr.Shutdown(context.Background()))
	ex = rcv.Exports()
	if len(ex) != 2 || ex[1].Header.Get("Content-Type") != "application/json" || !bytes.Contains(ex[1].JSON, []byte("req-otlp")) {
		t.Fatalf("JSON export %+v", ex[1:])
	}
}

// TestExportFailuresLogged: a collector refusing exports is logged once
// (not per batch) and its recovery once; the spans are dropped.
func TestExportFailuresLogged(t *testing.T) {
	rcv := otlptest.New(t)
	rcv.Refuse.Store(true)
	var buf bytes.Buffer
	tr, err := FromEnv(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL + "/"}), "plumb",
		slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		span(tr)
		must(t, tr.Provider.ForceFlush(context.Background()))
	}
	rcv.Refuse.Store(false)
	span(tr)
	must(t, tr.Shutdown(context.Background()))
	log := buf.String()
	if strings.Count(log, "exporting traces failed") != 1 || strings.Count(log, "exporting traces again") != 1 {
		t.Errorf("log:\n%s", log)
	}
	if n := len(rcv.Spans()); n != 1 {
		t.Errorf("%d spans received, want the one after recovery", n)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
