package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/internal/oauthtest"
	"github.com/plumbhq/plumb/internal/testkit"
	"github.com/plumbhq/plumb/store"
)

// echoForms are the ways a careless partner echoes a credential back.
func echoForms(tok string) map[string]string {
	b := []byte(tok)
	h := hex.EncodeToString(b)
	return map[string]string{
		"raw": tok, "lower": strings.ToLower(tok), "upper": strings.ToUpper(tok),
		"std": base64.StdEncoding.EncodeToString(b), "stdraw": base64.RawStdEncoding.EncodeToString(b),
		"url": base64.URLEncoding.EncodeToString(b), "urlraw": base64.RawURLEncoding.EncodeToString(b),
		"hex": h, "hexupper": strings.ToUpper(h),
		"first": tok[:len(tok)/2], "second": tok[len(tok)/2:],
		"bearer64": base64.StdEncoding.EncodeToString([]byte("Bearer " + tok)),
	}
}

// leaks lists the forms of tok found in out, and whether any 12
// characters of it (in any letter case) show.
func leaks(out, tok string) []string {
	var found []string
	for name, f := range echoForms(tok) {
		if strings.Contains(out, f) {
			found = append(found, name)
		}
	}
	low, lt := strings.ToLower(out), strings.ToLower(tok)
	for i := 0; i+maxRun <= len(lt); i++ {
		if strings.Contains(low, lt[i:i+maxRun]) {
			found = append(found, "piece "+lt[i:i+maxRun])
			break
		}
	}
	return found
}

// echoPartner answers every request with the credential it was sent, in
// each form of echoForms: in headers (X-Echo-<form>), and in the body —
// JSON on /json, text on /text, text with a 400 on /deny. extra, when set,
// names more credentials to echo (by the header that carried them).
type echoPartner struct {
	*httptest.Server
	mu   sync.Mutex
	seen map[string]bool
}

func newEchoPartner(t *testing.T, header string) *echoPartner {
	p := &echoPartner{seen: map[string]bool{}}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.Header.Get(header)
		if scheme, after, ok := strings.Cut(tok, " "); ok && header == "Authorization" {
			tok = after
			if dec, err := base64.StdEncoding.DecodeString(after); err == nil && scheme == "Basic" {
				tok = string(dec) // user:password
			}
		}
		p.mu.Lock()
		p.seen[tok] = true
		p.mu.Unlock()
		forms := echoForms(tok)
		var text []string
		for name, f := range forms {
			w.Header().Set("X-Echo-"+name, f)
			text = append(text, name+"="+f)
		}
		switch r.URL.Path {
		case "/json":
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(forms)
		case "/deny":
			w.WriteHeader(400)
			fmt.Fprintf(w, "refused the credential %s", strings.Join(text, " "))
		default:
			fmt.Fprintf(w, "you sent %s", strings.Join(text, " "))
		}
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *echoPartner) tokens() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for k := range p.seen {
		out = append(out, k)
	}
	return out
}

// echoSteps captures every echoed form from the JSON body, the headers and
// the text body, appends them to the lead, and ends on a 400 whose body
// (echoes again) becomes the reason.
const echoSteps = `
steps:
  - name: json
    request: { url: "{{settings.base_url}}/json" }
    capture:
      raw: { json: raw }
      std: { json: std }
      stdraw: { json: stdraw }
      url: { json: url }
      urlraw: { json: urlraw }
      hex: { json: hex }
      hexupper: { json: hexupper }
      lower: { json: lower }
      first: { json: first }
      second: { json: second }
      h_hex: { header: X-Echo-Hexupper }
      h_std: { header: X-Echo-Std }
    append:
      echo_json: "{{captured}}"
  - name: text
    request: { url: "{{settings.base_url}}/text" }
    response: { format: text }
    capture:
      body: { regex: '(?s)(.*)' }
    append:
      echo_text: "{{captured.body}}"
  - name: deny
    request: { url: "{{settings.base_url}}/deny" }
    response: { format: text }
`

// runEcho runs one lead of src against its partner and returns everything
// the run printed: the result as JSON, the debug log and the observed
// exchanges.
func runEcho(t *testing.T, src string, cfg Config, opts ...Option) (*Result, string) {
	t.Helper()
	var logs bytes.Buffer
	var mu sync.Mutex
	var exs []*Exchange
	opts = append(opts, WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		WithEvents(&printedEvents{w: &logs, fn: func(_ context.Context, ex *Exchange) {
			mu.Lock()
			exs = append(exs, ex)
			mu.Unlock()
		}}))
	p, err := Parse("echo.yaml", []byte(src), opts...)
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Bind(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	res := r.Run(context.Background(), map[string]any{"email": "a@b.example"})
	out, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	ex, err := json.Marshal(exs)
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	return res, "result: " + string(out) + "\nlogs: " + logs.String() + "\nexchanges: " + string(ex)
}

// TestEchoedOAuth2TokenMasked: a token fetched from a real OAuth2 server
// and echoed by the partner in every form (raw, other case, base64 of
// both alphabets padded or not, hex of both cases, halves, inside a
// longer base64 value) in JSON, text, headers and a refusal's reason
// shows nowhere: not in the result, the debug log or the observed
// exchanges.
func TestEchoedOAuth2TokenMasked(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{})
	partner := newEchoPartner(t, "Authorization")
	src := `version: 1
name: echo
settings:
  base_url: {}
  token_url: {}
  client_secret: { secret: true }
auth:
  type: oauth2
  token_url: "{{settings.token_url}}"
  client_id: ` + oauthtest.ClientID + `
  client_secret: "{{settings.client_secret}}"
` + echoSteps
	res, printed := runEcho(t, src, Config{Values: map[string]any{"base_url": partner.URL,
		"token_url": o.TokenURL(), "client_secret": oauthtest.ClientSecret}})
	toks := partner.tokens()
	if len(toks) != 1 || len(toks[0]) < 2*maxRun || res.Outcome != Failure || res.Step != "deny" {
		t.Fatalf("tokens %q, outcome %s at %s: %s", toks, res.Outcome, res.Step, res.Reason)
	}
	if found := leaks(printed, toks[0]); len(found) > 0 {
		t.Errorf("the fetched token shows as %v:\n%s", found, printed)
	}
	if !strings.HasPrefix(res.Reason, "HTTP 400 Bad Request: refused the credential") || !strings.Contains(res.Reason, mask) {
		t.Errorf("reason %q", res.Reason)
	}
}

// TestEchoedStoredTokensMasked: tokens the runner loads from its token
// store (never fetched) and the tokens of a token endpoint's answer
// (access, refresh and ID tokens, echoed in the answer itself too) are
// masked as soon as they are known.
func TestEchoedStoredTokensMasked(t *testing.T) {
	const access, refresh = "loaded-access-Tok3n-0123456789abcdef", "loaded-refresh-Tok3n-0123456789abcdef"
	partner := newEchoPartner(t, "Authorization")
	store := &auth.MemoryStore{}
	src := `version: 1
name: echo
settings: { base_url: {} }
auth:
  type: oauth2
  grant: authorization_code
  token_url: http://127.0.0.1:1/token
  auth_url: http://127.0.0.1:1/authorize
  client_id: c
` + echoSteps
	key := auth.StoreKey(auth.Config{Type: auth.TypeOAuth2, Grant: auth.GrantAuthorizationCode,
		TokenURL: "http://127.0.0.1:1/token", ClientID: "c"})
	must(t, store.Save(key, &oauth2.Token{AccessToken: access, RefreshToken: refresh, TokenType: "Bearer",
		Expiry: time.Now().Add(time.Hour)}))
	res, printed := runEcho(t, src, Config{Values: map[string]any{"base_url": partner.URL}, Tokens: store})
	if toks := partner.tokens(); len(toks) != 1 || toks[0] != access || res.Step != "deny" {
		t.Fatalf("tokens %q, outcome %s at %s: %s", toks, res.Outcome, res.Step, res.Reason)
	}
	if found := leaks(printed, access); len(found) > 0 {
		t.Errorf("the loaded token shows as %v:\n%s", found, printed)
	}

	// a token endpoint that echoes its tokens in a field auth does not read
	var n atomic.Int64
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		a, rt, id := fmt.Sprintf("fetched-access-%d-0123456789abcdef", i), fmt.Sprintf("fetched-refresh-%d-0123456789abcdef", i), fmt.Sprintf("fetched-id-%d-0123456789abcdef", i)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"refresh_token":%q,"id_token":%q,"expires_in":3600,"token_type":"Bearer","note":"issued %s %s %s"}`, a, rt, id, a, rt, id)
	}))
	defer tokenSrv.Close()
	src = `version: 1
name: echo
settings: { base_url: {}, token_url: {} }
auth: { type: oauth2, token_url: "{{settings.token_url}}", client_id: c, client_secret: s3cr3t-client }
` + echoSteps
	var mu sync.Mutex
	var tokenEx []byte
	p, err := Parse("echo.yaml", []byte(src), WithEvents(&printedEvents{w: io.Discard, fn: func(_ context.Context, ex *Exchange) {
		if ex.Step == "auth:token" {
			mu.Lock()
			tokenEx, _ = json.Marshal(ex)
			mu.Unlock()
		}
	}}))
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Bind(Config{Values: map[string]any{"base_url": partner.URL, "token_url": tokenSrv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	res = r.Run(context.Background(), map[string]any{})
	if res.Step != "deny" || n.Load() != 1 {
		t.Fatalf("outcome %s at %s after %d token requests: %s", res.Outcome, res.Step, n.Load(), res.Reason)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, tok := range []string{"fetched-access-1-0123456789abcdef", "fetched-refresh-1-0123456789abcdef", "fetched-id-1-0123456789abcdef"} {
		if found := leaks(string(tokenEx), tok); len(found) > 0 {
			t.Errorf("the token exchange shows %s as %v: %s", tok, found, tokenEx)
		}
		if got := r.Redact("x " + tok + " y"); got != "x "+mask+" y" {
			t.Errorf("Redact(%s) = %q", tok, got)
		}
	}
}

// TestAuthCredentialsMasked: the credentials of every scheme — a basic
// password (and so its Authorization header), a custom scheme's token —
// are masked wherever the partner echoes them, though the file writes them
// as literals rather than secret settings; and every credential an auth
// section holds (keys, passwords, tokens, client and HMAC secrets) is in
// the runner's masker.
func TestAuthCredentialsMasked(t *testing.T) {
	scheme := WithAuthScheme("x-echo", func(c auth.Config) (auth.Authenticator, error) { return headerAuth(c.Token), nil })
	for _, tc := range []struct{ name, auth, header string }{
		{"basic", `{ type: basic, username: ann, password: "b4sic-Passw0rd-xyz" }`, "Authorization"},
		{"custom", `{ type: x-echo, token: "cust0m-Tok3n-0123456789" }`, "X-Custom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			partner := newEchoPartner(t, tc.header)
			src := "version: 1\nname: echo\nsettings: { base_url: {} }\nauth: " + tc.auth + "\n" + echoSteps
			res, printed := runEcho(t, src, Config{Values: map[string]any{"base_url": partner.URL}}, scheme)
			toks := partner.tokens()
			if res.Step != "deny" || len(toks) != 1 {
				t.Fatalf("tokens %q, outcome %s at %s: %s", toks, res.Outcome, res.Step, res.Reason)
			}
			if found := leaks(printed, toks[0]); len(found) > 0 {
				t.Errorf("%s shows as %v:\n%s", toks[0], found, printed)
			}
		})
	}
	for _, tc := range []struct{ auth, secret string }{
		{`{ type: hmac, secret: "hm4c-Key-0123456789" }`, "hm4c-Key-0123456789"},
		{`{ type: api_key, value: "ap1-Key-0123456789" }`, "ap1-Key-0123456789"},
		{`{ type: bearer, token: "be4rer-0123456789" }`, "be4rer-0123456789"},
		{`{ type: rotate, tokens: [r0tate-one-0123, r0tate-two-0123] }`, "r0tate-two-0123"},
		{`{ type: basic, username: ann, password: "b4sic-Passw0rd-xyz" }`, "b4sic-Passw0rd-xyz"},
		{`{ type: oauth2, token_url: "http://127.0.0.1:1/t", client_id: "c", client_secret: "cl1ent-S3cret-0123" }`, "cl1ent-S3cret-0123"},
		{`{ type: x-echo, token: "cust0m-Tok3n-0123456789" }`, "cust0m-Tok3n-0123456789"},
	} {
		p, err := Parse("a.yaml", []byte("version: 1\nname: a\nauth: "+tc.auth+"\nsteps: [ { name: s, request: { url: \"http://127.0.0.1:1/\" } } ]\n"), scheme)
		if err != nil {
			t.Fatal(err)
		}
		r, err := p.Bind(Config{})
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Redact("key " + hex.EncodeToString([]byte(tc.secret))); got != "key "+mask {
			t.Errorf("%s: its secret shows as %q", tc.auth, got)
		}
		r.Close(context.Background())
	}
}

// headerAuth is a custom scheme that sends its token in X-Custom.
type headerAuth string

func (h headerAuth) Apply(_ context.Context, req *http.Request, _ []byte) error {
	req.Header.Set("X-Custom", string(h))
	return nil
}

// TestLiveTokensBounded: a runner that refreshes its token for months
// (rotating refresh tokens, a fake clock moved two hours per lead) masks
// the current tokens and the ones replaced within the grace period, and
// forgets the rest: the masker does not grow.
func TestLiveTokensBounded(t *testing.T) {
	var n atomic.Int64
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"refresh_token":%q,"expires_in":3600,"token_type":"Bearer"}`, tokenN("acc", i), tokenN("ref", i))
	}))
	defer tokenSrv.Close()
	partner := newEchoPartner(t, "Authorization")
	clock := testkit.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	src := `version: 1
name: echo
settings: { base_url: {}, token_url: {} }
auth: { type: oauth2, grant: authorization_code, token_url: "{{settings.token_url}}", auth_url: "{{settings.token_url}}", client_id: c }
steps:
  - name: text
    request: { url: "{{settings.base_url}}/text" }
    response: { format: text }
`
	p, err := Parse("echo.yaml", []byte(src), WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	store := &auth.MemoryStore{}
	key := auth.StoreKey(auth.Config{Type: auth.TypeOAuth2, Grant: auth.GrantAuthorizationCode, TokenURL: tokenSrv.URL, ClientID: "c"})
	must(t, store.Save(key, &oauth2.Token{AccessToken: tokenN("acc", 0), RefreshToken: tokenN("ref", 0),
		TokenType: "Bearer", Expiry: clock.Now().Add(time.Hour)}))
	r, err := p.Bind(Config{Values: map[string]any{"base_url": partner.URL, "token_url": tokenSrv.URL}, Tokens: store})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	const leads = 60
	for i := 1; i <= leads; i++ {
		clock.Advance(2 * time.Hour)
		if res := r.Run(context.Background(), map[string]any{}); res.Outcome != Success {
			t.Fatalf("lead %d: %s %s", i, res.Outcome, res.Reason)
		}
		if got := r.live.size(); got > 4 {
			t.Fatalf("after %d refreshes the runner masks %d tokens, want at most 4 (access and refresh, current and replaced)", i, got)
		}
	}
	if n.Load() != leads {
		t.Fatalf("%d token requests for %d leads", n.Load(), leads)
	}
	cur, old := tokenN("ref", leads), tokenN("ref", 3)
	if r.Redact(cur) != mask || r.Redact(tokenN("acc", leads)) != mask {
		t.Errorf("the current tokens are not masked")
	}
	if r.Redact(old) != old {
		t.Errorf("a refresh token replaced long ago is still masked: the masker keeps what it no longer needs")
	}
}

// TestLiveSecretsRules: the rules that bound what a runner masks, on a
// fake clock: a token is masked until its expiry plus the grace period,
// one of unknown expiry until the grace period after it is replaced, and
// never more than maxLiveSecrets at once.
func TestLiveSecretsRules(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLiveSecrets(func() time.Time { return now })
	m := &masker{live: l}
	shown := func(s string) bool { return m.text(s) == s }
	l.learn(tokenN("access", 1), "k/access", now.Add(time.Hour))
	l.learn(tokenN("refresh", 1), "k/refresh", time.Time{})
	now = now.Add(30 * time.Minute)
	l.learn(tokenN("access", 2), "k/access", now.Add(time.Hour))
	l.learn(tokenN("refresh", 2), "k/refresh", time.Time{})
	now = now.Add(time.Hour + time.Minute) // access-one expired 31m ago, refresh-one replaced 61m ago
	l.learn(tokenN("other", 0), "", time.Time{})
	if shown(tokenN("access", 1)) || shown(tokenN("access", 2)) || shown(tokenN("refresh", 2)) {
		t.Error("a token within its lifetime plus grace is shown")
	}
	if !shown(tokenN("refresh", 1)) {
		t.Error("a refresh token replaced an hour ago is still masked")
	}
	now = now.Add(30 * time.Minute)
	l.learn(tokenN("other", 0), "", time.Time{})
	if !shown(tokenN("access", 1)) {
		t.Error("a token expired more than the grace period ago is still masked")
	}
	if shown(tokenN("refresh", 2)) {
		t.Error("the current refresh token (no expiry) was dropped")
	}
	for i := range 2 * maxLiveSecrets {
		l.learn(tokenN("keyless", int64(i)), "", time.Time{})
	}
	if got := l.size(); got > maxLiveSecrets {
		t.Errorf("%d secrets kept, more than %d", got, maxLiveSecrets)
	}
	if shown(tokenN("refresh", 2)) {
		t.Error("the cap dropped a current token before replaced ones")
	}
}

// tokenN is the nth token of a kind: distinct tokens share no long piece.
func tokenN(kind string, n int64) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s-%d", kind, n))
	return kind + "-" + base64.RawURLEncoding.EncodeToString(sum[:18])
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestCachedAnswersHoldNoToken: a response cache stores the captures of an
// answer that echoed the runner's token with the token masked, so the
// answer store (on disk, or shared through NATS) never holds it.
func TestCachedAnswersHoldNoToken(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{})
	partner := newEchoPartner(t, "Authorization")
	src := `version: 1
name: echo
settings: { base_url: {}, token_url: {}, client_secret: { secret: true } }
auth: { type: oauth2, token_url: "{{settings.token_url}}", client_id: ` + oauthtest.ClientID + `, client_secret: "{{settings.client_secret}}" }
steps:
  - name: json
    request: { url: "{{settings.base_url}}/json" }
    cache: { key: "{{lead.email}}", ttl: 1h }
    capture:
      raw: { json: raw }
      hex: { json: hex }
      first: { json: first }
`
	p, err := Parse("echo.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	answers := store.NewLRU(10)
	r, err := p.Bind(Config{Values: map[string]any{"base_url": partner.URL, "token_url": o.TokenURL(),
		"client_secret": oauthtest.ClientSecret}, Store: answers})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if res := r.Run(context.Background(), map[string]any{"email": "a@b.example"}); res.Outcome != Success {
		t.Fatalf("%s: %s", res.Outcome, res.Reason)
	}
	e, found, err := answers.Get(context.Background(), "echo/json/response/a@b.example")
	if err != nil || !found {
		t.Fatalf("nothing cached: %v", err)
	}
	stored, _ := json.Marshal(e.Values)
	toks := partner.tokens()
	if len(toks) != 1 || !strings.Contains(string(stored), mask) {
		t.Fatalf("tokens %q, stored %s", toks, stored)
	}
	if found := leaks(string(stored), toks[0]); len(found) > 0 {
		t.Errorf("the cached answer holds the token as %v: %s", found, stored)
	}
}

// printedEvents writes every event and exchange the engine reports as a
// JSON line to w (what a log or trace adapter could print), and hands each
// exchange to fn.
type printedEvents struct {
	mu sync.Mutex
	w  io.Writer
	fn func(ctx context.Context, ex *Exchange)
}

func (p *printedEvents) print(kind string, e any) {
	b, _ := json.Marshal(e)
	p.mu.Lock()
	fmt.Fprintf(p.w, "%s %s\n", kind, b)
	p.mu.Unlock()
}

func (p *printedEvents) LeadStart(ctx context.Context, e LeadStart) context.Context {
	p.print("lead", e)
	return ctx
}
func (p *printedEvents) LeadEnd(_ context.Context, e LeadEnd) { p.print("lead_end", e) }
func (p *printedEvents) StepStart(ctx context.Context, e StepStart) context.Context {
	p.print("step", e)
	return ctx
}
func (p *printedEvents) StepEnd(_ context.Context, e StepEnd) { p.print("step_end", e) }
func (p *printedEvents) TryStart(ctx context.Context, e TryStart) context.Context {
	p.print("try", e)
	return ctx
}
func (p *printedEvents) TryEnd(_ context.Context, e TryEnd)               { p.print("try_end", e) }
func (p *printedEvents) Retry(_ context.Context, e Retry)                 { p.print("retry", e) }
func (p *printedEvents) Backoff(_ context.Context, e Backoff)             { p.print("backoff", e) }
func (p *printedEvents) TokenFetch(_ context.Context, e TokenFetch)       { p.print("token", e) }
func (p *printedEvents) LimiterWait(_ context.Context, e LimiterWait)     { p.print("wait", e) }
func (p *printedEvents) BreakerChange(_ context.Context, e BreakerChange) { p.print("breaker", e) }
func (p *printedEvents) Exchange(ctx context.Context, ex *Exchange) {
	p.print("exchange", ex)
	if p.fn != nil {
		p.fn(ctx, ex)
	}
}
