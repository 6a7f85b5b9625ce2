package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/oauthtest"
)

const crmIntegration = `version: 1
name: crm
settings:
  base_url: { required: true }
  client_secret: { required: true, secret: true, env: CRM_CLIENT_SECRET }
auth:
  type: oauth2
  grant: authorization_code
  auth_url: "{{settings.base_url}}/authorize"
  token_url: "{{settings.base_url}}/token"
  client_id: plumb-client
  client_secret: "{{settings.client_secret}}"
  scopes: [leads]
steps:
  - name: me
    request: { url: "{{settings.base_url}}/api" }
    capture:
      user: { json: user }
    append: { owner: "{{captured.user}}" }
`

// urlWriter collects what a command prints and hands over the login URL
// as soon as it is printed.
type urlWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	url  chan string
	sent bool
}

var loginURLRE = regexp.MustCompile(`(?m)^Open this URL in a browser: (\S+)$`)

func (w *urlWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if m := loginURLRE.FindSubmatch(w.buf.Bytes()); m != nil && !w.sent {
		w.sent = true
		w.url <- string(m[1])
	}
	return len(p), nil
}

func (w *urlWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestAuthLoginStatusRunLogout plays the whole authorization-code flow of
// plumb auth against a real OAuth2 server: login (the test follows the
// printed URL like a browser), status, a run whose API call needs the
// token, logout, status again. No output ever shows a token or the client
// secret.
func TestAuthLoginStatusRunLogout(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{})
	dir := t.TempDir()
	file := filepath.Join(dir, "crm.yaml")
	if err := os.WriteFile(file, []byte(crmIntegration), 0o644); err != nil {
		t.Fatal(err)
	}
	lead := filepath.Join(dir, "lead.json")
	if err := os.WriteFile(lead, []byte(`{"email": "a@b.example"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(dir, "tokens")
	env := func(k string) (string, bool) {
		switch k {
		case "PLUMB_TOKEN_DIR":
			return tokens, true
		case "CRM_CLIENT_SECRET":
			return oauthtest.ClientSecret, true
		}
		return "", false
	}
	var outputs []string
	plumb := func(want int, args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		code := Main(args, strings.NewReader(""), &stdout, &stderr, env)
		outputs = append(outputs, stdout.String(), stderr.String())
		if code != want {
			t.Fatalf("plumb %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, stdout.String(), stderr.String())
		}
		return stdout.String() + stderr.String()
	}
	set := "base_url=" + o.URL()

	// before login: status says so, a run errors with the hint
	out := plumb(ExitLeadError, "auth", "status", file, "--set", set)
	if !strings.Contains(out, "not logged in (run plumb auth login "+file+")") {
		t.Errorf("status before login:\n%s", out)
	}
	out = plumb(ExitLeadError, "run", "--set", set, "--lead", lead, file)
	if !strings.Contains(out, "not logged in: run plumb auth login "+file) {
		t.Errorf("run before login:\n%s", out)
	}

	// login: the "browser" follows the printed URL
	w := &urlWriter{url: make(chan string, 1)}
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Main([]string{"auth", "login", "--set", set, file}, strings.NewReader(""), w, &stderr, env)
	}()
	var authURL string
	select {
	case authURL = <-w.url:
	case code := <-done:
		t.Fatalf("login exited %d before printing a URL\n%s\n%s", code, w.String(), stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("no login URL printed:\n%s", w.String())
	}
	if !strings.HasPrefix(authURL, o.URL()+"/authorize?") || !strings.Contains(authURL, "code_challenge_method=S256") {
		t.Errorf("authorization URL %s", authURL)
	}
	resp, err := http.Get(authURL) // the server auto-approves and redirects to the callback
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "login complete") {
		t.Fatalf("browser got %d: %s", resp.StatusCode, page)
	}
	select {
	case code := <-done:
		if code != ExitOK {
			t.Fatalf("login exit %d\n%s\n%s", code, w.String(), stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("login did not return after the callback")
	}
	outputs = append(outputs, w.String(), stderr.String())
	m := regexp.MustCompile(`(?m)^logged in; token stored in (\S+)$`).FindStringSubmatch(w.String())
	if m == nil {
		t.Fatalf("login output:\n%s", w.String())
	}
	raw, err := os.ReadFile(m[1])
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(m[1]) != tokens {
		t.Errorf("token stored in %s, want under %s", m[1], tokens)
	}
	var tok struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
	}
	if err := json.Unmarshal(raw, &tok); err != nil || tok.Access == "" || tok.Refresh == "" {
		t.Fatalf("token file: %v %s", err, raw)
	}

	// status: stored, with its expiry and a refresh token
	out = plumb(ExitOK, "auth", "status", "--set", set, file)
	for _, want := range []string{"oauth2 authorization_code: client plumb-client at " + o.URL() + "/token, scopes leads", "token stored in " + m[1], "expires: ", "refresh token: yes"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	// run and try use the token: the API validates it
	out = plumb(ExitOK, "run", "-vv", "--set", set, "--lead", lead, file)
	if !strings.Contains(out, `owner="test-user"`) {
		t.Errorf("run after login:\n%s", out)
	}
	out = plumb(ExitOK, "try", "--output", "json", "--set", set, "--lead", lead, "--token-dir", tokens, file)
	if !strings.Contains(out, `"user": "test-user"`) {
		t.Errorf("try after login:\n%s", out)
	}
	// another token directory has no login
	out = plumb(ExitLeadError, "run", "--set", set, "--lead", lead, "--token-dir", filepath.Join(dir, "other"), file)
	if !strings.Contains(out, "not logged in") {
		t.Errorf("run with an empty token dir:\n%s", out)
	}

	// logout, then status shows none and a run needs a login again
	out = plumb(ExitOK, "auth", "logout", "--set", set, file)
	if !strings.Contains(out, "logged out; removed "+m[1]) {
		t.Errorf("logout:\n%s", out)
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("token file still there: %v", err)
	}
	out = plumb(ExitLeadError, "auth", "status", "--set", set, file)
	if !strings.Contains(out, "not logged in") || strings.Contains(out, "token stored") {
		t.Errorf("status after logout:\n%s", out)
	}
	out = plumb(ExitOK, "auth", "logout", "--set", set, file)
	if !strings.Contains(out, "not logged in; nothing to remove") {
		t.Errorf("second logout:\n%s", out)
	}

	for _, o := range outputs {
		for name, secret := range map[string]string{"access token": tok.Access, "refresh token": tok.Refresh, "client secret": oauthtest.ClientSecret} {
			if strings.Contains(o, secret) {
				t.Errorf("output shows the %s:\n%s", name, o)
			}
		}
	}
}

// TestAuthErrors covers the refusals of plumb auth.
func TestAuthErrors(t *testing.T) {
	cc := filepath.Join(examplesDir, "oauth2-client-credentials")
	tokens := t.TempDir()
	run := func(want int, args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		code := Main(args, strings.NewReader(""), &stdout, &stderr, nil)
		if code != want {
			t.Fatalf("plumb %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, stdout.String(), stderr.String())
		}
		out := stdout.String() + stderr.String()
		if strings.Contains(out, "demo-secret") {
			t.Errorf("plumb %s shows the client secret:\n%s", strings.Join(args, " "), out)
		}
		return out
	}
	integration := filepath.Join(cc, "integration.yaml")
	settings := filepath.Join(cc, "settings.yaml")
	out := run(ExitUsage, "auth", "login", "--token-dir", tokens, "--settings", settings, integration)
	if !strings.Contains(out, "plumb: auth login: "+integration+" has no auth: section with type: oauth2 and grant: authorization_code") {
		t.Errorf("login without authorization_code:\n%s", out)
	}
	out = run(ExitOK, "auth", "status", "--token-dir", tokens, "--settings", settings, integration)
	if !strings.Contains(out, "oauth2 client_credentials: client demo-client at https://api.partner.example/oauth/token, scopes leads.write") ||
		!strings.Contains(out, "fetches a token at the start of each run") {
		t.Errorf("status of client_credentials:\n%s", out)
	}
	out = run(ExitOK, "auth", "status", "--token-dir", tokens, "--settings", filepath.Join(examplesDir, "blacklist", "settings.yaml"), filepath.Join(examplesDir, "blacklist", "integration.yaml"))
	if !strings.Contains(out, "has no oauth2 auth: section") {
		t.Errorf("status without oauth2:\n%s", out)
	}
	out = run(ExitUsage, "auth", "status", "--token-dir", tokens, "--settings=", integration)
	if !strings.Contains(out, "client_secret") {
		t.Errorf("missing required setting:\n%s", out)
	}
	if out := run(ExitUsage, "auth"); !strings.Contains(out, "give a subcommand: login, status or logout") {
		t.Errorf("no subcommand:\n%s", out)
	}
	if out := run(ExitUsage, "auth", "signup", integration); !strings.Contains(out, `unknown subcommand "signup"`) {
		t.Errorf("bad subcommand:\n%s", out)
	}
	if out := run(ExitUsage, "auth", "login"); !strings.Contains(out, "login: no integration file given") {
		t.Errorf("no file:\n%s", out)
	}
	if out := run(ExitOK, "auth", "-h"); !strings.Contains(out, "Usage: plumb auth login|status|logout") || !strings.Contains(out, "-token-dir") {
		t.Errorf("help:\n%s", out)
	}
}

// TestExampleAuthCodeLogin (issue 31): the authorization_code example's
// file, as it is, logs in with plumb auth login: the login listens on the
// file's redirect_url (a loopback callback the partner knows), the
// provider sends the browser there, and the token is stored.
func TestExampleAuthCodeLogin(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a free port for the callback
	if err != nil {
		t.Fatal(err)
	}
	callback := "http://" + ln.Addr().String() + "/callback"
	ln.Close()
	file := filepath.Join(examplesDir, "oauth2-authorization-code", "integration.yaml")
	tokens := t.TempDir()
	args := []string{"--token-dir", tokens, "--set", "login_url=" + o.URL(), "--set", "client_id=" + oauthtest.ClientID,
		"--set", "client_secret=" + oauthtest.ClientSecret, "--set", "login_callback=" + callback, file}
	w := &urlWriter{url: make(chan string, 1)}
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Main(append([]string{"auth", "login"}, args...), strings.NewReader(""), w, &stderr, nil)
	}()
	var authURL string
	select {
	case authURL = <-w.url:
	case code := <-done:
		t.Fatalf("login exited %d before printing a URL\n%s\n%s", code, w.String(), stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("no login URL printed:\n%s", w.String())
	}
	if u, err := url.Parse(authURL); err != nil || u.Query().Get("redirect_uri") != callback {
		t.Fatalf("the login does not use the file's redirect_url %s: %s", callback, authURL)
	}
	resp, err := http.Get(authURL) // approved; redirected to the file's callback
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case code := <-done:
		if code != ExitOK || !strings.Contains(w.String(), "logged in; token stored in "+tokens) {
			t.Fatalf("login exit %d\n%s\n%s", code, w.String(), stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("login did not return after the callback")
	}
	var stdout bytes.Buffer
	if code := Main(append([]string{"auth", "status"}, args...), strings.NewReader(""), &stdout, &stderr, nil); code != ExitOK ||
		!strings.Contains(stdout.String(), "refresh token: yes") {
		t.Fatalf("status: %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
}
