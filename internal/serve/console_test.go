package serve

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConsoleMount: /console/ is served only with Config.Console, behind
// the API's tokens, and runs an example against the sandbox.
func TestConsoleMount(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"integration.yaml", "settings.yaml", "lead.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "blacklist", f))
		must(t, err)
		must(t, os.MkdirAll(filepath.Join(dir, "blacklist"), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, "blacklist", f), b, 0o644))
	}

	off := testServer(t, Config{Dir: dir})
	if code, _ := (client{t: t, base: "http://" + off.Addr()}).do(http.MethodGet, "/console/", "", nil); code != http.StatusNotFound {
		t.Fatalf("console without --console: %d", code)
	}

	const token = "console-test-token"
	s := testServer(t, Config{Dir: dir, Console: true, Sandbox: true, Tokens: []string{token}})
	anon := client{t: t, base: "http://" + s.Addr()}
	if code, body := anon.do(http.MethodGet, "/console/", "", nil); code != http.StatusUnauthorized || !strings.Contains(string(body), `name="token"`) {
		t.Fatalf("console page without a token: %d %s", code, body)
	}
	c := client{t: t, base: anon.base, token: token}
	code, body := c.do(http.MethodGet, "/console/", "", nil)
	if code != 200 || !strings.Contains(string(body), "blacklist/integration.yaml") {
		t.Fatalf("console page: %d %s", code, body)
	}
	code, body = c.do(http.MethodPost, "/console/api/run", "application/json",
		[]byte(`{"id":"blacklist/integration.yaml","lead":{"email":"spam.king@blocked.example","phone":"5125550199","ip_address":"198.51.100.23"}}`), "X-Plumb-Console", "1")
	if code != 200 || !strings.Contains(string(body), `"outcome":"failure"`) || strings.Contains(string(body), "demo-key") {
		t.Fatalf("console run: %d %s", code, body)
	}
	// the API is unchanged beside it
	if code, _ := c.do(http.MethodGet, "/v1/integrations", "", nil); code != 200 {
		t.Fatalf("/v1/integrations: %d", code)
	}
}
