package serve

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const crmYAML = `version: 1
name: crm
settings:
  base_url: { required: true }
auth:
  type: oauth2
  grant: authorization_code
  auth_url: "{{settings.base_url}}/authorize"
  token_url: "{{settings.base_url}}/token"
  client_id: plumb-client
  client_secret: s3cret
  scopes: [leads]
steps:
  - name: me
    request: { url: "{{settings.base_url}}/me" }
`

// The install flow (package oauthflow) is mounted at /v1/oauth/: start
// needs the API token (header or ?access_token=), redirects to the
// partner with PKCE and the service's callback, and the runners share its
// encrypted token store (not logged in yet: the lead says so).
func TestOAuthMounted(t *testing.T) {
	t.Parallel()
	p := newPartner(t)
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "crm.yaml"), []byte(crmYAML), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "crm.settings.yaml"), []byte("base_url: "+p.URL+"\n"), 0o600))
	data := t.TempDir()
	s := testServer(t, Config{Dir: dir, DataDir: data, Tokens: []string{testAPIToken}, TokenKey: bytes.Repeat([]byte{7}, 32),
		PublicURL: "https://plumb.example.com"})
	base := "http://" + s.Addr()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) *http.Response {
		resp, err := noRedirect.Get(base + path)
		must(t, err)
		resp.Body.Close()
		return resp
	}
	if resp := get("/v1/oauth/crm/start"); resp.StatusCode != 403 {
		t.Fatalf("start without a token: %d", resp.StatusCode)
	}
	resp := get("/v1/oauth/crm/start?access_token=" + testAPIToken)
	if resp.StatusCode != 302 {
		t.Fatalf("start: %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	must(t, err)
	q := loc.Query()
	if !strings.HasPrefix(loc.String(), p.URL+"/authorize?") || q.Get("code_challenge_method") != "S256" ||
		q.Get("redirect_uri") != "https://plumb.example.com/v1/oauth/crm/callback" || q.Get("state") == "" {
		t.Fatalf("redirect: %s", loc)
	}
	c := client{t: t, base: base, token: testAPIToken}
	code, b := c.do("POST", "/v1/integrations/crm/run", "application/json", []byte(`{}`))
	if r := decode[result](t, b); code != 502 || r.Class != "auth" || !strings.Contains(r.Reason, "/v1/oauth/crm/start") {
		t.Fatalf("run before login: %d %s", code, b)
	}
}

// TestExampleAuthCodeInstall (issue 31): the authorization_code example's
// file, which sets redirect_url for plumb auth login, runs the install
// flow with the service's own callback, and the service says so once at
// load.
func TestExampleAuthCodeInstall(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile(filepath.Join("..", "..", "examples", "oauth2-authorization-code", "integration.yaml"))
	must(t, err)
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "crm"), 0o700))
	must(t, os.WriteFile(filepath.Join(dir, "crm", "integration.yaml"), src, 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "crm", "settings.yaml"), []byte("login_url: https://login.crm.example/oauth2\nclient_id: app-1\nclient_secret: shh\n"), 0o600))
	logs := &lockedBuffer{}
	s := testServer(t, Config{Dir: dir, Tokens: []string{testAPIToken}, TokenKey: bytes.Repeat([]byte{7}, 32),
		PublicURL: "https://plumb.example.com", Logger: slog.New(slog.NewTextHandler(logs, nil))})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get("http://" + s.Addr() + "/v1/oauth/crm-contacts/start?access_token=" + testAPIToken)
	must(t, err)
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	must(t, err)
	if resp.StatusCode != 302 || !strings.HasPrefix(loc.String(), "https://login.crm.example/oauth2/authorize?") ||
		loc.Query().Get("redirect_uri") != "https://plumb.example.com/v1/oauth/crm-contacts/callback" {
		t.Fatalf("start: %d %s", resp.StatusCode, loc)
	}
	out := logs.String()
	if strings.Count(out, "redirect_url is plumb auth login's callback") != 1 || !strings.Contains(out, "redirect_url=http://127.0.0.1:8765/callback") ||
		!strings.Contains(out, "callback=https://plumb.example.com/v1/oauth/crm-contacts/callback") || !strings.Contains(out, "level=WARN") {
		t.Fatalf("load warning:\n%s", out)
	}
}
