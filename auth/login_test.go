package auth_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/internal/oauthtest"
)

func codeConfig(o *oauthtest.Server) auth.Config {
	return auth.Config{
		Type:         "oauth2",
		Grant:        "authorization_code",
		AuthURL:      o.AuthURL(),
		TokenURL:     o.TokenURL(),
		ClientID:     oauthtest.ClientID,
		ClientSecret: oauthtest.ClientSecret,
		Scopes:       []string{"leads"},
	}
}

type waitResult struct {
	tok *oauth2.Token
	err error
}

// login runs StartLogin and plays the browser: it follows AuthURL (the
// server auto-approves and redirects to the loopback callback).
func login(t *testing.T, o *oauthtest.Server, cfg auth.Config, st auth.TokenStore, opts ...auth.Option) *oauth2.Token {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	opts = append([]auth.Option{auth.WithTokenStore(st), auth.WithHTTPClient(o.Client())}, opts...)
	l, err := auth.StartLogin(ctx, cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	au, _ := url.Parse(l.AuthURL())
	q := au.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" {
		t.Fatalf("AuthURL lacks PKCE/state: %s", l.AuthURL())
	}
	if q.Get("redirect_uri") != l.RedirectURL() || !strings.HasPrefix(l.RedirectURL(), "http://127.0.0.1:") {
		t.Fatalf("redirect_uri %q vs %q", q.Get("redirect_uri"), l.RedirectURL())
	}
	done := make(chan waitResult, 1)
	go func() {
		tok, err := l.Wait(ctx)
		done <- waitResult{tok, err}
	}()
	resp, err := http.Get(l.AuthURL()) // the "browser"
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "login complete") {
		t.Fatalf("browser got %d %s", resp.StatusCode, body)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("Wait: %v", r.err)
	}
	return r.tok
}

func TestAuthorizationCodeLoginPKCEAndRefresh(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{AccessExp: time.Hour})
	dir := t.TempDir() + "/tokens"
	st := auth.NewFileStore(dir)
	cfg := codeConfig(o)
	clk := newFakeClock(time.Now())

	tok := login(t, o, cfg, st, auth.WithClock(clk.Now))
	if tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("token = %+v", tok)
	}
	if n := o.GrantCount("authorization_code"); n != 1 {
		t.Fatalf("code exchanges = %d", n)
	}

	// The store has it, in a 0600 file in a 0700 directory.
	key := auth.StoreKey(cfg)
	stored, err := st.Load(key)
	if err != nil || stored == nil || stored.AccessToken != tok.AccessToken || stored.RefreshToken != tok.RefreshToken {
		t.Fatalf("stored = %+v, %v", stored, err)
	}
	fi, err := os.Stat(st.Path(key))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v", fi.Mode().Perm())
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Fatalf("store dir mode %v", di.Mode().Perm())
	}

	// An Authenticator from the store uses the token as is.
	a, err := auth.New(cfg, auth.WithTokenStore(st), auth.WithHTTPClient(o.Client()), auth.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	r1, status := send(t, a, o.APIURL())
	if status != http.StatusOK || r1.Header.Get("Authorization") != "Bearer "+tok.AccessToken {
		t.Fatalf("status %d, Authorization %q", status, r1.Header.Get("Authorization"))
	}
	if n := o.GrantCount("refresh_token"); n != 0 {
		t.Fatalf("refreshed a fresh token (%d)", n)
	}

	// After expiry it refreshes; the server rotates the refresh token and
	// the rotation is persisted.
	clk.Advance(time.Hour)
	r2, status := send(t, a, o.APIURL())
	if status != http.StatusOK {
		t.Fatalf("after refresh: status %d", status)
	}
	if n := o.GrantCount("refresh_token"); n != 1 {
		t.Fatalf("refreshes = %d, want 1", n)
	}
	if r2.Header.Get("Authorization") == r1.Header.Get("Authorization") {
		t.Fatal("access token not refreshed")
	}
	stored2, _ := st.Load(key)
	if stored2.RefreshToken == tok.RefreshToken || stored2.RefreshToken == "" {
		t.Fatal("rotated refresh token not persisted")
	}
	if "Bearer "+stored2.AccessToken != r2.Header.Get("Authorization") {
		t.Fatal("new access token not persisted")
	}
	// The old refresh token is dead server-side: only the persisted one works.
	if status := refreshWith(t, o, tok.RefreshToken); status == http.StatusOK {
		t.Fatal("old refresh token still accepted; test server does not rotate")
	}

	// Reauth (after a 401) forces a refresh and persists the next rotation.
	if err := a.(auth.Reauther).Reauth(context.Background(), r2); err != nil {
		t.Fatal(err)
	}
	stored3, _ := st.Load(key)
	if stored3.RefreshToken == stored2.RefreshToken || stored3.AccessToken == stored2.AccessToken {
		t.Fatal("Reauth did not refresh and persist")
	}
	r3, status := send(t, a, o.APIURL())
	if status != http.StatusOK || r3.Header.Get("Authorization") != "Bearer "+stored3.AccessToken {
		t.Fatalf("after Reauth: status %d", status)
	}

	// A new run (new Authenticator) picks up the rotated token from disk.
	b, _ := auth.New(cfg, auth.WithTokenStore(auth.NewFileStore(dir)), auth.WithHTTPClient(o.Client()), auth.WithClock(clk.Now))
	if _, status := send(t, b, o.APIURL()); status != http.StatusOK {
		t.Fatalf("second run: status %d", status)
	}
	// 3 = refresh on expiry + the test's rejected direct attempt + Reauth;
	// the second run made none.
	if n := o.GrantCount("refresh_token"); n != 3 {
		t.Fatalf("refresh requests = %d, want 3", n)
	}
}

// refreshWith posts a refresh_token grant directly and returns the status.
func refreshWith(t *testing.T, o *oauthtest.Server, refresh string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, o.TokenURL(), strings.NewReader(url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {refresh},
	}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(oauthtest.ClientID, oauthtest.ClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestAuthorizationCodeNotLoggedIn(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{})
	cfg := codeConfig(o)
	st := &auth.MemoryStore{}
	a, err := auth.New(cfg, auth.WithTokenStore(st), auth.WithIntegration("crm"), auth.WithHTTPClient(o.Client()))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, o.APIURL(), nil)
	err = a.Apply(context.Background(), req, nil)
	if !errors.Is(err, auth.ErrNotLoggedIn) || !strings.Contains(err.Error(), "not logged in: log in to crm to get a token") {
		t.Fatalf("err = %v", err)
	}
	// a CLI names its own command
	a, err = auth.New(cfg, auth.WithTokenStore(st), auth.WithIntegration("crm"), auth.WithLoginHint("run mytool login crm"), auth.WithHTTPClient(o.Client()))
	if err != nil {
		t.Fatal(err)
	}
	if err = a.Apply(context.Background(), req, nil); !strings.Contains(err.Error(), "not logged in: run mytool login crm") {
		t.Fatalf("err = %v", err)
	}
	// Logging in later (same run) is picked up.
	login(t, o, cfg, st)
	if _, status := send(t, a, o.APIURL()); status != http.StatusOK {
		t.Fatalf("status %d after login", status)
	}

	// Without a store the config is refused up front.
	if _, err := auth.New(cfg); err == nil || !strings.Contains(err.Error(), "token store") {
		t.Fatalf("New without store: %v", err)
	}
}

func TestLoginRejectsWrongStateAndHonoursContext(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{})
	l, err := auth.StartLogin(context.Background(), codeConfig(o), auth.WithTokenStore(&auth.MemoryStore{}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := l.Wait(ctx)
		done <- err
	}()
	// A forged callback with another state is refused; the login goes on.
	resp, err := http.Get(l.RedirectURL() + "?code=forged&state=not-the-state")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("forged callback: %d", resp.StatusCode)
	}
	select {
	case err := <-done:
		t.Fatalf("Wait returned on a forged callback: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v", err)
	}
	// The callback server is gone.
	if resp, err := http.Get(l.RedirectURL()); err == nil {
		resp.Body.Close()
		t.Fatal("callback server still up after Wait")
	}
}

func TestLoginProviderDenied(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{})
	l, err := auth.StartLogin(context.Background(), codeConfig(o), auth.WithTokenStore(&auth.MemoryStore{}))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	state, _ := url.Parse(l.AuthURL())
	done := make(chan error, 1)
	go func() {
		_, err := l.Wait(context.Background())
		done <- err
	}()
	resp, err := http.Get(l.RedirectURL() + "?error=access_denied&state=" + url.QueryEscape(state.Query().Get("state")))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "access_denied") {
		t.Fatalf("browser got %d %s", resp.StatusCode, body)
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "access_denied") {
		t.Fatalf("Wait = %v", err)
	}
}

func TestLoginFixedRedirectURL(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{})
	// Find a free port, then ask the login to use it.
	l0, err := auth.StartLogin(context.Background(), codeConfig(o), auth.WithTokenStore(&auth.MemoryStore{}))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(l0.RedirectURL())
	l0.Close()
	cfg := codeConfig(o)
	cfg.RedirectURL = "http://127.0.0.1:" + u.Port() + "/oauth/cb"
	st := &auth.MemoryStore{}
	tok := login(t, o, cfg, st)
	if tok.AccessToken == "" {
		t.Fatal("no token")
	}

	cfg.RedirectURL = "http://example.com:8080/cb"
	if _, err := auth.StartLogin(context.Background(), cfg, auth.WithTokenStore(st)); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("non-loopback redirect: %v", err)
	}
	cfg.Grant = ""
	if _, err := auth.StartLogin(context.Background(), cfg, auth.WithTokenStore(st)); err == nil {
		t.Fatal("login accepted a client_credentials config")
	}
}
