package oauthtest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/plumbhq/plumb/internal/oauthtest"
)

// token asks s for a client_credentials token; basic puts the client
// credentials in a Basic Authorization header, otherwise in the form.
// It returns the access token, its lifetime in seconds and the status.
func token(t *testing.T, s *oauthtest.Server, secret string, basic bool) (string, int, int) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if !basic {
		form.Set("client_id", oauthtest.ClientID)
		form.Set("client_secret", secret)
	}
	req, _ := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(oauthtest.ClientID, secret)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		Access    string `json:"access_token"`
		ExpiresIn int    `json:"expires_in"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	if resp.StatusCode == http.StatusOK && tok.Access == "" {
		t.Fatal("200 without an access token")
	}
	return tok.Access, tok.ExpiresIn, resp.StatusCode
}

// api calls the protected API with the bearer token access ("" for none).
func api(t *testing.T, s *oauthtest.Server, access string) (map[string]string, *http.Response) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.APIURL(), nil)
	if access != "" {
		req.Header.Set("Authorization", "Bearer "+access)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return body, resp
}

func TestClientCredentialsAPIRevoke(t *testing.T) {
	s := oauthtest.New(t, oauthtest.Options{})
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || s.TokenURL() != s.URL()+"/token" ||
		s.AuthURL() != s.URL()+"/authorize" || s.APIURL() != s.URL()+"/api" {
		t.Fatalf("URLs %s %s %s %s", s.URL(), s.TokenURL(), s.AuthURL(), s.APIURL())
	}
	if body, resp := api(t, s, ""); resp.StatusCode != http.StatusUnauthorized || body["error"] != "invalid token" {
		t.Errorf("API without a token: %d %v", resp.StatusCode, body)
	}
	if _, _, status := token(t, s, "wrong", true); status != http.StatusUnauthorized {
		t.Errorf("wrong secret: %d", status)
	}
	access, _, status := token(t, s, oauthtest.ClientSecret, true)
	if status != http.StatusOK {
		t.Fatalf("token: %d", status)
	}
	body, resp := api(t, s, access)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || body["client"] != oauthtest.ClientID {
		t.Errorf("API with the token: %d %s %v", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if n := s.TokenRequests(); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
	if n := s.GrantCount("client_credentials"); n != 2 {
		t.Errorf("%d client_credentials grants, want 2", n)
	}
	if n := s.GrantCount("refresh_token"); n != 0 {
		t.Errorf("%d refresh_token grants, want 0", n)
	}
	s.Revoke(access)
	if _, resp := api(t, s, access); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("API with a revoked token: %d", resp.StatusCode)
	}
}

func TestClientAuthAndAccessExp(t *testing.T) {
	// the default server takes Basic auth only, and access tokens live an hour
	d := oauthtest.New(t, oauthtest.Options{})
	if _, _, status := token(t, d, oauthtest.ClientSecret, false); status == http.StatusOK {
		t.Error("form credentials accepted by the default server")
	}
	if _, exp, status := token(t, d, oauthtest.ClientSecret, true); status != http.StatusOK || exp != 3600 {
		t.Errorf("Basic auth on the default server: %d, expires in %ds, want 3600", status, exp)
	}
	// FormOnly: the form body only; AccessExp sets the lifetime
	s := oauthtest.New(t, oauthtest.Options{FormOnly: true, AccessExp: time.Minute})
	if _, _, status := token(t, s, oauthtest.ClientSecret, true); status == http.StatusOK {
		t.Error("Basic auth accepted by a form-only server")
	}
	if _, exp, status := token(t, s, oauthtest.ClientSecret, false); status != http.StatusOK || exp != 60 {
		t.Errorf("form credentials: %d, expires in %ds, want 60", status, exp)
	}
}

func TestAuthorizationCodeAndRefresh(t *testing.T) {
	s := oauthtest.New(t, oauthtest.Options{AccessExp: time.Minute})
	cfg := oauth2.Config{
		ClientID: oauthtest.ClientID, ClientSecret: oauthtest.ClientSecret,
		Endpoint:    oauth2.Endpoint{AuthURL: s.AuthURL(), TokenURL: s.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader},
		RedirectURL: "http://127.0.0.1:1/callback", // any port on the loopback host
		Scopes:      []string{"leads"},
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	// PKCE is required
	resp, err := noFollow.Get(cfg.AuthCodeURL("st"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, _ := resp.Location(); resp.StatusCode != http.StatusBadRequest && (loc == nil || loc.Query().Get("code") != "") {
		t.Errorf("authorization without PKCE: %d %v", resp.StatusCode, loc)
	}

	verifier := oauth2.GenerateVerifier()
	resp, err = noFollow.Get(cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil || resp.StatusCode != http.StatusFound || loc.Host != "127.0.0.1:1" || loc.Query().Get("state") != "st" || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: %d %v %v", resp.StatusCode, loc, err)
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, s.Client())
	tok, err := cfg.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || time.Until(tok.Expiry) > time.Minute+5*time.Second || time.Until(tok.Expiry) < 50*time.Second {
		t.Errorf("token: refresh %q, expires in %v", tok.RefreshToken, time.Until(tok.Expiry))
	}
	if body, resp := api(t, s, tok.AccessToken); resp.StatusCode != http.StatusOK || body["user"] != oauthtest.User || body["client"] != oauthtest.ClientID {
		t.Errorf("API: %d %v", resp.StatusCode, body)
	}

	// a refresh rotates both tokens and removes the old ones
	old := *tok
	tok.Expiry = time.Now().Add(-time.Minute)
	fresh, err := cfg.TokenSource(ctx, tok).Token()
	if err != nil {
		t.Fatal(err)
	}
	if fresh.AccessToken == old.AccessToken || fresh.RefreshToken == "" || fresh.RefreshToken == old.RefreshToken {
		t.Errorf("refresh did not rotate the tokens")
	}
	if _, resp := api(t, s, old.AccessToken); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("old access token after a refresh: %d", resp.StatusCode)
	}
	if _, resp := api(t, s, fresh.AccessToken); resp.StatusCode != http.StatusOK {
		t.Errorf("new access token: %d", resp.StatusCode)
	}
	if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: old.RefreshToken}).Token(); err == nil {
		t.Error("old refresh token still accepted")
	}
	if a, r := s.GrantCount("authorization_code"), s.GrantCount("refresh_token"); a != 1 || r != 2 {
		t.Errorf("grants: %d authorization_code, %d refresh_token; want 1, 2", a, r)
	}
}
