package serve

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/oauthtest"
	"github.com/plumbhq/plumb/internal/queue"
)

// echoYAML fetches an OAuth2 token from a real authorization server and
// calls a partner that echoes it back in every form: captured and appended
// to the lead, then in the text of a refusal (path deny, a failure) or an
// outage (path down, an error: a webhook event is retried, then
// dead-lettered with the reason).
const echoYAML = `version: 1
name: echo
settings:
  base_url: { required: true }
  token_url: { required: true }
  client_secret: { required: true, secret: true }
  hook_secret: { required: true, secret: true }
auth:
  type: oauth2
  token_url: "{{settings.token_url}}"
  client_id: ` + oauthtest.ClientID + `
  client_secret: "{{settings.client_secret}}"
webhook:
  verify: { preset: actuallycare, secrets: ["{{settings.hook_secret}}"] }
steps:
  - name: echo
    request: { url: "{{settings.base_url}}/ok" }
    capture:
      raw: { json: raw }
      std: { json: std }
      urlraw: { json: urlraw }
      hex: { json: hex }
      hexupper: { json: hexupper }
      lower: { json: lower }
      first: { json: first }
      second: { json: second }
      header: { header: X-Echo-Std }
    append:
      echoed: "{{captured}}"
  - name: then
    request: { url: "{{settings.base_url}}/{{lead.path}}" }
    response: { format: text }
    timeout: 60s
`

// tokenForms are the ways the partner echoes a token.
func tokenForms(tok string) map[string]string {
	b := []byte(tok)
	return map[string]string{
		"raw": tok, "lower": strings.ToLower(tok), "std": base64.StdEncoding.EncodeToString(b),
		"stdraw": base64.RawStdEncoding.EncodeToString(b), "url": base64.URLEncoding.EncodeToString(b),
		"urlraw": base64.RawURLEncoding.EncodeToString(b), "hex": hex.EncodeToString(b),
		"hexupper": strings.ToUpper(hex.EncodeToString(b)), "first": tok[:len(tok)/2], "second": tok[len(tok)/2:],
	}
}

// tokenLeaks names the forms of tok in out, and any 12 characters of it.
func tokenLeaks(out, tok string) []string {
	var found []string
	for name, f := range tokenForms(tok) {
		if strings.Contains(out, f) {
			found = append(found, name)
		}
	}
	low, lt := strings.ToLower(out), strings.ToLower(tok)
	for i := 0; i+12 <= len(lt); i++ {
		if strings.Contains(low, lt[i:i+12]) {
			return append(found, "piece")
		}
	}
	return found
}

// TestEchoedTokenNeverStored: the OAuth2 token the service fetched, echoed
// by the partner in raw, base64 (both alphabets, padded or not), hex (both
// cases), another case and halves, in JSON, text and a header, shows in no
// result (sync and queued), dead letter, log line, or byte of the data
// directory (the queue, the result store).
func TestEchoedTokenNeverStored(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{})
	var mu sync.Mutex
	seen := map[string]bool{}
	partner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		mu.Lock()
		seen[tok] = true
		mu.Unlock()
		forms := tokenForms(tok)
		var text []string
		for name, f := range forms {
			w.Header().Set("X-Echo-"+name, f)
			text = append(text, name+"="+f)
		}
		switch r.URL.Path {
		case "/ok":
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(forms)
		case "/deny":
			w.WriteHeader(400)
			fmt.Fprintf(w, "the token %s is refused", strings.Join(text, " "))
		default:
			w.WriteHeader(500)
			fmt.Fprintf(w, "broke on %s", strings.Join(text, " "))
		}
	}))
	t.Cleanup(partner.Close)

	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "echo.yaml"), []byte(echoYAML), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "echo.settings.yaml"), []byte(fmt.Sprintf(
		"base_url: %s\ntoken_url: %s\nclient_secret: %s\nhook_secret: %s\n",
		partner.URL, o.TokenURL(), oauthtest.ClientSecret, hookSecret)), 0o600))
	logs := &lockedBuffer{}
	data := t.TempDir()
	s := testServer(t, Config{Dir: dir, DataDir: data,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Queue:  queue.Config{MaxDeliver: 2, RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 20 * time.Millisecond}})
	c := client{t: t, base: "http://" + s.Addr()}
	var printed strings.Builder

	// a sync run and a queued lead end on the partner's refusal
	code, b := c.do("POST", "/v1/integrations/echo/run", "application/json", []byte(`{"path":"deny","marker":"lead-marker-7f3a"}`))
	if r := decode[result](t, b); code != 422 || r.Outcome != "failure" || !strings.Contains(r.Reason, "HTTP 400") {
		t.Fatalf("sync run: %d %s", code, b)
	}
	printed.Write(b)
	code, b = c.do("POST", "/v1/integrations/echo/leads", "application/json", []byte(`{"path":"deny","marker":"lead-marker-7f3a"}`))
	if code != 202 {
		t.Fatalf("accept: %d %s", code, b)
	}
	id := decode[accepted](t, b).Leads[0].ID
	if st := c.waitDone(id); st.Result == nil || st.Result.Outcome != "failure" {
		t.Fatalf("queued lead: %+v", st)
	}
	_, b = c.do("GET", "/v1/leads/"+id, "", nil)
	printed.Write(b)

	// a webhook event meets an outage twice and is dead-lettered
	code, b, err := post(c.base, "/v1/hooks/echo", []byte(`{"event":"x","path":"down","marker":"lead-marker-7f3a"}`), hookSecret)
	must(t, err)
	if code != 200 {
		t.Fatalf("webhook: %d %s", code, b)
	}
	hid := decode[HookAnswer](t, b).ID
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, b := c.do("GET", "/v1/leads/"+hid, "", nil)
		if code == 200 && decode[leadStatus](t, b).State == "dead" {
			printed.Write(b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("event not dead-lettered: %d %s", code, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, b = c.do("GET", "/v1/dead", "", nil)
	if code != 200 || !strings.Contains(string(b), hid) || !strings.Contains(string(b), "HTTP 500") || !strings.Contains(string(b), "****") {
		t.Fatalf("dead letters: %d %s", code, b)
	}
	printed.Write(b)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must(t, s.Shutdown(ctx))
	var disk strings.Builder
	must(t, filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		disk.Write(b)
		return err
	}))
	// the data directory is read as it is stored: the lead and the masked
	// results are there in plain bytes
	if !strings.Contains(disk.String(), "lead-marker-7f3a") || !strings.Contains(disk.String(), "****") {
		t.Fatalf("the data directory (%d bytes) does not hold the leads and results as plain bytes", disk.Len())
	}

	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 {
		t.Fatalf("the partner saw %d tokens", len(seen))
	}
	for tok := range seen {
		if len(tok) < 24 {
			t.Fatalf("token %q", tok)
		}
		for what, out := range map[string]string{"API answers": printed.String(), "logs": logs.String(), "data directory": disk.String()} {
			if found := tokenLeaks(out, tok); len(found) > 0 {
				t.Errorf("the %s show the token as %v", what, found)
			}
		}
	}
}
