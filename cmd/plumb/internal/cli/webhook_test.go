package cli

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/plumbhq/plumb/webhook"
)

func plumbCLI(t *testing.T, stdin string, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, strings.NewReader(stdin), &out, &errb, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	return code, out.String(), errb.String()
}

// The headers plumb webhook sign prints verify with the receiver's code,
// for every preset.
func TestWebhookSign(t *testing.T) {
	body := `{"event":"lead.status_changed","timestamp":"2026-06-11T17:42:11.000Z","data":{"id":"a1"}}`
	file := filepath.Join(t.TempDir(), "event.json")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg  webhook.Config
		args []string
	}{
		{webhook.Config{Preset: "actuallycare", Secrets: []string{"s3cret-value"}}, []string{"--preset", "actuallycare", "--secret-env", "HOOK_SECRET"}},
		{webhook.Config{Preset: "github", Secrets: []string{"s3cret-value"}}, []string{"--preset", "github", "--secret", "s3cret-value", "--id", "d-1"}},
		{webhook.Config{Preset: "stripe", Secrets: []string{"s3cret-value"}}, []string{"--preset", "stripe", "--secret-env", "HOOK_SECRET"}},
		{webhook.Config{Preset: "standard-webhooks", Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}, []string{"--preset", "standard-webhooks", "--secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "--id", "msg_1"}},
		{webhook.Config{Preset: "hmac", Secrets: []string{"s3cret-value"}, Header: "X-Sig", Prefix: "v0=", Signed: "v0:{timestamp}:{body}", TimestampHeader: "X-Ts"},
			[]string{"--preset", "hmac", "--secret-env", "HOOK_SECRET", "--header", "X-Sig", "--prefix", "v0=", "--signed", "v0:{timestamp}:{body}", "--timestamp-header", "X-Ts"}},
	} {
		args := append([]string{"webhook", "sign"}, tc.args...)
		code, out, errs := plumbCLI(t, "", map[string]string{"HOOK_SECRET": "s3cret-value"}, append(args, file)...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", tc.cfg.Preset, code, errs)
		}
		h := http.Header{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			k, v, ok := strings.Cut(line, ": ")
			if !ok {
				t.Fatalf("%s: line %q", tc.cfg.Preset, line)
			}
			h.Add(k, v)
		}
		v, err := webhook.New(tc.cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(h, []byte(body)); err != nil {
			t.Errorf("%s: %v\n%s", tc.cfg.Preset, err, out)
		}
		if _, err := v.Verify(h, []byte(body+" ")); err == nil {
			t.Errorf("%s: a changed body verifies", tc.cfg.Preset)
		}
		// stdin reads the same bytes
		if _, out2, _ := plumbCLI(t, body, map[string]string{"HOOK_SECRET": "s3cret-value"}, append(args, "--timestamp", "1700000000", "-")...); out2 == "" {
			t.Errorf("%s: nothing printed for stdin", tc.cfg.Preset)
		}
	}
	code, _, errs := plumbCLI(t, "", nil, "webhook", "sign", "--preset", "github", "--secret-env", "NOPE", file)
	if code != ExitUsage || !strings.Contains(errs, "NOPE is not set") {
		t.Errorf("unset env: %d %s", code, errs)
	}
	code, out, _ := plumbCLI(t, "", nil, "webhooks", "sign", "--preset", "github", "--secret", "k", "--curl", "http://127.0.0.1:1/v1/hooks/x", file)
	if code != 0 || !strings.HasPrefix(out, "curl ") || !strings.Contains(out, "X-Hub-Signature-256: sha256=") || !strings.Contains(out, "'@"+file+"'") {
		t.Errorf("curl: %d %s", code, out)
	}
}

// plumb webhook replay re-queues dead webhook events through the API.
func TestWebhookReplay(t *testing.T) {
	var mu sync.Mutex
	var retried []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(401)
			io.WriteString(w, `{"error":{"code":"unauthorized","message":"token"}}`)
			return
		}
		switch {
		case r.Method == "GET" && r.URL.Path == "/v1/dead":
			io.WriteString(w, `{"dead":[{"id":"wh_aa"},{"id":"lead1"},{"id":"wh_bb"}]}`)
		case r.Method == "POST" && strings.HasPrefix(r.URL.Path, "/v1/dead/"):
			id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/dead/"), "/retry")
			if id == "wh_gone" {
				w.WriteHeader(404)
				io.WriteString(w, `{"error":{"code":"not_found","message":"no dead letter wh_gone"}}`)
				return
			}
			mu.Lock()
			retried = append(retried, id)
			mu.Unlock()
			w.WriteHeader(202)
		}
	}))
	defer api.Close()
	env := map[string]string{"PLUMB_SERVE_TOKEN": "tok"}
	code, out, errs := plumbCLI(t, "", env, "webhook", "replay", "--addr", api.URL, "--all")
	if code != 0 || strings.Join(retried, ",") != "wh_aa,wh_bb" || !strings.Contains(out, "replayed wh_bb") {
		t.Errorf("--all: %d %q %s %s", code, retried, out, errs)
	}
	code, _, errs = plumbCLI(t, "", env, "webhook", "replay", "--addr", api.URL, "wh_gone")
	if code != ExitLeadError || !strings.Contains(errs, "404 not_found") {
		t.Errorf("unknown id: %d %s", code, errs)
	}
	code, _, errs = plumbCLI(t, "", nil, "webhook", "replay", "--addr", api.URL, "wh_aa")
	if code != ExitLeadError || !strings.Contains(errs, "401") {
		t.Errorf("no token: %d %s", code, errs)
	}
	if code, _, _ := plumbCLI(t, "", nil, "webhook", "replay"); code != ExitUsage {
		t.Errorf("no ids: %d", code)
	}
}
