package eventlog

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/plumbhq/plumb/engine"
)

func runLead(t *testing.T, l *slog.Logger) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.WriteHeader(503)
			return
		}
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	src := "version: 1\nname: lg\nsettings: { base_url: {}, key: { secret: true } }\nsteps:\n  - name: s\n    request: { url: \"{{settings.base_url}}/x?k={{settings.key}}\" }\n    retry: [ { on: [503], action: retry, backoff: { initial: 1ms, max: 1ms } } ]\n"
	p, err := engine.Parse("lg.yaml", []byte(src), engine.WithEvents(New(l)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Bind(engine.Config{Values: map[string]any{"base_url": srv.URL, "key": "s3cret-k3y"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if res := r.Run(context.Background(), nil); res.Outcome != engine.Success {
		t.Fatalf("%s %q", res.Outcome, res.Reason)
	}
}

// TestLogsEachTryRuleAndBackoff: at debug level a retried step logs
// attempt, rule, backoff, attempt, each naming the integration and step,
// with their fields, durations in milliseconds, and the secret in the URL
// masked.
func TestLogsEachTryRuleAndBackoff(t *testing.T) {
	var buf bytes.Buffer
	runLead(t, slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	var msgs []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		_, rest, _ := strings.Cut(line, "msg=")
		msg, rest, _ := strings.Cut(rest, " integration=lg step=s ")
		msgs = append(msgs, msg)
		if rest == "" {
			t.Errorf("no integration and step: %s", line)
		}
	}
	if got := strings.Join(msgs, ","); got != "attempt,rule,backoff,attempt" {
		t.Fatalf("messages %s\n%s", got, buf.String())
	}
	for _, want := range []string{"status=503", "attempt=2", "status=200", "action=retry", "method=GET", "error=<nil>", "k=****"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("no %q in\n%s", want, buf.String())
		}
	}
	// milliseconds as numbers: the backoff waits at most 1 ms
	if !regexp.MustCompile(`attempt=1 wait_ms=(0\.\d+|1)\n`).MatchString(buf.String()) ||
		!regexp.MustCompile(`status=200 duration_ms=\d+(\.\d+)? attempt=2`).MatchString(buf.String()) {
		t.Errorf("durations not in milliseconds:\n%s", buf.String())
	}
	if strings.Contains(buf.String(), "s3cret-k3y") {
		t.Fatalf("the secret shows in the log:\n%s", buf.String())
	}
}

// TestQuietAboveDebug: a logger at info level gets no line.
func TestQuietAboveDebug(t *testing.T) {
	var buf bytes.Buffer
	runLead(t, slog.New(slog.NewTextHandler(&buf, nil)))
	if buf.Len() != 0 {
		t.Fatalf("logged at info level:\n%s", buf.String())
	}
}
