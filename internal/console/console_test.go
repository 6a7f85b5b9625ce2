package console_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plumbhq/plumb/internal/console"
	"github.com/plumbhq/plumb/internal/testcase"
)

const blacklist = "blacklist/integration.yaml"

const blockedLead = `{"email": "spam.king@blocked.example", "phone": "512-555-0199", "ip_address": "198.51.100.23"}`

type runOut struct {
	RunID  string `json:"run_id"`
	Result struct {
		Outcome string `json:"outcome"`
		Reason  string `json:"reason"`
		Steps   []struct {
			Name     string         `json:"name"`
			Captured map[string]any `json:"captured"`
		} `json:"steps"`
	} `json:"result"`
	Tries []struct {
		Step           string `json:"step"`
		Status         int    `json:"status"`
		URL            string `json:"url"`
		ResponseBody   string `json:"response_body"`
		ResponsePretty string `json:"response_pretty"`
		Timing         struct {
			Total float64 `json:"total_ms"`
		} `json:"timing"`
	} `json:"tries"`
	Errors  []struct{ Line int } `json:"errors"`
	Savable bool                 `json:"savable"`
}

func decode[T any](t testing.TB, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	return v
}

func (e *env) run(id, lead, step string, settings map[string]string) runOut {
	e.t.Helper()
	req, _ := json.Marshal(map[string]any{"id": id, "lead": json.RawMessage(lead), "step": step, "settings": settings})
	code, body := e.do(http.MethodPost, "/console/api/run", string(req))
	if code != http.StatusOK {
		e.t.Fatalf("run: %d %s", code, body)
	}
	return decode[runOut](e.t, body)
}

// passAll runs every suite under dir as plumb test does and fails on any
// case that does not pass.
func passAll(t *testing.T, dir string) int {
	t.Helper()
	loaded, err := testcase.Load(dir + "/...")
	if err != nil {
		t.Fatalf("plumb test: %v", err)
	}
	n := 0
	for _, s := range loaded.Suites {
		for _, r := range s.Run(context.Background(), testcase.Options{}) {
			n++
			if !r.Passed {
				t.Errorf("%s: case %q failed: %v", s.File, r.Name, r.Failures)
			}
		}
	}
	return n
}

func TestRunAndSaveCase(t *testing.T) {
	e := newEnv(t, []string{"blacklist", "regex-accept"}, nil)
	code, page := e.do(http.MethodGet, "/console/", "")
	if code != 200 || !strings.Contains(page, `value="blacklist/integration.yaml"`) || !strings.Contains(page, "internal-blacklist") {
		t.Fatalf("page: %d\n%s", code, page)
	}
	code, body := e.do(http.MethodGet, "/console/api/integration?id="+blacklist, "")
	if code != 200 || !strings.Contains(body, `"steps":["check"]`) || !strings.Contains(body, "jane.doe@gmail.example") {
		t.Fatalf("integration: %d %s", code, body)
	}
	out := e.run(blacklist, blockedLead, "", nil)
	if out.Result.Outcome != "failure" || !strings.Contains(out.Result.Reason, "blocked.example") {
		t.Fatalf("run: %+v", out.Result)
	}
	if len(out.Tries) != 1 || out.Tries[0].Status != 200 || out.Tries[0].ResponsePretty == "" || out.Tries[0].Timing.Total <= 0 {
		t.Fatalf("tries: %+v", out.Tries)
	}
	if !out.Savable {
		t.Fatal("a flow run should be savable")
	}
	code, body = e.do(http.MethodPost, "/console/api/save-case", `{"run_id":"`+out.RunID+`","name":"blocked domain from the console"}`)
	saved := decode[struct {
		File     string
		Passed   bool
		Failures []string
		YAML     string
	}](t, body)
	if code != 200 || !saved.Passed || saved.File != "blacklist/integration.test.yaml" {
		t.Fatalf("save: %d %s", code, body)
	}
	if strings.Contains(saved.YAML, "demo-key") || !strings.Contains(saved.YAML, console.SecretPlaceholder) {
		t.Fatalf("saved case holds the secret or no placeholder:\n%s", saved.YAML)
	}
	// a second save of the same run gets a distinct name; both pass
	code, body = e.do(http.MethodPost, "/console/api/save-case", `{"run_id":"`+out.RunID+`","name":"blocked domain from the console"}`)
	if code != 200 || !strings.Contains(body, `blocked domain from the console (2)`) {
		t.Fatalf("second save: %d %s", code, body)
	}
	// a success run of the whole flow, saved without a name
	ok := e.run(blacklist, `{"email":"jane.doe@gmail.example","phone":"(512) 555-0142","ip_address":"203.0.113.7"}`, "", nil)
	if ok.Result.Outcome != "success" {
		t.Fatalf("clean lead: %+v", ok.Result)
	}
	if code, body = e.do(http.MethodPost, "/console/api/save-case", `{"run_id":"`+ok.RunID+`"}`); code != 200 || !strings.Contains(body, `"passed":true`) {
		t.Fatalf("save success: %d %s", code, body)
	}
	// the file keeps its comments and the six cases it had
	b, _ := os.ReadFile(filepath.Join(e.dir, "blacklist", "integration.test.yaml"))
	if !strings.HasPrefix(string(b), "# Stored test cases for integration.yaml") || strings.Count(string(b), "\n  - name:") != 9 {
		t.Fatalf("test file:\n%s", b)
	}
	if n := passAll(t, e.dir); n < 9 {
		t.Fatalf("plumb test ran %d cases", n)
	}
}

func TestRunStepAndSettings(t *testing.T) {
	e := newEnv(t, []string{"blacklist"}, nil)
	out := e.run(blacklist, blockedLead, "check", map[string]string{"api_key": "not-the-right-key"})
	if out.Result.Outcome != "error" || len(out.Tries) != 1 || out.Tries[0].Status != 401 {
		t.Fatalf("wrong key: %+v %+v", out.Result, out.Tries)
	}
	// the blacklist has one step: a step run is savable too
	if !out.Savable {
		t.Fatal("a step run of a one-step flow should be savable")
	}
	code, body := e.do(http.MethodPost, "/console/api/run", `{"id":"`+blacklist+`","lead":{},"step":"nope"}`)
	if code != 400 || !strings.Contains(body, `no step`) {
		t.Fatalf("unknown step: %d %s", code, body)
	}
	code, body = e.do(http.MethodPost, "/console/api/run", `{"id":"../../etc/passwd","lead":{}}`)
	if code != 404 {
		t.Fatalf("unknown integration: %d %s", code, body)
	}
	code, body = e.do(http.MethodPost, "/console/api/run", `{"id":"`+blacklist+`","lead":[1]}`)
	if code != 400 {
		t.Fatalf("lead not an object: %d %s", code, body)
	}
}

func TestYAMLEditing(t *testing.T) {
	e := newEnv(t, []string{"blacklist"}, nil)
	file := filepath.Join(e.dir, "blacklist", "integration.yaml")
	orig, _ := os.ReadFile(file)
	broken := strings.Replace(string(orig), "timeout: 2s", "timeout: soon", 1)
	line := 1 + strings.Count(broken[:strings.Index(broken, "timeout: soon")], "\n")
	req, _ := json.Marshal(map[string]string{"id": blacklist, "yaml": broken})
	code, body := e.do(http.MethodPost, "/console/api/validate", string(req))
	v := decode[struct {
		OK     bool
		Errors []struct {
			Line    int
			Message string
		}
	}](t, body)
	if code != 200 || v.OK || len(v.Errors) == 0 || v.Errors[0].Line != line {
		t.Fatalf("validate: want an error at line %d: %d %s", line, code, body)
	}
	// a run of the broken draft reports the errors and sends nothing
	rreq, _ := json.Marshal(map[string]any{"id": blacklist, "yaml": broken, "lead": json.RawMessage(blockedLead)})
	_, body = e.do(http.MethodPost, "/console/api/run", string(rreq))
	if r := decode[runOut](t, body); len(r.Errors) == 0 || r.Errors[0].Line != line || len(r.Tries) != 0 {
		t.Fatalf("run of a broken draft: %s", body)
	}
	// saving a broken file writes nothing
	code, body = e.do(http.MethodPost, "/console/api/save-yaml", string(req))
	if now, _ := os.ReadFile(file); code != 200 || strings.Contains(body, `"saved":true`) || string(now) != string(orig) || e.changed != 0 {
		t.Fatalf("save broken: %d %s", code, body)
	}
	// a draft that loads runs before it is saved; the file is untouched
	draft := strings.Replace(string(orig), `reason: "{{captured.reason}}"`, `reason: "draft says {{captured.reason}}"`, 1)
	rreq, _ = json.Marshal(map[string]any{"id": blacklist, "yaml": draft, "lead": json.RawMessage(blockedLead)})
	_, body = e.do(http.MethodPost, "/console/api/run", string(rreq))
	r := decode[runOut](t, body)
	if !strings.HasPrefix(r.Result.Reason, "draft says") || r.Savable {
		t.Fatalf("draft run: %s", body)
	}
	if now, _ := os.ReadFile(file); string(now) != string(orig) {
		t.Fatal("a draft run wrote the file")
	}
	// saving it writes the file and tells the service
	req, _ = json.Marshal(map[string]string{"id": blacklist, "yaml": draft})
	code, body = e.do(http.MethodPost, "/console/api/save-yaml", string(req))
	if now, _ := os.ReadFile(file); code != 200 || !strings.Contains(body, `"saved":true`) || string(now) != draft || e.changed != 1 {
		t.Fatalf("save: %d %s", code, body)
	}
}

func TestAccess(t *testing.T) {
	e := newEnv(t, []string{"blacklist"}, nil)
	// DNS rebinding: another host name is refused without tokens
	if code, _ := e.do(http.MethodGet, "/console/", "", "Host", "evil.example:8080"); code != http.StatusForbidden {
		t.Fatalf("foreign Host: %d", code)
	}
	// cross-site forms cannot post: no custom header, or not JSON
	if code, _ := e.do(http.MethodPost, "/console/api/run", `{}`, "X-Plumb-Console", ""); code != http.StatusForbidden {
		t.Fatalf("no X-Plumb-Console: %d", code)
	}
	if code, _ := e.do(http.MethodPost, "/console/api/run", `{}`, "Content-Type", "text/plain"); code != http.StatusForbidden {
		t.Fatalf("text/plain: %d", code)
	}
	code, _ := e.do(http.MethodGet, "/console/", "")
	if code != 200 {
		t.Fatalf("page: %d", code)
	}

	const token = "s3cret-api-token"
	te := newEnv(t, []string{"blacklist"}, func(c *console.Config) {
		c.RequireToken = true
		c.Authorize = func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer "+token }
	})
	code, body := te.do(http.MethodGet, "/console/", "")
	if code != 401 || !strings.Contains(body, `name="token"`) || strings.Contains(body, "blacklist") {
		t.Fatalf("page without a token: %d %s", code, body)
	}
	if code, _ := te.do(http.MethodGet, "/console/api/integrations", ""); code != 401 {
		t.Fatalf("api without a token: %d", code)
	}
	if code, _ := te.do(http.MethodGet, "/console/api/integrations", "", "Authorization", "Bearer "+token); code != 200 {
		t.Fatalf("api with a bearer token: %d", code)
	}
	// the login form: a wrong token is refused, the right one opens a session
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.PostForm(te.srv.URL+"/console/login", map[string][]string{"token": {"wrong"}})
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("wrong token: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	resp, err = client.PostForm(te.srv.URL+"/console/login", map[string][]string{"token": {token}})
	if err != nil || resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("login: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	ck := resp.Cookies()[0]
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || strings.Contains(ck.Value, token) {
		t.Fatalf("cookie: %+v", ck)
	}
	if code, _ := te.do(http.MethodGet, "/console/api/integrations", "", "Cookie", ck.Name+"="+ck.Value); code != 200 {
		t.Fatalf("api with the session: %d", code)
	}
	// with tokens the page may be reached under any host name
	if code, _ := te.do(http.MethodGet, "/console/", "", "Cookie", ck.Name+"="+ck.Value, "Host", "plumb.example.com"); code != 200 {
		t.Fatalf("page with the session: %d", code)
	}
}

func TestPretty(t *testing.T) {
	e := newEnv(t, []string{"soap-validate"}, nil)
	b, _ := os.ReadFile(filepath.Join(e.dir, "soap-validate", "lead.json"))
	out := e.run("soap-validate/integration.yaml", string(b), "", nil)
	if len(out.Tries) == 0 {
		t.Fatalf("no tries: %+v", out)
	}
	p := out.Tries[0].ResponsePretty
	if !strings.Contains(p, "\n  <") || !strings.Contains(p, "soap:") {
		t.Fatalf("XML not indented with its prefixes kept:\n%s\nraw:\n%s", p, out.Tries[0].ResponseBody)
	}
}

// TestSaveMultiStep saves a two-step flow (a token step, then the call
// that reads its capture) and plumb test passes on it.
func TestSaveMultiStep(t *testing.T) {
	examples := []string{"token-then-call", "text-split", "soap-validate", "regex-accept", "partner-submit", "hmac-signing", "oauth2-client-credentials"}
	e := newEnv(t, examples, nil)
	for _, ex := range examples {
		id := ex + "/integration.yaml"
		b, _ := os.ReadFile(filepath.Join(e.dir, filepath.Dir(id), "lead.json"))
		out := e.run(id, string(b), "", nil)
		if !out.Savable {
			t.Fatalf("%s: not savable: %+v", id, out)
		}
		code, body := e.do(http.MethodPost, "/console/api/save-case", `{"run_id":"`+out.RunID+`","name":"from the console"}`)
		if code != 200 || !strings.Contains(body, `"passed":true`) {
			t.Fatalf("%s: save: %d %s", id, code, body)
		}
	}
	// one step of a multi-step flow cannot be saved: a case runs the flow
	out := e.run("token-then-call/integration.yaml", `{}`, "token", nil)
	if out.Savable {
		t.Fatal("a step run of a two-step flow should not be savable")
	}
	passAll(t, e.dir)
}

// TestRunAnswerCaptureNote (issue 31): a capture whose path matches
// nothing is null in the run answer, and the answer says why, with the
// keys the partner's answer had (TestBrowser checks the page shows it).
func TestRunAnswerCaptureNote(t *testing.T) {
	e := newEnv(t, []string{"blacklist"}, nil)
	orig, _ := os.ReadFile(filepath.Join(e.dir, "blacklist", "integration.yaml"))
	draft := strings.Replace(string(orig), "{ json: risk_score, type: number }", "{ json: result.risk_score, type: number }", 1)
	rreq, _ := json.Marshal(map[string]any{"id": blacklist, "yaml": draft, "lead": json.RawMessage(blockedLead)})
	_, body := e.do(http.MethodPost, "/console/api/run", string(rreq))
	r := decode[struct {
		Result struct {
			Steps []struct {
				Captured map[string]any `json:"captured"`
				Notes    []string       `json:"notes"`
			} `json:"steps"`
		} `json:"result"`
	}](t, body)
	if len(r.Result.Steps) != 1 || r.Result.Steps[0].Captured["score"] != nil || len(r.Result.Steps[0].Notes) != 1 ||
		!strings.HasPrefix(r.Result.Steps[0].Notes[0], "`score`: path `result.risk_score` not found in the response (keys: ") ||
		!strings.Contains(r.Result.Steps[0].Notes[0], "risk_score") {
		t.Fatalf("run answer: %s", body)
	}
}

// A lead is read as plumb run and serve read it (engine.DecodeLead): a
// number beyond 2^53 stays digit for digit in the run, in its result and
// in the case saved from it, where every number stays a number.
func TestLeadNumbersExact(t *testing.T) {
	e := newEnv(t, []string{"blacklist"}, nil)
	const lead = `{"email":"jane.doe@gmail.example","phone":"(512) 555-0142","ip_address":"203.0.113.7","account":12345678901234567891,"age":41,"score":0.5}`
	req := `{"id":"` + blacklist + `","lead":` + lead + `}`
	code, body := e.do(http.MethodPost, "/console/api/run", req)
	if code != 200 || !strings.Contains(body, `"account":12345678901234567891`) {
		t.Fatalf("run: %d %s", code, body)
	}
	out := decode[runOut](t, body)
	code, body = e.do(http.MethodPost, "/console/api/save-case", `{"run_id":"`+out.RunID+`","name":"exact numbers"}`)
	saved := decode[struct {
		Passed bool
		YAML   string
	}](t, body)
	if code != 200 || !saved.Passed {
		t.Fatalf("save: %d %s", code, body)
	}
	for _, want := range []string{"account: 12345678901234567891\n", "age: 41\n", "score: 0.5\n"} {
		if !strings.Contains(saved.YAML, want) {
			t.Errorf("saved case lacks %q:\n%s", want, saved.YAML)
		}
	}
	code, body = e.do(http.MethodPost, "/console/api/run", `{"id":"`+blacklist+`","lead":[1]}`)
	if code != 400 || !strings.Contains(body, "a lead must be a JSON object, got an array") {
		t.Fatalf("lead not an object: %d %s", code, body)
	}
	// the sample lead (lead.json beside the file) as the page shows it
	if err := os.WriteFile(filepath.Join(e.dir, "blacklist", "lead.json"), []byte(`{"account":12345678901234567891,"note":"a <b> & c"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, body = e.do(http.MethodGet, "/console/api/integration?id="+blacklist, "")
	sample := decode[struct{ Lead string }](t, body).Lead
	if code != 200 || !strings.Contains(sample, `"account": 12345678901234567891`) || !strings.Contains(sample, `"note": "a <b> & c"`) {
		t.Fatalf("sample lead: %d %q", code, sample)
	}
}
