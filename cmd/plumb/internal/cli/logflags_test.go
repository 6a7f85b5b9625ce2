package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/telemetry/otlptest"
)

// okPartner answers every request {"ok": true}.
func okPartner(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok": true}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// runWith runs plumb run with env.
func runWith(t *testing.T, env map[string]string, args ...string) mainResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	s := &stdio{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr,
		env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	code := runCmd(context.Background(), s, args)
	return mainResult{code, stdout.String(), stderr.String()}
}

func threeLeads(t *testing.T) string {
	return writeFile(t, "leads.ndjson", "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n")
}

// TestRunLogFormatJSON: --log-format json --log-level debug writes JSON
// lines: each try names the integration, the lead and the step, with
// duration_ms in milliseconds; each lead's end is an info line.
func TestRunLogFormatJSON(t *testing.T) {
	srv := okPartner(t)
	file := writeFile(t, "one.yaml", oneCall)
	r := runWith(t, nil, "--log-format", "json", "--log-level", "debug", "--set", "base_url="+srv.URL,
		"--leads", threeLeads(t), "--output", "ndjson", file)
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	tries, ends := map[string]bool{}, map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if strings.HasPrefix(line, "summary: ") || strings.HasPrefix(line, "latency: ") {
			continue // the run's summary, for people
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		lead, _ := m["lead_id"].(string)
		if _, ok := m["duration_ms"].(float64); !ok || m["integration"] != "one" || lead == "" {
			t.Errorf("line without integration, lead or duration_ms: %s", line)
		}
		switch m["msg"] {
		case "attempt":
			if m["step"] != "call" || m["level"] != "DEBUG" {
				t.Errorf("attempt line %s", line)
			}
			tries[lead] = true
		case "lead done":
			if m["level"] != "INFO" || m["outcome"] != "success" {
				t.Errorf("lead line %s", line)
			}
			ends[lead] = true
		default:
			t.Errorf("unexpected line %s", line)
		}
	}
	for _, lead := range []string{"1", "2", "3"} {
		if !tries[lead] || !ends[lead] {
			t.Errorf("lead %s: try logged %v, end logged %v\n%s", lead, tries[lead], ends[lead], r.stderr)
		}
	}
}

// TestRunLogFlags: --log-level info in text gives one logfmt line per
// lead; --log-format alone logs warnings only (none here); a bad value is
// a usage error.
func TestRunLogFlags(t *testing.T) {
	srv := okPartner(t)
	file := writeFile(t, "one.yaml", oneCall)
	leads := threeLeads(t)
	r := runWith(t, nil, "--log-level", "info", "--set", "base_url="+srv.URL, "--leads", leads, file)
	lines := regexp.MustCompile(`(?m)^time=\S+ level=INFO msg="lead done" lead_id=\d integration=one outcome=success duration_ms=[\d.]+$`).FindAllString(r.stderr, -1)
	if r.code != ExitOK || len(lines) != 3 {
		t.Errorf("exit %d, %d lead lines:\n%s", r.code, len(lines), r.stderr)
	}
	r = runWith(t, nil, "--log-format", "json", "--set", "base_url="+srv.URL, "--leads", leads, file)
	if r.code != ExitOK || r.stderr != "" {
		t.Errorf("warn level: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, bad := range [][]string{{"--log-format", "xml"}, {"--log-level", "loud"}} {
		r = runWith(t, nil, append(bad, "--set", "base_url="+srv.URL, "--leads", leads, file)...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, bad[1]) {
			t.Errorf("%v: exit %d, %s", bad, r.code, r.stderr)
		}
	}
}

// TestRunExportsTraces: with OTEL_EXPORTER_OTLP_ENDPOINT, plumb run sends
// each lead's spans to the collector (a real OTLP/HTTP receiver) before it
// exits; a bad variable is a usage error naming it.
func TestRunExportsTraces(t *testing.T) {
	srv := okPartner(t)
	rcv := otlptest.New(t)
	file := writeFile(t, "one.yaml", oneCall)
	r := runWith(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL, "OTEL_EXPORTER_OTLP_HEADERS": "x-token=abc"},
		"--set", "base_url="+srv.URL, "--leads", threeLeads(t), file)
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	n := map[string]int{}
	leads := map[string]bool{}
	for _, s := range rcv.Spans() {
		n[s.Name]++
		if s.Name == "plumb.lead" {
			leads[s.Attrs["plumb.lead_id"]] = true
			if s.Resource["service.name"] != "plumb" || s.Attrs["plumb.integration"] != "one" {
				t.Errorf("lead span %+v", s)
			}
		}
	}
	if n["plumb.lead"] != 3 || n["plumb.step"] != 3 || n["plumb.try"] != 3 || len(leads) != 3 {
		t.Errorf("spans %v, lead ids %v", n, leads)
	}
	for _, ex := range rcv.Exports() {
		if ex.Header.Get("X-Token") != "abc" || ex.Path != "/v1/traces" {
			t.Errorf("export %s %v", ex.Path, ex.Header)
		}
	}
	r = runWith(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
		"--set", "base_url="+srv.URL, "--leads", threeLeads(t), file)
	if r.code != ExitUsage || !strings.Contains(r.stderr, "OTEL_EXPORTER_OTLP_PROTOCOL=grpc") {
		t.Errorf("grpc: exit %d, %s", r.code, r.stderr)
	}
}

// syncBuffer is a stderr that can be read while written.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestServeLogsAndExports: plumb serve --log-format text logs a request's
// access line and its lead's end with the client's request id, and sends
// the request's spans to the collector before it exits.
func TestServeLogsAndExports(t *testing.T) {
	srv := okPartner(t)
	rcv := otlptest.New(t)
	dir := serveDir(t, srv.URL)
	stderr := &syncBuffer{}
	env := map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": rcv.URL + "/v1/traces"}
	s := &stdio{stdout: io.Discard, stderr: stderr, env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- serveCmd(ctx, s, []string{"--dir", dir, "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--log-format", "text"})
	}()
	listening := regexp.MustCompile(`msg=listening addr=(\S+)`)
	var addr string
	for deadline := time.Now().Add(60 * time.Second); addr == ""; {
		if m := listening.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("serve did not listen:\n%s", stderr.String())
		} else {
			select {
			case code := <-done:
				t.Fatalf("serve exited %d:\n%s", code, stderr.String())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/integrations/one/run", strings.NewReader(`{"n":1}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", "cli-req-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") != "cli-req-1" {
		t.Fatalf("run: %d, X-Request-Id %q", resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}
	cancel()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Fatalf("serve exited %d:\n%s", code, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not stop")
	}
	log := stderr.String()
	for _, want := range []string{
		`level=INFO msg=request request_id=cli-req-1 trace_id=[0-9a-f]{32} span_id=[0-9a-f]{16} method=POST route=/v1/integrations/\{name\}/run path=/v1/integrations/one/run status=200 duration_ms=[\d.]+ remote=\S+ lead_id=\w+ integration=one outcome=success\n`,
		`msg="exporting traces over OTLP/HTTP" endpoint=` + regexp.QuoteMeta(rcv.URL) + `/v1/traces`,
	} {
		if !regexp.MustCompile(want).MatchString(log) {
			t.Errorf("no %s in the log:\n%s", want, log)
		}
	}
	names := map[string]bool{}
	for _, sp := range rcv.Spans() {
		if sp.Attrs["plumb.request_id"] == "cli-req-1" {
			names[sp.Name] = true
		}
	}
	if !names["POST /v1/integrations/{name}/run"] || !names["plumb.lead"] || !names["plumb.try"] {
		t.Errorf("spans of the request: %v", names)
	}
}

// TestServeLogFlagsChecked: a bad --log-format, --log-level or
// --access-log-sample is a usage error.
func TestServeLogFlagsChecked(t *testing.T) {
	dir := t.TempDir()
	for _, bad := range [][]string{{"--log-format", "xml"}, {"--log-level", "loud"}, {"--access-log-sample", "0"}} {
		var stderr bytes.Buffer
		s := &stdio{stdout: io.Discard, stderr: &stderr, env: func(string) (string, bool) { return "", false }}
		// cancelled: a flag let through makes a service that stops at once
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		code := serveCmd(ctx, s, append([]string{"--dir", dir, "--data", t.TempDir(), "--addr", "127.0.0.1:0"}, bad...))
		if code != ExitUsage || !strings.Contains(stderr.String(), bad[1]) {
			t.Errorf("%v: exit %d, %s", bad, code, stderr.String())
		}
	}
}

// TestServeLinesInOrder: serve's log lines are held up to a linger and
// written together, and an error it prints goes through the same writer:
// a serve that fails to listen prints its error after the lines logged
// before it, and nothing is left held when it returns.
func TestServeLinesInOrder(t *testing.T) {
	srv := okPartner(t)
	dir := serveDir(t, srv.URL)
	stderr := &syncBuffer{}
	s := &stdio{stdout: io.Discard, stderr: stderr, env: func(string) (string, bool) { return "", false }}
	code := serveCmd(context.Background(), s, []string{"--dir", dir, "--addr", "127.0.0.1:99999", "--data", t.TempDir(), "--log-format", "text", "--log-linger", "1h"})
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if code == ExitOK || len(lines) < 2 || !strings.Contains(lines[len(lines)-1], "plumb: serve:") {
		t.Fatalf("exit %d, stderr:\n%s\nwant the listen error last, after the log lines", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "level=INFO") {
		t.Fatalf("no info line before the error:\n%s", stderr.String())
	}
}

// serveDir is a directory that serves oneCall against the partner at url.
func serveDir(t *testing.T, url string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "one.yaml"), []byte(oneCall), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "one.settings.yaml"), []byte("base_url: "+url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}
