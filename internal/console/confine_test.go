package console_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/internal/console"
)

// The secrets the service holds in these tests: in a settings file, in env
// variables (one the saved file reads, one it does not) and in the token
// store.
const (
	storedKey     = "STORED-api-key-5a1e9c"
	storedPin     = "STORED-pin-77c0de"
	otherEnv      = "OTHER-env-secret-4b2f"
	storedAccess  = "STORED-access-token-91aa"
	storedRefresh = "STORED-refresh-token-3c7d"
	typedKey      = "TYPED-key-from-the-page"
)

var storedSecrets = []string{storedKey, storedPin, otherEnv, storedAccess, storedRefresh}

// partnerYAML is the saved integration: every URL on the partner, its key
// from the settings file, its pin from env.
const partnerYAML = `version: 1
name: partner
settings:
  base_url: { required: true }
  api_key:  { required: true, secret: true }
  pin:      { secret: true, env: PARTNER_PIN }
  ca:       { default: "" }
steps:
  - name: call
    max_attempts: 1
    request:
      method: POST
      url: "{{settings.base_url}}/leads?pin={{settings.pin}}"
      headers: { X-API-Key: "{{settings.api_key}}" }
      body: { json: { email: "{{lead.email}}" } }
`

// oauthYAML logs in with the authorization_code grant: its tokens are in
// the service's token store.
const oauthYAML = `version: 1
name: oauthp
settings:
  base_url: { required: true }
auth:
  type: oauth2
  grant: authorization_code
  token_url: "{{settings.base_url}}/token"
  auth_url: "{{settings.base_url}}/authorize"
  client_id: cid
steps:
  - name: call
    max_attempts: 1
    request: { url: "{{settings.base_url}}/api" }
`

// listener is a real HTTP server standing for a host, keeping every
// request it gets, whole.
type listener struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []string
}

func newListener(t testing.TB, h http.HandlerFunc) *listener {
	l := &listener{}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dump, _ := httputil.DumpRequest(r, true)
		l.mu.Lock()
		l.seen = append(l.seen, string(dump))
		l.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(l.srv.Close)
	return l
}

func (l *listener) requests() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.seen...)
}

// forms are the ways a secret may travel: raw, in either case, hex and
// base64 (at each alignment, so one encoded inside a longer value shows).
func forms(s string) []string {
	out := []string{s, strings.ToLower(s), strings.ToUpper(s), hex.EncodeToString([]byte(s)), strings.ToUpper(hex.EncodeToString([]byte(s)))}
	for off := range 3 {
		b := append(bytes.Repeat([]byte{'x'}, off), s...)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			e := strings.TrimRight(enc.EncodeToString(b), "=")
			out = append(out, e[4:len(e)-4]) // the part only s decides
		}
	}
	return out
}

// holdsSecret names the first form of a secret text holds.
func holdsSecret(text string, secrets ...string) string {
	for _, s := range secrets {
		for _, f := range forms(s) {
			if strings.Contains(text, f) {
				return s + " (as " + f + ")"
			}
		}
	}
	return ""
}

type secEnv struct {
	*env
	partner, other *listener
	outside        string
	logs           *bytes.Buffer
	logMu          *sync.Mutex
}

// newSecEnv serves the console over a directory holding the partner and
// oauth integrations, with the service's secrets in their settings file,
// env and token store; outside is a directory next to it.
func newSecEnv(t testing.TB) *secEnv {
	t.Helper()
	s := &secEnv{outside: t.TempDir(), logs: &bytes.Buffer{}, logMu: &sync.Mutex{}}
	s.partner = newListener(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" { // a partner sending the request on
			http.Redirect(w, r, r.URL.Query().Get("to")+"?"+r.URL.RawQuery, http.StatusTemporaryRedirect)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	})
	s.other = newListener(t, nil)
	tokens := auth.NewFileStore(t.TempDir())
	key := auth.StoreKey(auth.Config{Type: auth.TypeOAuth2, Grant: "authorization_code", TokenURL: s.partner.srv.URL + "/token", ClientID: "cid"})
	if err := tokens.Save(key, &oauth2.Token{AccessToken: storedAccess, RefreshToken: storedRefresh, TokenType: "Bearer"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PARTNER_PIN": storedPin, "OTHER_SECRET": otherEnv}
	s.env = newEnv(t, nil, func(c *console.Config) {
		c.SandboxURL = ""
		c.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		c.Tokens = tokens
		c.Logger = slog.New(slog.NewTextHandler(lockedWriter{s.logMu, s.logs}, nil))
	})
	s.write("partner/integration.yaml", partnerYAML)
	s.write("partner/settings.yaml", "base_url: "+s.partner.srv.URL+"\napi_key: "+storedKey+"\n")
	s.write("oauth/integration.yaml", oauthYAML)
	s.write("oauth/settings.yaml", "base_url: "+s.partner.srv.URL+"\n")
	return s
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (s *secEnv) write(name, text string) string {
	s.t.Helper()
	p := filepath.Join(s.dir, name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		s.t.Fatal(err)
	}
	return p
}

func (s *secEnv) post(path string, v any) string {
	s.t.Helper()
	b, _ := json.Marshal(v)
	code, body := s.do(http.MethodPost, path, string(b))
	if code != http.StatusOK && code != http.StatusBadRequest {
		s.t.Fatalf("POST %s: %d %s", path, code, body)
	}
	return body
}

// canary is in files outside --dir, and in files in it that are never
// fragments.
const canary = "CANARY-outside-6d2e"

// plantOutside writes the canary in files outside --dir (a fragment, a
// password file, a CA file) and in files of --dir that are no fragments (a
// token file, a hidden fragment, a YAML file of other keys), and links
// partner/link.yaml and partner/outdir out of --dir and partner/alias.yaml
// to its settings file. It returns the path from partner/ to outside.
func (s *secEnv) plantOutside(t testing.TB) string {
	t.Helper()
	for name, text := range map[string]string{"frag.yaml": "vars:\n  leak: \"" + canary + "\"\n",
		"passwd": "root:x:0:0:" + canary + ":/root:/bin/bash\n", "ca.pem": canary} {
		if err := os.WriteFile(filepath.Join(s.outside, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s.write("tokens.txt", canary+"\n")
	s.write(".hidden.yaml", "vars: { leak: \""+canary+"\" }\n")
	s.write("notes.yaml", canary+": "+canary+"\n")
	rel, _ := filepath.Rel(filepath.Join(s.dir, "partner"), s.outside)
	if err := os.Symlink(filepath.Join(rel, "frag.yaml"), filepath.Join(s.dir, "partner", "link.yaml")); err != nil {
		t.Skip("no symlinks:", err)
	}
	os.Symlink(rel, filepath.Join(s.dir, "partner", "outdir"))
	os.Symlink("settings.yaml", filepath.Join(s.dir, "partner", "alias.yaml"))
	return rel
}

// TestConsoleReadsOnlyDir: a draft validated, run or saved from the page
// includes nothing outside --dir (absolute path, .., a symlink out), no
// settings, token, hidden or non-YAML file in it, and reads TLS files only
// under it; no answer quotes a file that is not an integration file.
func TestConsoleReadsOnlyDir(t *testing.T) {
	s := newSecEnv(t)
	rel := s.plantOutside(t)
	frag, passwd := filepath.Join(s.outside, "frag.yaml"), filepath.Join(s.outside, "passwd")
	secrets := append([]string{canary}, storedSecrets...)
	orig, _ := os.ReadFile(filepath.Join(s.dir, "partner", "integration.yaml"))

	drafts := map[string]string{}
	for inc, want := range map[string]string{
		frag:          "an absolute path",
		passwd:        "an absolute path",
		"/etc/passwd": "an absolute path",
		"../../" + filepath.Base(s.outside) + "/frag.yaml": "leads out of the directory",
		"../../../../../../../../etc/passwd":               "leads out of the directory",
		"link.yaml":                                        "leads out of the directory",
		"outdir/frag.yaml":                                 "leads out of the directory",
		"settings.yaml":                                    "a settings file",
		"alias.yaml":                                       "does not read as a fragment",
		"../notes.yaml":                                    "does not read as a fragment",
		"../tokens.txt":                                    "not a .yaml",
		"../.hidden.yaml":                                  "a hidden file",
		"../missing.yaml":                                  "cannot read missing.yaml",
	} {
		drafts[inc] = want
	}
	var answers []string
	for inc, want := range drafts {
		draft := strings.Replace(partnerYAML, "steps:\n", "include: [\""+inc+"\"]\nsteps:\n", 1)
		req := map[string]any{"id": "partner/integration.yaml", "yaml": draft, "lead": map[string]any{}}
		v := s.post("/console/api/validate", req)
		if !strings.Contains(v, want) || strings.Contains(v, `"ok":true`) {
			t.Errorf("validate include %s: want %q in %s", inc, want, v)
		}
		r := s.post("/console/api/run", req)
		if !strings.Contains(r, want) || strings.Contains(r, `"result"`) {
			t.Errorf("run include %s: want %q in %s", inc, want, r)
		}
		sv := s.post("/console/api/save-yaml", req)
		if strings.Contains(sv, `"saved":true`) {
			t.Errorf("saved a file including %s", inc)
		}
		answers = append(answers, v, r, sv)
	}
	// TLS files: named in a draft or by an override, only under --dir
	tls := strings.Replace(partnerYAML, "steps:\n", "http: { tls: { ca_file: \"{{settings.ca}}\" } }\nsteps:\n", 1)
	for _, ca := range []string{filepath.Join(s.outside, "ca.pem"), "../" + rel + "/ca.pem"} {
		r := s.post("/console/api/run", map[string]any{"id": "partner/integration.yaml", "yaml": tls, "lead": map[string]any{}, "settings": map[string]string{"ca": ca}})
		if !strings.Contains(r, "not under the directory") && !strings.Contains(r, "path escapes") {
			t.Errorf("tls ca_file %s: %s", ca, r)
		}
		answers = append(answers, r)
	}
	for _, a := range answers {
		if leak := holdsSecret(a, secrets...); leak != "" {
			t.Errorf("an answer quotes %s:\n%s", leak, a)
		}
	}
	if now, _ := os.ReadFile(filepath.Join(s.dir, "partner", "integration.yaml")); string(now) != string(orig) || s.changed != 0 {
		t.Fatal("a refused draft was saved")
	}
	if got := s.other.requests(); len(got) != 0 {
		t.Fatalf("a refused draft sent %d requests", len(got))
	}
}

// TestStoredSecretsStayOnSavedOrigins: overrides and drafts that would
// move a stored secret (settings file, env, token store) to another origin
// run without them, and a run holding them cannot reach another origin
// even through a redirect; the other host's listener gets no secret in any
// request, in any encoding. Runs of the saved file still use them.
func TestStoredSecretsStayOnSavedOrigins(t *testing.T) {
	s := newSecEnv(t)
	other := s.other.srv.URL
	otherHostPort := strings.TrimPrefix(other, "http://")
	partnerHostPort := strings.TrimPrefix(s.partner.srv.URL, "http://")
	addStep := func(src, step string) string { return src + step }
	type run struct {
		id       string
		yaml     string
		settings map[string]string
		lead     map[string]any
		stored   bool // whether the run may hold the stored secrets
		// refused: the draft does not load (its error says this), so
		// nothing is sent at all
		refused string
	}
	runs := map[string]run{
		"override base_url":                 {id: "partner/integration.yaml", settings: map[string]string{"base_url": other}},
		"override base_url, typed key":      {id: "partner/integration.yaml", settings: map[string]string{"base_url": other, "api_key": typedKey, "pin": "typed-pin-1"}},
		"override base_url, typed key only": {id: "partner/integration.yaml", settings: map[string]string{"base_url": other, "api_key": typedKey}},
		"override base_url, typed pin only": {id: "partner/integration.yaml", settings: map[string]string{"base_url": other, "pin": "typed-pin-2"}},
		"draft step to another host": {id: "partner/integration.yaml", yaml: addStep(partnerYAML, `  - name: leak
    max_attempts: 1
    request:
      url: "`+other+`/x?k={{settings.api_key | b64enc}}&p={{settings.pin}}"
      headers: { X-Leak: "{{settings.api_key}}" }
`)},
		"draft allow_hosts": {id: "partner/integration.yaml", lead: map[string]any{"host": "127.0.0.1"}, yaml: strings.Replace(partnerYAML, `"{{settings.base_url}}/leads?pin={{settings.pin}}"`,
			`"http://{{lead.host}}:`+strings.Split(otherHostPort, ":")[1]+`/leads?pin={{settings.pin}}&k={{settings.api_key}}"`, 1) + "http: { allow_hosts: [\"127.0.0.1\"] }\n"},
		"draft branch on lead data": {id: "partner/integration.yaml", lead: map[string]any{"x": true}, yaml: strings.Replace(partnerYAML, `"{{settings.base_url}}/leads?pin={{settings.pin}}"`,
			`"http://{{if lead.x}}`+otherHostPort+`{{else}}`+partnerHostPort+`{{end}}/leads?pin={{settings.pin}}&k={{settings.api_key}}"`, 1),
			refused: "cannot choose the URL's scheme, host or port"},
		"draft redirect through the partner": {id: "partner/integration.yaml", stored: true, yaml: strings.Replace(strings.Replace(partnerYAML,
			`"{{settings.base_url}}/leads?pin={{settings.pin}}"`, `"{{settings.base_url}}/redirect?to=`+other+`/x&pin={{settings.pin}}&k={{settings.api_key}}"`, 1),
			"    max_attempts: 1\n", "    max_attempts: 1\n    follow_redirects: any\n", 1)},
		"draft reads another env variable": {id: "partner/integration.yaml", stored: true, yaml: strings.Replace(strings.Replace(partnerYAML,
			"  ca:", "  other: { env: OTHER_SECRET }\n  ca:", 1), `X-API-Key: "{{settings.api_key}}"`, `X-API-Key: "{{settings.api_key}}", X-Other: "x{{settings.other}}"`, 1)},
		"draft calls the key public": {id: "partner/integration.yaml", stored: true, yaml: strings.Replace(partnerYAML,
			"api_key:  { required: true, secret: true }", "api_key:  { required: true }", 1)},
		"oauth draft step to another host":      {id: "oauth/integration.yaml", yaml: strings.Replace(oauthYAML, `"{{settings.base_url}}/api"`, `"`+other+`/api"`, 1)},
		"oauth draft token_url to another host": {id: "oauth/integration.yaml", yaml: strings.Replace(oauthYAML, `"{{settings.base_url}}/token"`, `"`+other+`/token"`, 1)},
		"oauth override base_url":               {id: "oauth/integration.yaml", settings: map[string]string{"base_url": other}},
	}
	var answers []string
	for name, r := range runs {
		if r.lead == nil {
			r.lead = map[string]any{}
		}
		r.lead["email"] = "a@b.example"
		req := map[string]any{"id": r.id, "yaml": r.yaml, "settings": r.settings, "lead": r.lead}
		body := s.post("/console/api/run", req)
		answers = append(answers, body)
		var out struct {
			StoredSecrets bool     `json:"stored_secrets"`
			NewOrigins    []string `json:"new_origins"`
			Note          string   `json:"note"`
			Errors        []any    `json:"errors"`
		}
		json.Unmarshal([]byte(body), &out)
		if out.StoredSecrets != r.stored {
			t.Errorf("%s: stored_secrets %v: %s", name, out.StoredSecrets, body)
		}
		if r.refused != "" {
			if !strings.Contains(body, r.refused) || len(out.Errors) == 0 {
				t.Errorf("%s: the draft should not load (%s): %s", name, r.refused, body)
			}
			continue
		}
		if !r.stored && (len(out.NewOrigins) == 0 || !strings.Contains(out.Note, "without the service's stored secrets")) {
			t.Errorf("%s: the answer should say which new origins made it run without the stored secrets: %s", name, body)
		}
	}
	for _, req := range s.other.requests() {
		if leak := holdsSecret(req, storedSecrets...); leak != "" {
			t.Errorf("the other host got %s:\n%s", leak, req)
		}
	}
	// the override with a typed key did run: the other host got the key
	// typed for that run, and nothing of the service's
	if got := strings.Join(s.other.requests(), "\n"); !strings.Contains(got, typedKey) {
		t.Errorf("the run with a typed key did not reach the other host: %q", got)
	}
	// the redirect was refused by the guard, not followed
	for _, a := range answers {
		if leak := holdsSecret(a, storedSecrets...); leak != "" {
			t.Errorf("an answer shows %s:\n%s", leak, a)
		}
	}
	if !strings.Contains(strings.Join(answers, "\n"), "the console refused to send to") {
		t.Error("the redirect to another origin should be refused by the console's transport")
	}
	// the partner never saw the env variable the saved file does not read
	for _, req := range s.partner.requests() {
		if leak := holdsSecret(req, otherEnv); leak != "" {
			t.Errorf("the partner got %s:\n%s", leak, req)
		}
	}

	// runs of the saved files hold the stored secrets, on the partner
	for _, id := range []string{"partner/integration.yaml", "oauth/integration.yaml"} {
		body := s.post("/console/api/run", map[string]any{"id": id, "lead": map[string]any{"email": "a@b.example"}})
		if !strings.Contains(body, `"stored_secrets":true`) || !strings.Contains(body, `"outcome":"success"`) {
			t.Fatalf("saved %s: %s", id, body)
		}
	}
	all := strings.Join(s.partner.requests(), "\n")
	for _, want := range []string{storedKey, storedPin, storedAccess} {
		if !strings.Contains(all, want) {
			t.Errorf("the partner should get the stored %q from a run of the saved file", want)
		}
	}
}

// TestSaveNewOriginsNeedsConfirmation: saving a file that sends stored
// secrets to an origin the saved file does not name is refused until the
// request confirms those origins, and is then logged; a file without
// stored secrets saves as before.
func TestSaveNewOriginsNeedsConfirmation(t *testing.T) {
	// the new origin written as such, or written as text after lead data
	// that writes nothing (a userinfo of the saved base, then the host)
	for name, to := range map[string]func(other string) string{
		"literal": func(other string) string { return other },
		"text after nodata": func(other string) string {
			return "{{settings.base_url}}{{ lead.email | trunc 0 }}@" + strings.TrimPrefix(other, "http://")
		},
	} {
		t.Run(name, func(t *testing.T) { testSaveNewOrigins(t, to) })
	}
}

func testSaveNewOrigins(t *testing.T, to func(other string) string) {
	s := newSecEnv(t)
	file := filepath.Join(s.dir, "partner", "integration.yaml")
	moved := strings.Replace(partnerYAML, `"{{settings.base_url}}/leads`, `"`+to(s.other.srv.URL)+`/leads`, 1)
	want := s.other.srv.URL // http://127.0.0.1:PORT names its port already
	type resp struct {
		OK         bool     `json:"ok"`
		Saved      bool     `json:"saved"`
		NewOrigins []string `json:"new_origins"`
		Confirm    string   `json:"confirm"`
	}
	v := decode[resp](t, s.post("/console/api/validate", map[string]any{"id": "partner/integration.yaml", "yaml": moved}))
	if !v.OK || len(v.NewOrigins) != 1 || v.NewOrigins[0] != want {
		t.Fatalf("validate should list the new origin %s: %+v", want, v)
	}
	for _, confirm := range [][]string{nil, {"http://127.0.0.1:1"}, {}} {
		out := decode[resp](t, s.post("/console/api/save-yaml", map[string]any{"id": "partner/integration.yaml", "yaml": moved, "confirm_origins": confirm}))
		if out.Saved || len(out.NewOrigins) != 1 || out.Confirm == "" {
			t.Fatalf("save with confirm_origins %q: %+v", confirm, out)
		}
	}
	if now, _ := os.ReadFile(file); string(now) != partnerYAML || s.changed != 0 {
		t.Fatal("an unconfirmed save wrote the file")
	}
	out := decode[resp](t, s.post("/console/api/save-yaml", map[string]any{"id": "partner/integration.yaml", "yaml": moved, "confirm_origins": []string{want}}))
	if now, _ := os.ReadFile(file); !out.Saved || string(now) != moved || s.changed != 1 {
		t.Fatalf("a confirmed save: %+v", out)
	}
	s.logMu.Lock()
	logs := s.logs.String()
	s.logMu.Unlock()
	if !strings.Contains(logs, "new_origins") || !strings.Contains(logs, want) || !strings.Contains(logs, file) || holdsSecret(logs, storedSecrets...) != "" {
		t.Fatalf("the confirmed save should be logged with its file and origins: %s", logs)
	}
	// a file whose origins stay needs no confirmation
	same := strings.Replace(moved, "max_attempts: 1", "max_attempts: 2", 1)
	if out := decode[resp](t, s.post("/console/api/save-yaml", map[string]any{"id": "partner/integration.yaml", "yaml": same})); !out.Saved {
		t.Fatalf("a save within the saved origins: %+v", out)
	}
	// nor does a file for which the service holds no secret
	plain := "version: 1\nname: plain\nsteps:\n  - name: s\n    request: { url: \"https://a.example/x\" }\n"
	s.write("plain/integration.yaml", plain)
	if out := decode[resp](t, s.post("/console/api/save-yaml", map[string]any{"id": "plain/integration.yaml", "yaml": strings.Replace(plain, "a.example", "b.example", 1)})); !out.Saved {
		t.Fatalf("a save without stored secrets: %+v", out)
	}
}

// appendYAML appends a lead field: what a run's result holds of the lead.
const appendYAML = `version: 1
name: appender
settings:
  base_url: { required: true }
  api_key:  { required: true, secret: true }
steps:
  - name: call
    max_attempts: 1
    request:
      method: POST
      url: "{{settings.base_url}}/leads"
      headers: { X-API-Key: "{{settings.api_key}}" }
    append:
      echoed: "{{lead.note}}"
`

// TestAnswersMaskedAsDocuments: a run without the stored secrets (its
// base_url overridden) gets a lead that holds most of the stored key after
// a newline and as a field name, and appends it. The console masks its
// answers, the result it keeps for a test case and the sample lead value
// by value: each stays JSON and keeps the rest of each value. Masking the
// answer's JSON text, where the newline is `\n` and the key's run starts
// at its n, cut the escape in two (`\****`) and the page got no answer.
func TestAnswersMaskedAsDocuments(t *testing.T) {
	const key = "nB7kQ2-stored-value-88"
	tail := key[1:]
	s := newSecEnv(t)
	s.write("appender/integration.yaml", appendYAML)
	s.write("appender/settings.yaml", "base_url: "+s.partner.srv.URL+"\napi_key: "+key+"\n")
	s.write("appender/lead.json", `{"note": "line1\n`+tail+`"}`)
	lead := map[string]any{"note": "line1\n" + tail, tail: "named", "n": json.Number("12345678901234567890")}
	b, _ := json.Marshal(map[string]any{"id": "appender/integration.yaml", "lead": lead,
		"settings": map[string]string{"base_url": s.other.srv.URL, "api_key": typedKey}})
	code, body := s.do(http.MethodPost, "/console/api/run", string(b))
	if code != http.StatusOK {
		t.Fatalf("run: %d %s", code, body)
	}
	var out struct {
		RunID         string `json:"run_id"`
		StoredSecrets bool   `json:"stored_secrets"`
		Result        struct {
			Outcome string                     `json:"outcome"`
			Lead    map[string]json.RawMessage `json:"lead"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("the answer is not JSON: %v\n%s", err, body)
	}
	if out.StoredSecrets || out.Result.Outcome != "success" {
		t.Fatalf("the run should succeed without the stored secrets: %s", body)
	}
	for field, want := range map[string]string{"note": `"line1\n****"`, "echoed": `"line1\n****"`, "****": `"named"`, "n": "12345678901234567890"} {
		if got := string(out.Result.Lead[field]); got != want {
			t.Errorf("lead %s = %s, want %s (answer %s)", field, got, want, body)
		}
	}
	_, info := s.do(http.MethodGet, "/console/api/integration?id=appender/integration.yaml", "")
	var view struct{ Lead string }
	json.Unmarshal([]byte(info), &view)
	if !strings.Contains(view.Lead, `"line1\n****"`) {
		t.Errorf("the sample lead should be shown masked value by value: %q", view.Lead)
	}
	saved := s.post("/console/api/save-case", map[string]any{"run_id": out.RunID, "name": "masked"})
	if !strings.Contains(saved, `"passed":true`) {
		t.Errorf("save: %s", saved)
	}
	// the expectations hold no secret (what the run appended is left out
	// of them); the lead is the one typed
	file, _ := os.ReadFile(filepath.Join(s.dir, "appender", "integration.test.yaml"))
	if expect := string(file)[strings.Index(string(file), "expect:"):]; strings.Contains(expect, "echoed") || holdsSecret(expect, key, tail) != "" {
		t.Errorf("the saved expectations show the secret:\n%s", file)
	}
	for _, a := range []string{body, info, saved} {
		if leak := holdsSecret(a, key, tail); leak != "" {
			t.Errorf("an answer shows %s:\n%s", leak, a)
		}
	}
}
