package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/internal/oauthtest"
)

func TestAuthCodeConfig(t *testing.T) {
	cfg := auth.Config{Type: "oauth2", Grant: "authorization_code", AuthURL: "https://p.example/a", TokenURL: "https://p.example/t",
		ClientID: "app", ClientSecret: oauthtest.ClientSecret, Scopes: []string{"s"}, Params: map[string]string{"audience": "x"}, AuthStyle: "body"}
	conf, params, err := auth.AuthCodeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if conf.ClientID != "app" || conf.Endpoint.AuthStyle != oauth2.AuthStyleInParams || len(params) != 1 || conf.Scopes[0] != "s" {
		t.Fatalf("conf %+v params %d", conf, len(params))
	}
	if u := conf.AuthCodeURL("st", params...); !strings.Contains(u, "audience=x") {
		t.Fatalf("auth URL %s", u)
	}
	for name, c := range map[string]auth.Config{
		"client_credentials": {Type: "oauth2", TokenURL: "https://p.example/t", ClientID: "app", ClientSecret: oauthtest.ClientSecret},
		"no auth_url":        {Type: "oauth2", Grant: "authorization_code", TokenURL: "https://p.example/t", ClientID: "app", ClientSecret: oauthtest.ClientSecret},
		"bad style":          {Type: "oauth2", Grant: "authorization_code", AuthURL: "https://p.example/a", TokenURL: "https://p.example/t", ClientID: "app", AuthStyle: "x", ClientSecret: oauthtest.ClientSecret},
	} {
		if _, _, err := auth.AuthCodeConfig(c); err == nil || strings.Contains(err.Error(), oauthtest.ClientSecret) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestNewTokenErrorAndRebase(t *testing.T) {
	te := auth.NewTokenError(context.Background(), "https://p.example/t", errors.New("boom "+oauthtest.ClientSecret), oauthtest.ClientSecret)
	if strings.Contains(te.Error(), oauthtest.ClientSecret) || !strings.Contains(te.Error(), "https://p.example/t") {
		t.Fatalf("%v", te)
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	nt := auth.RebaseToken(now, &oauth2.Token{AccessToken: "a", ExpiresIn: 60})
	if !nt.Expiry.Equal(now.Add(time.Minute)) {
		t.Fatalf("expiry %v", nt.Expiry)
	}
	if nt := auth.RebaseToken(now, &oauth2.Token{AccessToken: "a"}); !nt.Expiry.IsZero() {
		t.Fatalf("no-expiry token got %v", nt.Expiry)
	}
}
