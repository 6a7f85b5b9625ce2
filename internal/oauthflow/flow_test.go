package oauthflow_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/oauthflow"
	"github.com/plumbhq/plumb/internal/oauthtest"
)

const crmYAML = `
version: 1
name: crm
settings:
  auth_url: { required: true }
  token_url: { required: true }
  api_url: { required: true }
  client_secret: { required: true, secret: true }
auth:
  type: oauth2
  grant: authorization_code
  auth_url: "{{settings.auth_url}}"
  token_url: "{{settings.token_url}}"
  client_id: plumb-client
  client_secret: "{{settings.client_secret}}"
  scopes: [leads]
steps:
  - name: me
    request: { url: "{{settings.api_url}}" }
`

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a partner (real OAuth2 server + protected API), plumb's flow
// mounted on a test server as serve mounts it, an encrypted store and a
// runner of the crm integration bound to that store.
type env struct {
	t      *testing.T
	o      *oauthtest.Server
	dir    string
	store  *oauthflow.EncryptedFileStore
	plan   *engine.Plan
	runner *engine.Runner
	lookup atomic.Pointer[engine.Runner] // the runner the flow's Lookup reads
	flow   *oauthflow.Flow
	svc    *httptest.Server
	logs   *syncBuffer
	clk    *clock
	bodies []string // everything plumb answered
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, o: oauthtest.New(t, oauthtest.Options{}), logs: &syncBuffer{}, clk: &clock{t: time.Now()}}
	e.dir = filepath.Join(t.TempDir(), "tokens")
	var err error
	if e.store, err = oauthflow.NewEncryptedFileStore(e.dir, testKey(9)); err != nil {
		t.Fatal(err)
	}
	if e.plan, err = engine.Parse("crm.yaml", []byte(crmYAML)); err != nil {
		t.Fatal(err)
	}
	e.runner = e.bind(oauthtest.ClientSecret)
	e.lookup.Store(e.runner)
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mux := http.NewServeMux()
	e.svc = httptest.NewServer(mux)
	t.Cleanup(e.svc.Close)
	e.flow, err = oauthflow.New(oauthflow.Config{
		Lookup: func(name string) ([]auth.Config, bool) {
			switch name {
			case "crm":
				return e.lookup.Load().OAuth2Configs(), true
			case "plain":
				return nil, true
			}
			return nil, false
		},
		Store:      e.store,
		BaseURL:    e.svc.URL,
		Now:        e.clk.Now,
		HTTPClient: e.o.Client(),
		Logger:     logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle(oauthflow.Prefix, e.flow.Handler())
	return e
}

func (e *env) bind(secret string) *engine.Runner {
	e.t.Helper()
	r, err := e.plan.Bind(engine.Config{
		Values: map[string]any{"auth_url": e.o.AuthURL(), "token_url": e.o.TokenURL(), "api_url": e.o.APIURL(), "client_secret": secret},
		Tokens: e.store,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

func (e *env) key() string { return auth.StoreKey(e.runner.OAuth2Configs()[0]) }

func browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// get fetches u; answers from plumb are recorded.
func (e *env) get(c *http.Client, u string) (*http.Response, string) {
	e.t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.HasPrefix(u, e.svc.URL) {
		var hdr strings.Builder
		resp.Header.Write(&hdr)
		e.bodies = append(e.bodies, hdr.String()+string(b))
	}
	return resp, string(b)
}

// authorize plays the browser up to the partner's redirect back to plumb
// and returns the callback URL (not yet visited) and the start answer.
func (e *env) authorize(c *http.Client) (string, *http.Response) {
	e.t.Helper()
	start, body := e.get(c, e.svc.URL+"/v1/oauth/crm/start")
	if start.StatusCode != http.StatusFound {
		e.t.Fatalf("start: %d %s", start.StatusCode, body)
	}
	resp, body := e.get(c, start.Header.Get("Location")) // the partner auto-approves
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("authorize: %d %s", resp.StatusCode, body)
	}
	cb := resp.Header.Get("Location")
	if !strings.HasPrefix(cb, e.svc.URL+"/v1/oauth/crm/callback?") {
		e.t.Fatalf("partner redirected to %q", cb)
	}
	return cb, start
}

// variants are the forms a secret could take in a file, page or log.
func variants(s string) []string {
	b := []byte(s)
	return []string{s, base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b), hex.EncodeToString(b), url.QueryEscape(s)}
}

func assertNoSecrets(t *testing.T, where, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, v := range variants(s) {
			if strings.Contains(text, v) {
				t.Errorf("%s contains a secret (%.6s…)", where, v)
			}
		}
	}
}

func (e *env) assertClean(secrets ...string) {
	e.t.Helper()
	secrets = append(secrets, oauthtest.ClientSecret)
	for i, b := range e.bodies {
		assertNoSecrets(e.t, "plumb answer "+string(rune('0'+i)), b, secrets...)
	}
	assertNoSecrets(e.t, "log", e.logs.String(), secrets...)
	assertNoSecrets(e.t, "log", e.logs.String(), "state=")
}

func (e *env) status() oauthflow.Status {
	e.t.Helper()
	resp, body := e.get(http.DefaultClient, e.svc.URL+"/v1/oauth/crm/status")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		e.t.Fatalf("status: %d %s", resp.StatusCode, body)
	}
	var st oauthflow.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		e.t.Fatal(err)
	}
	return st
}

func (e *env) fileBytes() string {
	e.t.Helper()
	var all strings.Builder
	entries, _ := os.ReadDir(e.dir)
	for _, de := range entries {
		b, err := os.ReadFile(filepath.Join(e.dir, de.Name()))
		if err != nil {
			e.t.Fatal(err)
		}
		all.Write(b)
	}
	return all.String()
}

func (e *env) assertNothingStored() {
	e.t.Helper()
	if tok, err := e.store.Load(e.key()); tok != nil || err != nil {
		e.t.Fatalf("stored: %v %v", tok != nil, err)
	}
	if n := e.o.GrantCount("authorization_code"); n != 0 {
		e.t.Fatalf("%d code exchanges", n)
	}
}

func TestInstallFlow(t *testing.T) {
	e := newEnv(t)
	// A runner bound before the login is not logged in...
	if res := e.runner.Run(context.Background(), map[string]any{}); res.Outcome != engine.Error || !strings.Contains(res.Reason, "not logged in") {
		t.Fatalf("before login: %s %s", res.Outcome, res.Reason)
	}
	if st := e.status(); st.LoggedIn || len(st.Sections) != 1 || st.Sections[0].LoggedIn || st.Sections[0].RedirectURI != e.svc.URL+"/v1/oauth/crm/callback" {
		t.Fatalf("status before: %+v", st)
	}

	b := browser()
	cb, start := e.authorize(b)
	loc, _ := url.Parse(start.Header.Get("Location"))
	q := loc.Query()
	if !strings.HasPrefix(loc.String(), e.o.AuthURL()+"?") || q.Get("response_type") != "code" || q.Get("client_id") != oauthtest.ClientID ||
		q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) < 43 || len(q.Get("state")) < 20 ||
		q.Get("redirect_uri") != e.svc.URL+"/v1/oauth/crm/callback" || q.Get("scope") != "leads" {
		t.Fatalf("authorization URL %s", loc)
	}
	ck := start.Cookies()
	if len(ck) != 1 || !ck[0].HttpOnly || ck[0].Secure || ck[0].SameSite != http.SameSiteLaxMode || ck[0].Path != "/v1/oauth/" ||
		ck[0].MaxAge != int(oauthflow.DefaultStateTTL/time.Second) || ck[0].Value == "" || strings.Contains(ck[0].Value, q.Get("state")) {
		t.Fatalf("cookie %+v", ck)
	}
	code := mustQuery(t, cb).Get("code")

	resp, body := e.get(b, cb)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "crm is connected") || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" ||
		resp.Header.Get("Referrer-Policy") != "no-referrer" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("callback: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if cl := resp.Cookies(); len(cl) != 1 || cl[0].MaxAge >= 0 {
		t.Fatalf("login cookie not cleared: %+v", cl)
	}
	if n := e.o.GrantCount("authorization_code"); n != 1 {
		t.Fatalf("code exchanges = %d", n)
	}

	tok, err := e.store.Load(e.key())
	if err != nil || tok == nil || tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("stored token: %v %v", tok, err)
	}
	raw := e.fileBytes()
	if raw == "" {
		t.Fatal("no token file")
	}
	assertNoSecrets(t, "token file", raw, tok.AccessToken, tok.RefreshToken, oauthtest.ClientSecret, `"access_token"`)
	fi, _ := os.Stat(e.store.Path(e.key()))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v", fi.Mode().Perm())
	}

	st := e.status()
	if !st.LoggedIn || !st.Sections[0].LoggedIn || !st.Sections[0].RefreshToken || st.Sections[0].Expiry == nil || st.Sections[0].Expired ||
		st.Sections[0].Expiry.Sub(e.clk.Now()) < 59*time.Minute {
		t.Fatalf("status after: %+v", st)
	}

	// The runner bound before the login now calls the protected API.
	if res := e.runner.Run(context.Background(), map[string]any{}); res.Outcome != engine.Success {
		t.Fatalf("after login: %s %s", res.Outcome, res.Reason)
	}
	// So does a new one (as after a restart), reading the encrypted file.
	if res := e.bind(oauthtest.ClientSecret).Run(context.Background(), map[string]any{}); res.Outcome != engine.Success {
		t.Fatalf("new runner: %s %s", res.Outcome, res.Reason)
	}
	if !strings.Contains(e.logs.String(), `"msg":"oauth login complete"`) {
		t.Fatalf("log: %s", e.logs)
	}
	e.assertClean(tok.AccessToken, tok.RefreshToken, code)
}

func mustQuery(t *testing.T, u string) url.Values {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Query()
}

func withQuery(t *testing.T, u string, set map[string]string) string {
	t.Helper()
	p, _ := url.Parse(u)
	q := p.Query()
	for k, v := range set {
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
	}
	p.RawQuery = q.Encode()
	return p.String()
}

func TestCallbackStateChecks(t *testing.T) {
	e := newEnv(t)
	b := browser()
	cb, _ := e.authorize(b)

	for name, u := range map[string]string{
		"missing state": withQuery(t, cb, map[string]string{"state": ""}),
		"wrong state":   withQuery(t, cb, map[string]string{"state": "forged-state-value-000000000"}),
	} {
		resp, body := e.get(b, u)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Start the login again") {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
	}
	e.assertNothingStored()

	// The real callback still works (a wrong state consumed nothing)...
	if resp, body := e.get(b, cb); resp.StatusCode != http.StatusOK {
		t.Fatalf("callback: %d %s", resp.StatusCode, body)
	}
	tok, _ := e.store.Load(e.key())
	// ...once: replayed (with the cookie put back), it is refused and
	// stores nothing.
	if err := e.store.Delete(e.key()); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(e.svc.URL)
	b.Jar.SetCookies(u, nil)
	resp, body := e.get(b, cb)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "already finished") {
		t.Fatalf("replay: %d %s", resp.StatusCode, body)
	}
	if got, _ := e.store.Load(e.key()); got != nil {
		t.Fatal("replay stored a token")
	}
	if n := e.o.GrantCount("authorization_code"); n != 1 {
		t.Fatalf("code exchanges = %d", n)
	}
	e.assertClean(tok.AccessToken, tok.RefreshToken, mustQuery(t, cb).Get("code"))
}

func TestCallbackExpiredState(t *testing.T) {
	e := newEnv(t)
	b := browser()
	cb, _ := e.authorize(b)
	e.clk.Add(oauthflow.DefaultStateTTL + time.Second)
	resp, body := e.get(b, cb)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "expired") {
		t.Fatalf("expired: %d %s", resp.StatusCode, body)
	}
	e.assertNothingStored()
}

func TestCallbackNeedsTheBrowsersCookie(t *testing.T) {
	e := newEnv(t)
	victim := browser()
	cb, _ := e.authorize(victim)

	// Another browser (no cookie, or its own login's cookie) is refused.
	other := browser()
	e.get(other, e.svc.URL+"/v1/oauth/crm/start") // gets a cookie of its own
	for name, c := range map[string]*http.Client{"no cookie": {CheckRedirect: victim.CheckRedirect}, "other cookie": other} {
		cb2, _ := e.authorize(victim) // a fresh login each time
		resp, body := e.get(c, cb2)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "did not start this login") {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
	}
	e.assertNothingStored()
	// The first login was replaced by the later ones' cookies: refused too.
	if resp, _ := e.get(victim, cb); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("superseded login: %d", resp.StatusCode)
	}
	e.assertNothingStored()
	if !strings.Contains(e.logs.String(), "login cookie missing or wrong") {
		t.Fatalf("log: %s", e.logs)
	}
	e.assertClean(mustQuery(t, cb).Get("code"))
}

func TestPartnerDenied(t *testing.T) {
	e := newEnv(t)
	b := browser()
	start, _ := e.get(b, e.svc.URL+"/v1/oauth/crm/start")
	state := mustQuery(t, start.Header.Get("Location")).Get("state")
	u := e.svc.URL + "/v1/oauth/crm/callback?" + url.Values{
		"state": {state}, "error": {"access_denied"}, "error_description": {`<script>alert("x")</script>`},
	}.Encode()
	resp, body := e.get(b, u)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "access_denied") ||
		strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;") {
		t.Fatalf("denied: %d %s", resp.StatusCode, body)
	}
	e.assertNothingStored()
}

func TestStartErrors(t *testing.T) {
	e := newEnv(t)
	for path, want := range map[string]int{
		"/v1/oauth/nosuch/start":               http.StatusNotFound,
		"/v1/oauth/plain/start":                http.StatusNotFound,
		"/v1/oauth/crm/start?section=1":        http.StatusBadRequest,
		"/v1/oauth/crm/start?section=x":        http.StatusBadRequest,
		"/v1/oauth/nosuch/status":              http.StatusNotFound,
		"/v1/oauth/crm/other":                  http.StatusNotFound,
		"/v1/oauth/%3Cb%3Exss%3C%2Fb%3E/start": http.StatusNotFound,
	} {
		resp, body := e.get(browser(), e.svc.URL+path)
		if resp.StatusCode != want || strings.Contains(body, "<b>") {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	resp, _ := e.get(browser(), e.svc.URL+"/v1/oauth/crm/start?section=0")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("section=0: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, e.svc.URL+"/v1/oauth/crm/start", nil)
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %v %v", r, err)
	}
}

// start answers without contacting the partner, so these need no server.
func TestStartHTTPSAndFileRedirectIgnored(t *testing.T) {
	cfg := auth.Config{Type: "oauth2", Grant: "authorization_code", AuthURL: "https://partner.example/authorize",
		TokenURL: "https://partner.example/token", ClientID: "app", ClientSecret: oauthtest.ClientSecret}
	override := cfg
	override.RedirectURL = "http://127.0.0.1:8765/callback"
	override.Scopes = []string{"other"} // another store key
	var allowed bool
	f, err := oauthflow.New(oauthflow.Config{
		Lookup:    func(string) ([]auth.Config, bool) { return []auth.Config{cfg, cfg, override}, true },
		Store:     &auth.MemoryStore{},
		BaseURL:   "https://plumb.example.com/base/",
		StateTTL:  time.Minute,
		Authorize: func(*http.Request) error { return map[bool]error{true: nil, false: errNope}[allowed] },
	})
	if err != nil {
		t.Fatal(err)
	}
	h := f.Handler()
	do := func(path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w
	}
	if w := do("/v1/oauth/crm/start"); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "operators only") {
		t.Fatalf("unauthorized start: %d %s", w.Code, w.Body)
	}
	if w := do("/v1/oauth/crm/status"); w.Code != http.StatusForbidden {
		t.Fatalf("unauthorized status: %d", w.Code)
	}
	allowed = true
	w := do("/v1/oauth/crm/start")
	loc := mustQuery(t, w.Header().Get("Location"))
	ck := w.Result().Cookies()
	if w.Code != http.StatusFound || loc.Get("redirect_uri") != "https://plumb.example.com/base/v1/oauth/crm/callback" ||
		len(ck) != 1 || !ck[0].Secure || !ck[0].HttpOnly || ck[0].Path != "/base/v1/oauth/" || ck[0].MaxAge != 60 {
		t.Fatalf("https start: %d %s %+v", w.Code, w.Header().Get("Location"), ck)
	}
	// Duplicate sections collapse: section 1 is the other scope. Its
	// redirect_url is plumb auth login's loopback callback: the service's
	// own callback wins (issue 31).
	w = do("/v1/oauth/crm/start?section=1")
	ck = w.Result().Cookies()
	if loc := mustQuery(t, w.Header().Get("Location")); loc.Get("redirect_uri") != "https://plumb.example.com/base/v1/oauth/crm/callback" || loc.Get("scope") != "other" || ck[0].Path != "/base/v1/oauth/" {
		t.Fatalf("redirect_url in the file: %s %+v", w.Header().Get("Location"), ck)
	}
	if w := do("/v1/oauth/crm/start?section=2"); w.Code != http.StatusBadRequest {
		t.Fatalf("section 2: %d", w.Code)
	}
	if strings.Contains(w.Body.String(), oauthtest.ClientSecret) {
		t.Fatal("secret in a page")
	}
}

type nope struct{}

func (nope) Error() string { return "operators only" }

var errNope error = nope{}

func TestMaxPending(t *testing.T) {
	cfg := auth.Config{Type: "oauth2", Grant: "authorization_code", AuthURL: "https://p.example/a", TokenURL: "https://p.example/t", ClientID: "app"}
	clk := &clock{t: time.Now()}
	f, err := oauthflow.New(oauthflow.Config{
		Lookup: func(string) ([]auth.Config, bool) { return []auth.Config{cfg}, true },
		Store:  &auth.MemoryStore{}, BaseURL: "http://127.0.0.1:1", MaxPending: 2, Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	codes := []int{}
	for range 3 {
		w := httptest.NewRecorder()
		f.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/oauth/x/start", nil))
		codes = append(codes, w.Code)
	}
	if codes[0] != 302 || codes[1] != 302 || codes[2] != http.StatusServiceUnavailable {
		t.Fatalf("codes %v", codes)
	}
	clk.Add(oauthflow.DefaultStateTTL) // the two expire
	w := httptest.NewRecorder()
	f.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/oauth/x/start", nil))
	if w.Code != http.StatusFound {
		t.Fatalf("after expiry: %d", w.Code)
	}
}

func TestNewValidates(t *testing.T) {
	lookup := func(string) ([]auth.Config, bool) { return nil, false }
	for _, c := range []oauthflow.Config{
		{Store: &auth.MemoryStore{}, BaseURL: "https://x"},
		{Lookup: lookup, BaseURL: "https://x"},
		{Lookup: lookup, Store: &auth.MemoryStore{}},
		{Lookup: lookup, Store: &auth.MemoryStore{}, BaseURL: "plumb.example.com"},
		{Lookup: lookup, Store: &auth.MemoryStore{}, BaseURL: "https://x/?a=b"},
	} {
		if _, err := oauthflow.New(c); err == nil {
			t.Errorf("accepted %+v", c)
		}
	}
}

// The runner refreshes an expired token with the refresh token and writes
// the new one back, encrypted, as it does for plumb auth login tokens.
func TestRefreshWritesBackEncrypted(t *testing.T) {
	e := newEnv(t)
	b := browser()
	cb, _ := e.authorize(b)
	if resp, body := e.get(b, cb); resp.StatusCode != http.StatusOK {
		t.Fatalf("callback: %d %s", resp.StatusCode, body)
	}
	old, err := e.store.Load(e.key())
	if err != nil || old == nil {
		t.Fatal(err)
	}
	expired := *old
	expired.Expiry = time.Now().Add(-time.Minute)
	if err := e.store.Save(e.key(), &expired); err != nil {
		t.Fatal(err)
	}
	if res := e.bind(oauthtest.ClientSecret).Run(context.Background(), map[string]any{}); res.Outcome != engine.Success {
		t.Fatalf("run: %s %s", res.Outcome, res.Reason)
	}
	if n := e.o.GrantCount("refresh_token"); n != 1 {
		t.Fatalf("refreshes = %d", n)
	}
	nt, err := e.store.Load(e.key())
	if err != nil || nt == nil || nt.AccessToken == old.AccessToken || nt.RefreshToken == old.RefreshToken || !nt.Expiry.After(time.Now()) {
		t.Fatalf("refreshed token not stored: %v (same access %v)", err, nt != nil && nt.AccessToken == old.AccessToken)
	}
	assertNoSecrets(t, "token file", e.fileBytes(), nt.AccessToken, nt.RefreshToken, old.AccessToken, old.RefreshToken, oauthtest.ClientSecret)
	if st := e.status(); !st.LoggedIn || st.Sections[0].Expired {
		t.Fatalf("status: %+v", st)
	}
	// A wrong key is reported by status, not a reset.
	wrong, _ := oauthflow.NewEncryptedFileStore(e.dir, testKey(8))
	if _, err := wrong.Load(e.key()); err == nil {
		t.Fatal("wrong key loaded")
	}
	e.assertClean(old.AccessToken, old.RefreshToken, nt.AccessToken, nt.RefreshToken, mustQuery(t, cb).Get("code"))
}

// A token endpoint that refuses the exchange (here: the integration was
// reloaded with a wrong client secret between start and callback) is a
// 502 page naming the endpoint's error, without the secret, and nothing is
// stored.
func TestExchangeRefused(t *testing.T) {
	e := newEnv(t)
	b := browser()
	cb, _ := e.authorize(b)
	const wrong = "wrong-Secret-Value-99"
	e.lookup.Store(e.bind(wrong))
	resp, body := e.get(b, cb)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, e.o.TokenURL()) || !strings.Contains(body, "Nothing was stored") {
		t.Fatalf("exchange refused: %d %s", resp.StatusCode, body)
	}
	if tok, err := e.store.Load(e.key()); tok != nil || err != nil {
		t.Fatalf("stored: %v %v", tok, err)
	}
	if !strings.Contains(e.logs.String(), "code exchange failed") {
		t.Fatalf("log: %s", e.logs)
	}
	e.assertClean(wrong, mustQuery(t, cb).Get("code"))
}
