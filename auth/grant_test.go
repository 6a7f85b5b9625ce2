package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/internal/oauthtest"
)

// plainStore hides every optional interface of the store it wraps: a
// store an embedder wrote, with neither versions nor swaps.
type plainStore struct{ st auth.TokenStore }

func (p plainStore) Load(k string) (*oauth2.Token, error) { return p.st.Load(k) }
func (p plainStore) Save(k string, t *oauth2.Token) error { return p.st.Save(k, t) }
func (p plainStore) Delete(k string) error                { return p.st.Delete(k) }

// tokenStores are the kinds of store the refusal must work with.
func tokenStores(t *testing.T) map[string]auth.TokenStore {
	return map[string]auth.TokenStore{
		"file":   auth.NewFileStore(t.TempDir()),
		"memory": &auth.MemoryStore{},
		"plain":  plainStore{auth.NewFileStore(t.TempDir())},
	}
}

// applyErr signs a request with a and returns the error.
func applyErr(a auth.Authenticator, target string) error {
	req, _ := http.NewRequest(http.MethodGet, target, nil)
	return a.Apply(context.Background(), req, nil)
}

// TestRevokedGrantRefusedOnce reproduces issue 26.4: the partner revokes
// the grant; the first refresh is refused (invalid_grant) and every later
// request — concurrent or not, of this authenticator or of a new one over
// the same store (a reloaded runner) — fails at once with a "new login
// needed" error, without sending the dead refresh token again. A new
// login, saved in the store, is used from the next request on.
func TestRevokedGrantRefusedOnce(t *testing.T) {
	for name, st := range tokenStores(t) {
		t.Run(name, func(t *testing.T) {
			o := oauthtest.New(t, oauthtest.Options{})
			cfg := codeConfig(o)
			clk := newFakeClock(time.Now())
			opts := []auth.Option{auth.WithTokenStore(st), auth.WithHTTPClient(o.Client()), auth.WithClock(clk.Now),
				auth.WithIntegration("crm"), auth.WithLoginHint("log in again at /login")}
			tok := login(t, o, cfg, st, auth.WithClock(clk.Now))
			a, err := auth.New(cfg, opts...)
			if err != nil {
				t.Fatal(err)
			}
			if _, status := send(t, a, o.APIURL()); status != http.StatusOK {
				t.Fatalf("status %d before the revocation", status)
			}

			o.RevokeGrant(tok.RefreshToken)
			clk.Advance(time.Hour) // the access token expires: a refresh is due
			var wg sync.WaitGroup
			errs := make([]error, 10)
			for i := range errs {
				wg.Go(func() { errs[i] = applyErr(a, o.APIURL()) })
			}
			wg.Wait()
			for _, err := range errs {
				checkRefused(t, err)
			}
			for range 10 {
				checkRefused(t, applyErr(a, o.APIURL()))
			}
			if n, r := o.GrantCount("refresh_token"), o.RefusedCount("refresh_token"); n != 1 || r != 1 {
				t.Fatalf("20 requests sent %d refreshes (%d refused), want exactly 1 refused", n, r)
			}
			// The store says so, and holds no dead secret.
			rec, err := st.Load(auth.StoreKey(cfg))
			if err != nil || auth.RefusalOf(rec) == nil || rec.AccessToken != "" || rec.RefreshToken != "" {
				t.Fatalf("stored after the refusal: %+v (refusal %v), %v", rec, auth.RefusalOf(rec), err)
			}
			if r := auth.RefusalOf(rec); !r.At.Equal(clk.Now().UTC()) || !strings.Contains(r.Reason, "invalid_grant") {
				t.Fatalf("refusal %+v", r)
			}
			// A new runner (SIGHUP reload) over the store does not ask again.
			b, err := auth.New(cfg, opts...)
			if err != nil {
				t.Fatal(err)
			}
			checkRefused(t, applyErr(b, o.APIURL()))
			if n := o.GrantCount("refresh_token"); n != 1 {
				t.Fatalf("a new runner refreshed again (%d)", n)
			}

			// A new login: both use it at their next request, no restart.
			fresh := login(t, o, cfg, st, auth.WithClock(clk.Now))
			for i, x := range []auth.Authenticator{a, b} {
				req, status := send(t, x, o.APIURL())
				if status != http.StatusOK || req.Header.Get("Authorization") != "Bearer "+fresh.AccessToken {
					t.Fatalf("authenticator %d after the new login: status %d", i, status)
				}
			}
			if n := o.GrantCount("refresh_token"); n != 1 {
				t.Fatalf("the new login was refreshed at once (%d)", n)
			}
		})
	}
}

func checkRefused(t *testing.T, err error) {
	t.Helper()
	var lr *auth.LoginRefusedError
	if !errors.Is(err, auth.ErrNotLoggedIn) || !errors.As(err, &lr) ||
		!strings.Contains(err.Error(), "refused the login") || !strings.Contains(err.Error(), "a new login is needed: log in again at /login") ||
		!strings.Contains(err.Error(), "invalid_grant") || strings.Contains(err.Error(), oauthtest.ClientSecret) {
		t.Fatalf("err = %v, want the login refused", err)
	}
}

// TestReauthAfterRevokedGrant: a 401 from the API (the grant was revoked
// before the token expired) makes Reauth refresh once; the refusal is then
// shared as after an expiry.
func TestReauthAfterRevokedGrant(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{})
	st := &auth.MemoryStore{}
	cfg := codeConfig(o)
	tok := login(t, o, cfg, st)
	a, err := auth.New(cfg, auth.WithTokenStore(st), auth.WithHTTPClient(o.Client()))
	if err != nil {
		t.Fatal(err)
	}
	o.RevokeGrant(tok.RefreshToken)
	failed, status := send(t, a, o.APIURL())
	if status != http.StatusUnauthorized {
		t.Fatalf("revoked access token: status %d", status)
	}
	for range 3 {
		if err := a.(auth.Reauther).Reauth(context.Background(), failed); !errors.Is(err, auth.ErrNotLoggedIn) {
			t.Fatalf("Reauth = %v", err)
		}
	}
	if err := applyErr(a, o.APIURL()); !errors.Is(err, auth.ErrNotLoggedIn) {
		t.Fatalf("Apply = %v", err)
	}
	if n := o.RefusedCount("refresh_token"); n != 1 || o.GrantCount("refresh_token") != 1 {
		t.Fatalf("%d refreshes refused, want 1", n)
	}
}

// TestNewLoginTakesEffectAtOnce: a login stored while the old token still
// works is used from the next request (the store's version moved), not
// when the old token expires — and a refresh of the old login never
// overwrites it.
func TestNewLoginTakesEffectAtOnce(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{})
	cfg := codeConfig(o)
	for _, st := range []auth.TokenStore{auth.NewFileStore(t.TempDir()), &auth.MemoryStore{}} {
		login(t, o, cfg, st)
		a, err := auth.New(cfg, auth.WithTokenStore(st), auth.WithHTTPClient(o.Client()))
		if err != nil {
			t.Fatal(err)
		}
		send(t, a, o.APIURL())
		second := login(t, o, cfg, st)
		if req, status := send(t, a, o.APIURL()); status != http.StatusOK || req.Header.Get("Authorization") != "Bearer "+second.AccessToken {
			t.Fatalf("%T: the new login is not used (status %d)", st, status)
		}
	}
}

// loginDuringRefresh is a transport that, when the authenticator's refresh
// goes out, stores another login first (the user logged in again through
// the install flow at that moment).
type loginDuringRefresh struct {
	base  http.RoundTripper
	store auth.TokenStore
	key   string
	tok   *oauth2.Token
	once  sync.Once
}

func (l *loginDuringRefresh) RoundTrip(r *http.Request) (*http.Response, error) {
	l.once.Do(func() {
		if err := l.store.Save(l.key, l.tok); err != nil {
			panic(err)
		}
	})
	return l.base.RoundTrip(r)
}

// TestRefreshDoesNotOverwriteALogin: the login stored during a refresh
// wins over the refreshed old token, in the store and in the next
// request; the same for a refusal (it is not recorded over the login).
func TestRefreshDoesNotOverwriteALogin(t *testing.T) {
	for _, revoke := range []bool{false, true} {
		for name, st := range tokenStores(t) {
			o := oauthtest.New(t, oauthtest.Options{})
			cfg := codeConfig(o)
			clk := newFakeClock(time.Now())
			old := login(t, o, cfg, st, auth.WithClock(clk.Now))
			other := &auth.MemoryStore{}
			login(t, o, cfg, other, auth.WithClock(clk.Now)) // another login, stored during the refresh
			if revoke {
				o.RevokeGrant(old.RefreshToken)
			}
			clk.Advance(time.Hour)
			fresh, _ := other.Load(auth.StoreKey(cfg))
			fresh.Expiry = clk.Now().Add(time.Hour) // still valid on the moved clock
			tr := &loginDuringRefresh{base: o.Client().Transport, store: st, key: auth.StoreKey(cfg), tok: fresh}
			a, err := auth.New(cfg, auth.WithTokenStore(st), auth.WithHTTPClient(&http.Client{Transport: tr}), auth.WithClock(clk.Now))
			if err != nil {
				t.Fatal(err)
			}
			err = applyErr(a, o.APIURL())
			if revoke != (err != nil) {
				t.Fatalf("%s revoke=%v: first request: %v", name, revoke, err)
			}
			stored, _ := st.Load(auth.StoreKey(cfg))
			if stored == nil || stored.AccessToken != fresh.AccessToken || auth.RefusalOf(stored) != nil {
				t.Fatalf("%s revoke=%v: the login stored during the refresh was overwritten", name, revoke)
			}
			req, _ := http.NewRequest(http.MethodGet, o.APIURL(), nil)
			if err := a.Apply(context.Background(), req, nil); err != nil || req.Header.Get("Authorization") != "Bearer "+fresh.AccessToken {
				t.Fatalf("%s revoke=%v: next request: %v, signed with the new login %v", name, revoke, err, req.Header.Get("Authorization") == "Bearer "+fresh.AccessToken)
			}
		}
	}
}

// TestNoTokenStoreReason reproduces issue 26.6's wording: without a store
// the error says what the caller chose (a service names its setting), not
// a Go option; client_credentials works as without a store.
func TestNoTokenStoreReason(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{})
	const reason = "set EXAMPLE_KEY to keep logins"
	none := auth.WithTokenStore(auth.NoTokenStore(reason))
	_, err := auth.New(codeConfig(o), none)
	if !errors.Is(err, auth.ErrNoTokenStore) || !strings.HasSuffix(err.Error(), ": "+reason) || strings.Contains(err.Error(), "WithTokenStore") {
		t.Fatalf("New: %v", err)
	}
	if _, err := auth.StartLogin(context.Background(), codeConfig(o), none); !errors.Is(err, auth.ErrNoTokenStore) || !strings.Contains(err.Error(), reason) {
		t.Fatalf("StartLogin: %v", err)
	}
	if _, err := auth.New(codeConfig(o)); !errors.Is(err, auth.ErrNoTokenStore) || strings.Contains(err.Error(), "WithTokenStore") {
		t.Fatalf("New without a store: %v", err)
	}
	a, err := auth.New(ccConfig(o), none, auth.WithHTTPClient(o.Client()))
	if err != nil {
		t.Fatal(err)
	}
	if _, status := send(t, a, o.APIURL()); status != http.StatusOK {
		t.Fatalf("client_credentials with NoTokenStore: %d", status)
	}
}

// TestTokenRecord: the stored form keeps a refusal and reads plain
// oauth2 JSON; a partner's answer carrying the field is no refusal.
func TestTokenRecord(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	b, err := auth.MarshalToken(auth.RefusedToken(auth.Refusal{At: at, Reason: "400: invalid_grant"}))
	if err != nil {
		t.Fatal(err)
	}
	back, err := auth.UnmarshalToken(b)
	if r := auth.RefusalOf(back); err != nil || r == nil || !r.At.Equal(at) || r.Reason != "400: invalid_grant" {
		t.Fatalf("refusal round trip: %s → %+v %v", b, r, err)
	}
	plain, _ := json.Marshal(&oauth2.Token{AccessToken: "a", RefreshToken: "r"})
	tok, err := auth.UnmarshalToken(plain)
	if err != nil || tok.AccessToken != "a" || tok.RefreshToken != "r" || auth.RefusalOf(tok) != nil {
		t.Fatalf("plain token: %+v %v", tok, err)
	}
	partner := (&oauth2.Token{AccessToken: "a"}).WithExtra(map[string]any{"plumb_refused": map[string]any{"reason": "x"}})
	if auth.RefusalOf(partner) != nil {
		t.Fatal("a partner's token answer was taken for a refusal")
	}
	if _, err := auth.UnmarshalToken([]byte(`{"access_token": "s3cret`)); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad JSON: %v", err)
	}
}

// failingRefusals is a store that cannot record a refusal (its disk is
// full, say): the refusal is still shared in memory and the dead refresh
// token never sent again, and the first error says it was not recorded.
type failingRefusals struct{ plainStore }

func (f failingRefusals) Save(k string, t *oauth2.Token) error {
	if auth.RefusalOf(t) != nil {
		return errors.New("disk full")
	}
	return f.plainStore.Save(k, t)
}

func TestRefusalNotStored(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{})
	cfg := codeConfig(o)
	clk := newFakeClock(time.Now())
	st := failingRefusals{plainStore{&auth.MemoryStore{}}}
	tok := login(t, o, cfg, st, auth.WithClock(clk.Now))
	a, err := auth.New(cfg, auth.WithTokenStore(st), auth.WithHTTPClient(o.Client()), auth.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	o.RevokeGrant(tok.RefreshToken)
	clk.Advance(time.Hour)
	if err := applyErr(a, o.APIURL()); !errors.Is(err, auth.ErrNotLoggedIn) || !strings.Contains(err.Error(), "recording the refusal in the token store failed: disk full") {
		t.Fatalf("first: %v", err)
	}
	for range 5 {
		if err := applyErr(a, o.APIURL()); !errors.Is(err, auth.ErrNotLoggedIn) {
			t.Fatalf("later: %v", err)
		}
	}
	if n := o.GrantCount("refresh_token"); n != 1 {
		t.Fatalf("%d refreshes with the dead token, want 1", n)
	}
	fresh := login(t, o, cfg, st, auth.WithClock(clk.Now))
	if req, status := send(t, a, o.APIURL()); status != http.StatusOK || req.Header.Get("Authorization") != "Bearer "+fresh.AccessToken {
		t.Fatalf("after a new login: %d", status)
	}
}

// TestLogoutTakesEffect: a login deleted from the store (plumb auth
// logout) is not used any more, even while its access token is valid.
func TestLogoutTakesEffect(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{})
	cfg := codeConfig(o)
	st := &auth.MemoryStore{}
	login(t, o, cfg, st)
	a, err := auth.New(cfg, auth.WithTokenStore(st), auth.WithHTTPClient(o.Client()))
	if err != nil {
		t.Fatal(err)
	}
	send(t, a, o.APIURL())
	if err := st.Delete(auth.StoreKey(cfg)); err != nil {
		t.Fatal(err)
	}
	if err := applyErr(a, o.APIURL()); !errors.Is(err, auth.ErrNotLoggedIn) {
		t.Fatalf("after logout: %v", err)
	}
}
