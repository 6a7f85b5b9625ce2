package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/internal/oauthtest"
)

// fileLogin logs cfg in against o with a real authorization-code login
// and stores the token in st, as plumb auth login does.
func fileLogin(t *testing.T, o *oauthtest.Server, cfg auth.Config, st auth.TokenStore) *oauth2.Token {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := auth.StartLogin(ctx, cfg, auth.WithTokenStore(st), auth.WithHTTPClient(o.Client()))
	if err != nil {
		t.Fatal(err)
	}
	type res struct {
		tok *oauth2.Token
		err error
	}
	done := make(chan res, 1)
	go func() {
		tok, err := l.Wait(ctx)
		done <- res{tok, err}
	}()
	resp, err := http.Get(l.AuthURL())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.tok
}

// TestRunAfterRevokedGrant: the partner revoked the login of plumb auth
// login. A run of 5 leads sends the dead refresh token once; every lead
// fails with the login refused and the command to run; plumb auth status
// says so (exit 1); after a new login the next run succeeds.
func TestRunAfterRevokedGrant(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{})
	dir := t.TempDir()
	file := filepath.Join(dir, "crm.yaml")
	leads := filepath.Join(dir, "leads.ndjson")
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(file, []byte(crmIntegration), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(leads, []byte(strings.Repeat(`{"email": "a@b.example"}`+"\n", 5)), 0o644); err != nil {
		t.Fatal(err)
	}
	env := func(k string) (string, bool) {
		switch k {
		case "PLUMB_TOKEN_DIR":
			return tokens, true
		case "CRM_CLIENT_SECRET":
			return oauthtest.ClientSecret, true
		}
		return "", false
	}
	plumb := func(want int, args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := Main(args, strings.NewReader(""), &stdout, &stderr, env); code != want {
			t.Fatalf("plumb %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, stdout.String(), stderr.String())
		}
		out := stdout.String() + stderr.String()
		if strings.Contains(out, oauthtest.ClientSecret) {
			t.Fatalf("output shows the client secret:\n%s", out)
		}
		return out
	}
	cfg := auth.Config{Type: auth.TypeOAuth2, Grant: auth.GrantAuthorizationCode, AuthURL: o.URL() + "/authorize", TokenURL: o.URL() + "/token",
		ClientID: oauthtest.ClientID, ClientSecret: oauthtest.ClientSecret, Scopes: []string{"leads"}}
	files := auth.NewFileStore(tokens)
	tok := fileLogin(t, o, cfg, files)
	// The partner revokes the login; the stored access token has expired.
	o.RevokeGrant(tok.RefreshToken)
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	if err := files.Save(auth.StoreKey(cfg), &expired); err != nil {
		t.Fatal(err)
	}
	set := "base_url=" + o.URL()
	out := plumb(ExitLeadError, "run", "--concurrency", "5", "--set", set, "--leads", leads, file)
	if n := strings.Count(out, "a new login is needed: run plumb auth login "+file); n != 5 {
		t.Fatalf("%d of 5 leads say a new login is needed:\n%s", n, out)
	}
	if n := o.RefusedCount("refresh_token"); n != 1 || o.GrantCount("refresh_token") != 1 {
		t.Fatalf("5 leads sent %d refused refreshes, want 1", n)
	}
	out = plumb(ExitLeadError, "auth", "status", "--set", set, file)
	if !strings.Contains(out, "login refused by the partner at ") || !strings.Contains(out, "invalid_grant") || !strings.Contains(out, "run plumb auth login "+file) {
		t.Fatalf("status after the refusal:\n%s", out)
	}
	// A second run does not ask the partner again.
	plumb(ExitLeadError, "run", "--set", set, "--leads", leads, file)
	if n := o.GrantCount("refresh_token"); n != 1 {
		t.Fatalf("a second run refreshed again (%d)", n)
	}

	fresh := fileLogin(t, o, cfg, files)
	out = plumb(ExitOK, "run", "--set", set, "--leads", leads, file)
	if !strings.Contains(out, "5 success") {
		t.Fatalf("run after the new login:\n%s", out)
	}
	plumb(ExitOK, "auth", "status", "--set", set, file)
	raw, _ := os.ReadFile(files.Path(auth.StoreKey(cfg)))
	for _, secret := range []string{tok.AccessToken, tok.RefreshToken} {
		if strings.Contains(string(raw), secret) {
			t.Fatal("the token file still holds the refused login's tokens")
		}
	}
	if !strings.Contains(string(raw), fresh.AccessToken) {
		t.Fatal("the token file does not hold the new login")
	}
}
