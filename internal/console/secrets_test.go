package console_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plumbhq/plumb/internal/console"
)

// echoYAML is an integration whose partner echoes every credential it is
// sent: in its body, in a header, and in what the step captures, appends
// and gives as its reason.
const echoYAML = `version: 1
name: echo
settings:
  token:    { required: true, secret: true }
  pin:      { required: true, secret: true, env: ECHO_PIN }
  base_url: { default: "http://unused.invalid" }
steps:
  - name: echo
    request:
      method: POST
      url: "{{settings.base_url}}/echo?pin={{settings.pin}}"
      headers: { Authorization: "Bearer {{settings.token}}" }
      body:
        json: { email: "{{lead.email}}", pin: "{{settings.pin}}" }
    capture:
      seen: { json: authorization }
      pin:  { json: body.pin }
    outcome:
      failure_when: captured.seen != ""
      reason: "partner saw {{captured.seen}} and {{captured.pin}}"
    append:
      echoed: "{{captured.seen}}"
`

// withDefault is an integration holding a secret's value in its YAML: the
// page must not get the file's text.
const withDefault = `version: 1
name: inline-secret
settings:
  key: { secret: true, default: "inline-default-secret-42" }
steps:
  - name: call
    request: { method: GET, url: "http://127.0.0.1:1/?k={{settings.key}}" }
`

// TestSecretsNeverReachThePage drives every route of the console with
// secret settings from a settings file, from an env variable, as an
// override typed in the page and as a YAML default, against a partner
// that echoes them back, and searches every HTML and JSON answer for them.
func TestSecretsNeverReachThePage(t *testing.T) {
	const (
		fileSecret     = "tok-FILE-SECRET-31337"
		envSecret      = "pin-ENV-SECRET-98765"
		overrideSecret = "typed-OVERRIDE-SECRET-777"
		defaultSecret  = "inline-default-secret-42"
		demoKey        = "demo-key" // the blacklist's api_key, in its settings.yaml
	)
	secrets := []string{fileSecret, envSecret, overrideSecret, defaultSecret, demoKey}

	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Echo-Auth", r.Header.Get("Authorization"))
		json.NewEncoder(w).Encode(map[string]any{"authorization": r.Header.Get("Authorization"), "query": r.URL.RawQuery, "body": body})
	}))
	defer echo.Close()

	e := newEnv(t, []string{"blacklist"}, func(c *console.Config) {
		c.LookupEnv = func(k string) (string, bool) {
			if k == "ECHO_PIN" {
				return envSecret, true
			}
			return "", false
		}
	})
	for dir, files := range map[string]map[string]string{
		"echo":   {"integration.yaml": echoYAML, "settings.yaml": "token: " + fileSecret + "\nbase_url: " + echo.URL + "\n", "lead.json": `{"email":"a@b.example"}`},
		"inline": {"integration.yaml": withDefault},
	} {
		os.MkdirAll(filepath.Join(e.dir, dir), 0o755)
		for name, text := range files {
			if err := os.WriteFile(filepath.Join(e.dir, dir, name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	var answers []string
	get := func(path string) string {
		t.Helper()
		code, body := e.do(http.MethodGet, path, "")
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		answers = append(answers, "GET "+path+"\n"+body)
		return body
	}
	post := func(path string, v any) string {
		t.Helper()
		b, _ := json.Marshal(v)
		_, body := e.do(http.MethodPost, path, string(b))
		answers = append(answers, "POST "+path+"\n"+body)
		return body
	}

	get("/console/")
	get("/console/static/console.js")
	get("/console/static/console.css")
	get("/console/api/integrations")
	info := get("/console/api/integration?id=echo/integration.yaml")
	if !strings.Contains(info, `"name":"token"`) || !strings.Contains(info, `"set":true`) {
		t.Fatalf("the secret settings should be listed as set: %s", info)
	}
	inline := get("/console/api/integration?id=inline/integration.yaml")
	if !strings.Contains(inline, `"yaml_hidden"`) {
		t.Fatalf("a file holding a secret must not be sent: %s", inline)
	}
	get("/console/api/integration?id=blacklist/integration.yaml")

	// runs: the whole flow, one step, a typed secret override
	run := post("/console/api/run", map[string]any{"id": "echo/integration.yaml", "lead": map[string]any{"email": "a@b.example"}})
	if !strings.Contains(run, `"outcome":"failure"`) || !strings.Contains(run, "****") {
		t.Fatalf("the echo run should fail with a masked reason: %s", run)
	}
	var r struct {
		RunID string `json:"run_id"`
	}
	json.Unmarshal([]byte(run), &r)
	post("/console/api/run", map[string]any{"id": "echo/integration.yaml", "lead": map[string]any{"email": "a@b.example"}, "step": "echo"})
	post("/console/api/run", map[string]any{"id": "echo/integration.yaml", "lead": map[string]any{"email": "a@b.example"}, "settings": map[string]string{"token": overrideSecret}})
	post("/console/api/run", map[string]any{"id": "inline/integration.yaml", "lead": map[string]any{}})
	post("/console/api/run", map[string]any{"id": "blacklist/integration.yaml", "lead": json.RawMessage(blockedLead)})
	post("/console/api/run", map[string]any{"id": "blacklist/integration.yaml", "lead": json.RawMessage(blockedLead), "step": "check"})
	// a draft with an error that quotes a value, and the validation of drafts
	bad := strings.Replace(echoYAML, `failure_when: captured.seen != ""`, `failure_when: captured.seen != "`+fileSecret+`" &&`, 1)
	post("/console/api/validate", map[string]any{"id": "echo/integration.yaml", "yaml": bad})
	post("/console/api/run", map[string]any{"id": "echo/integration.yaml", "yaml": bad, "lead": map[string]any{}})
	post("/console/api/validate", map[string]any{"id": "echo/integration.yaml", "yaml": echoYAML})
	post("/console/api/save-yaml", map[string]any{"id": "echo/integration.yaml", "yaml": bad})
	// a bad override value for a secret is reported without it
	post("/console/api/run", map[string]any{"id": "echo/integration.yaml", "lead": map[string]any{}, "settings": map[string]string{"nope": overrideSecret}})
	// saving the echo run as a test case
	saved := post("/console/api/save-case", map[string]any{"run_id": r.RunID, "name": "echo"})
	if !strings.Contains(saved, `"file":"echo/integration.test.yaml"`) {
		t.Fatalf("save: %s", saved)
	}

	for _, a := range answers {
		for _, s := range secrets {
			if strings.Contains(a, s) {
				t.Errorf("secret %q reached the page in:\n%s", s, a)
			}
		}
	}
	// nor the test case file written
	b, _ := os.ReadFile(filepath.Join(e.dir, "echo", "integration.test.yaml"))
	for _, s := range secrets {
		if strings.Contains(string(b), s) {
			t.Errorf("secret %q written to the test file:\n%s", s, b)
		}
	}
	if len(answers) < 15 {
		t.Fatalf("only %d answers checked", len(answers))
	}
}
