package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/internal/cluster"
	"github.com/plumbhq/plumb/internal/oauthflow"
	"github.com/plumbhq/plumb/internal/oauthtest"
)

// codeLogin runs a real authorization-code login against o whose token
// is saved in st (the browser is this test, following the redirect).
func codeLogin(t *testing.T, o *oauthtest.Server, cfg auth.Config, st auth.TokenStore, now func() time.Time) *oauth2.Token {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := auth.StartLogin(ctx, cfg, auth.WithTokenStore(st), auth.WithHTTPClient(o.Client()), auth.WithClock(now))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var tok *oauth2.Token
	go func() {
		var err error
		tok, err = l.Wait(ctx)
		done <- err
	}()
	resp, err := http.Get(l.AuthURL())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return tok
}

// testClock is a settable clock for auth.WithClock.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestRevokedGrantSharedByTheCluster: the partner revokes a login three
// instances share through the KV bucket (sealed). 10 leads spread over the
// instances after the access token expired send exactly one refresh, which
// is refused; every lead fails at once with the login refused; the status
// served by any instance says a login is needed; a new login stored through
// another instance is used by all of them at their next request.
func TestRevokedGrantSharedByTheCluster(t *testing.T) {
	t.Parallel()
	cs := instances(t, 3, cluster.Config{Key: bytes.Repeat([]byte{5}, 32)})
	o := oauthtest.New(t, oauthtest.Options{})
	cfg := auth.Config{Type: auth.TypeOAuth2, Grant: auth.GrantAuthorizationCode, AuthURL: o.AuthURL(), TokenURL: o.TokenURL(),
		ClientID: oauthtest.ClientID, ClientSecret: oauthtest.ClientSecret, Scopes: []string{"leads"}}
	clk := &testClock{}
	clk.ns.Store(time.Now().UnixNano())
	first := codeLogin(t, o, cfg, cs[0].Tokens(), clk.Now)
	var auths []auth.Authenticator
	for _, c := range cs {
		a, err := auth.New(cfg, auth.WithTokenStore(c.Tokens()), auth.WithHTTPClient(o.Client()), auth.WithClock(clk.Now),
			auth.WithLoginHint("log in at /v1/oauth/crm/start"))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Apply(context.Background(), mustReq(t, o.APIURL()), nil); err != nil {
			t.Fatal(err)
		}
		auths = append(auths, a)
	}

	o.RevokeGrant(first.RefreshToken)
	clk.Advance(2 * time.Hour)
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Go(func() { errs[i] = auths[i%len(auths)].Apply(context.Background(), mustReq(t, o.APIURL()), nil) })
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, auth.ErrNotLoggedIn) || !strings.Contains(err.Error(), "a new login is needed: log in at /v1/oauth/crm/start") {
			t.Fatalf("lead %d: %v", i, err)
		}
	}
	if n, refused := o.GrantCount("refresh_token"), o.RefusedCount("refresh_token"); n != 1 || refused != 1 {
		t.Fatalf("the cluster sent %d refreshes (%d refused), want exactly 1", n, refused)
	}

	// Any instance's install flow reports it.
	for i, c := range cs {
		if st := flowStatus(t, c.Tokens(), cfg); st.LoggedIn || !st.NeedsLogin || st.RefusedAt == nil || !strings.Contains(st.Reason, "invalid_grant") {
			t.Fatalf("status on instance %d: %+v", i, st)
		}
	}

	second := codeLogin(t, o, cfg, cs[2].Tokens(), clk.Now)
	for i, a := range auths {
		req := mustReq(t, o.APIURL())
		if err := a.Apply(context.Background(), req, nil); err != nil || req.Header.Get("Authorization") != "Bearer "+second.AccessToken {
			t.Fatalf("instance %d after the new login: %v", i, err)
		}
	}
	if n := o.GrantCount("refresh_token"); n != 1 {
		t.Fatalf("refreshes = %d after the new login, want still 1", n)
	}
}

// flowStatus asks an install flow over st for the status of cfg's login.
func flowStatus(t *testing.T, st auth.TokenStore, cfg auth.Config) oauthflow.Status {
	t.Helper()
	f, err := oauthflow.New(oauthflow.Config{
		Lookup:  func(string) ([]auth.Config, bool) { return []auth.Config{cfg}, true },
		Store:   st,
		BaseURL: "http://127.0.0.1:1",
	})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	f.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/oauth/crm/status", nil))
	var s oauthflow.Status
	if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil {
		t.Fatalf("status %d %s: %v", w.Code, w.Body, err)
	}
	return s
}

// TestTokenStoreSwap: Swap writes only over the token it was given, by
// revision, so a login saved by another instance in between wins; a
// refusal round-trips sealed.
func TestTokenStoreSwap(t *testing.T) {
	t.Parallel()
	cs := instances(t, 2, cluster.Config{Key: bytes.Repeat([]byte{6}, 32)})
	a, b := cs[0].Tokens(), cs[1].Tokens()
	one := &oauth2.Token{AccessToken: "one", RefreshToken: "r1"}
	two := &oauth2.Token{AccessToken: "two", RefreshToken: "r2"}
	if ok, err := a.Swap("k", nil, one); !ok || err != nil {
		t.Fatalf("swap into an empty key: %v %v", ok, err)
	}
	if ok, err := b.Swap("k", nil, two); ok || err != nil {
		t.Fatalf("swap over a token that is not there any more: %v %v", ok, err)
	}
	v := a.Version("k")
	if err := b.Save("k", two); err != nil { // a login on instance b
		t.Fatal(err)
	}
	refused := auth.RefusedToken(auth.Refusal{At: time.Now().UTC().Round(time.Second), Reason: "400: invalid_grant"})
	if ok, err := a.Swap("k", one, refused); ok || err != nil {
		t.Fatalf("a refusal of the old login overwrote the new one: %v %v", ok, err)
	}
	if ok, err := a.Swap("k", two, refused); !ok || err != nil {
		t.Fatalf("swap: %v %v", ok, err)
	}
	if a.Version("k") == v {
		t.Fatal("Version did not move after a write through the store")
	}
	got, err := b.Load("k")
	if err != nil || auth.RefusalOf(got) == nil || *auth.RefusalOf(got) != *auth.RefusalOf(refused) || got.AccessToken != "" {
		t.Fatalf("refusal read back: %+v %v", got, err)
	}
}
