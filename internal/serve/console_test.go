package serve

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConsoleMount: /console/ is served only with Config.Console, behind
// its own tokens, and runs an example against the sandbox.
func TestConsoleMount(t *testing.T) {
	dir := consoleDir(t)
	off := testServer(t, Config{Dir: dir})
	if code, _ := (client{t: t, base: "http://" + off.Addr()}).do(http.MethodGet, "/console/", "", nil); code != http.StatusNotFound {
		t.Fatalf("console without --console: %d", code)
	}

	s := testServer(t, Config{Dir: dir, Console: true, Sandbox: true, Tokens: []string{testAPIToken}, ConsoleTokens: []string{testConsoleToken}})
	anon := client{t: t, base: "http://" + s.Addr()}
	if code, body := anon.do(http.MethodGet, "/console/", "", nil); code != http.StatusUnauthorized || !strings.Contains(string(body), `name="token"`) {
		t.Fatalf("console page without a token: %d %s", code, body)
	}
	c := client{t: t, base: anon.base, token: testConsoleToken}
	code, body := c.do(http.MethodGet, "/console/", "", nil)
	if code != 200 || !strings.Contains(string(body), "blacklist/integration.yaml") {
		t.Fatalf("console page: %d %s", code, body)
	}
	code, body = c.do(http.MethodPost, "/console/api/run", "application/json",
		[]byte(`{"id":"blacklist/integration.yaml","lead":{"email":"spam.king@blocked.example","phone":"5125550199","ip_address":"198.51.100.23"}}`), "X-Plumb-Console", "1")
	if code != 200 || !strings.Contains(string(body), `"outcome":"failure"`) || strings.Contains(string(body), "demo-key") {
		t.Fatalf("console run: %d %s", code, body)
	}
	// the API is unchanged beside it, with its own tokens
	if code, _ := (client{t: t, base: anon.base, token: testAPIToken}).do(http.MethodGet, "/v1/integrations", "", nil); code != 200 {
		t.Fatalf("/v1/integrations: %d", code)
	}
}

func consoleDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"integration.yaml", "settings.yaml", "lead.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "blacklist", f))
		must(t, err)
		must(t, os.MkdirAll(filepath.Join(dir, "blacklist"), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, "blacklist", f), b, 0o644))
	}
	return dir
}

// TestConsoleIsARoleOfItsOwn: a token that may POST leads does not open
// the console (header, login form or a ?access_token= in the URL), a
// console token does not open the API, a console with API tokens but none
// of its own does not start, and without any tokens the console is open on
// loopback as before.
func TestConsoleIsARoleOfItsOwn(t *testing.T) {
	dir := consoleDir(t)
	if _, err := New(Config{Dir: dir, DataDir: t.TempDir(), Console: true, Tokens: []string{testAPIToken}}); err == nil ||
		!strings.Contains(err.Error(), "needs console tokens") {
		t.Fatalf("console with API tokens only: err = %v, want a refusal", err)
	}

	s := testServer(t, Config{Dir: dir, Console: true, Tokens: []string{testAPIToken}, ConsoleTokens: []string{testConsoleToken}})
	base := "http://" + s.Addr()
	api := client{t: t, base: base, token: testAPIToken}
	for _, path := range []string{"/console/", "/console/api/integrations", "/console/api/integration?id=blacklist/integration.yaml"} {
		if code, body := api.do(http.MethodGet, path, "", nil); code != http.StatusUnauthorized {
			t.Errorf("API token on %s: %d %s", path, code, body)
		}
	}
	code, body := api.do(http.MethodPost, "/console/api/run", "application/json",
		[]byte(`{"id":"blacklist/integration.yaml","lead":{"email":"a@x.example"}}`), "X-Plumb-Console", "1")
	if code != http.StatusUnauthorized {
		t.Errorf("API token runs through the console: %d %s", code, body)
	}
	anon := client{t: t, base: base}
	if code, _ := anon.do(http.MethodGet, "/console/?access_token="+testConsoleToken, "", nil); code != http.StatusUnauthorized {
		t.Errorf("console token in the URL opens the console: %d", code)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	login := func(tok string) *http.Response {
		resp, err := noRedirect.PostForm(base+"/console/login", url.Values{"token": {tok}})
		must(t, err)
		resp.Body.Close()
		return resp
	}
	if resp := login(testAPIToken); resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Errorf("login with the API token: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	if resp := login(testConsoleToken); resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) == 0 {
		t.Errorf("login with the console token: %d", resp.StatusCode)
	}
	con := client{t: t, base: base, token: testConsoleToken}
	if code, _ := con.do(http.MethodGet, "/console/api/integrations", "", nil); code != 200 {
		t.Errorf("console token on the console: %d", code)
	}
	for _, path := range []string{"/v1/integrations", "/v1/queue", "/metrics"} {
		if code, _ := con.do(http.MethodGet, path, "", nil); code != http.StatusUnauthorized {
			t.Errorf("console token on %s: %d", path, code)
		}
	}

	// no tokens at all: open on loopback, to a loopback Host only
	open := testServer(t, Config{Dir: dir, Console: true})
	if code, body := (client{t: t, base: "http://" + open.Addr()}).do(http.MethodGet, "/console/", "", nil); code != 200 {
		t.Errorf("console without tokens: %d %s", code, body)
	}
	if code := hostGet(t, "http://"+open.Addr()+"/console/", "rebind.example"); code != http.StatusForbidden {
		t.Errorf("console without tokens to another Host: %d", code)
	}
}
