package auth_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/internal/oauthtest"
)

// fakeClock is a settable clock for WithClock.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// send signs a GET to target with a and returns the signed request and the
// response status.
func send(t *testing.T, a auth.Authenticator, target string) (*http.Request, int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(context.Background(), req, nil); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return req, resp.StatusCode
}

func ccConfig(o *oauthtest.Server) auth.Config {
	return auth.Config{
		Type:         "oauth2",
		TokenURL:     o.TokenURL(),
		ClientID:     oauthtest.ClientID,
		ClientSecret: oauthtest.ClientSecret,
		Scopes:       []string{"leads"},
	}
}

func TestOAuth2ClientCredentials(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{})
	a, err := auth.New(ccConfig(o), auth.WithHTTPClient(o.Client()))
	if err != nil {
		t.Fatal(err)
	}
	// Without a token the API refuses.
	plain, _ := http.Get(o.APIURL())
	plain.Body.Close()
	if plain.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated API call: %d", plain.StatusCode)
	}
	req, status := send(t, a, o.APIURL())
	if status != http.StatusOK {
		t.Fatalf("API status %d", status)
	}
	if h := req.Header.Get("Authorization"); !strings.HasPrefix(h, "Bearer ") {
		t.Fatalf("Authorization = %q", h)
	}
	// The cached token is reused.
	if _, status := send(t, a, o.APIURL()); status != http.StatusOK {
		t.Fatalf("second call status %d", status)
	}
	if n := o.TokenRequests(); n != 1 {
		t.Fatalf("token requests = %d, want 1", n)
	}
}

func TestOAuth2ConcurrentColdCacheFetchesOnce(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{})
	a, err := auth.New(ccConfig(o), auth.WithHTTPClient(o.Client()))
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	var wg sync.WaitGroup
	headers := make([]string, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, o.APIURL(), nil)
			<-start
			errs[i] = a.Apply(context.Background(), req, nil)
			headers[i] = req.Header.Get("Authorization")
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Apply %d: %v", i, errs[i])
		}
		if headers[i] != headers[0] || headers[i] == "" {
			t.Fatalf("request %d got %q, request 0 got %q", i, headers[i], headers[0])
		}
	}
	if got := o.TokenRequests(); got != 1 {
		t.Fatalf("token requests = %d, want exactly 1", got)
	}
	if _, status := send(t, a, o.APIURL()); status != http.StatusOK {
		t.Fatalf("API status %d", status)
	}
}

func TestOAuth2RefreshesBeforeExpiryRealServer(t *testing.T) {
	// The server issues 1 s tokens; the client renews at half the lifetime.
	o := oauthtest.New(t, oauthtest.Options{AccessExp: time.Second})
	a, err := auth.New(ccConfig(o), auth.WithHTTPClient(o.Client()))
	if err != nil {
		t.Fatal(err)
	}
	r1, status := send(t, a, o.APIURL())
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	// Still fresh: reused.
	r2, _ := send(t, a, o.APIURL())
	if r1.Header.Get("Authorization") != r2.Header.Get("Authorization") || o.TokenRequests() != 1 {
		t.Fatalf("token not reused: %d token requests", o.TokenRequests())
	}
	time.Sleep(600 * time.Millisecond)
	r3, status := send(t, a, o.APIURL())
	if status != http.StatusOK {
		t.Fatalf("status after refresh %d", status)
	}
	if r3.Header.Get("Authorization") == r1.Header.Get("Authorization") {
		t.Fatal("token was not renewed near expiry")
	}
	if n := o.TokenRequests(); n != 2 {
		t.Fatalf("token requests = %d, want 2", n)
	}
}

func TestOAuth2ExpiryFollowsInjectedClock(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{AccessExp: time.Hour})
	clk := newFakeClock(time.Now())
	a, err := auth.New(ccConfig(o), auth.WithHTTPClient(o.Client()), auth.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	r1, _ := send(t, a, o.APIURL())
	clk.Advance(time.Hour - 11*time.Second) // not yet in the 10 s margin
	r2, _ := send(t, a, o.APIURL())
	if r1.Header.Get("Authorization") != r2.Header.Get("Authorization") || o.TokenRequests() != 1 {
		t.Fatalf("renewed too early: %d token requests", o.TokenRequests())
	}
	clk.Advance(2 * time.Second) // inside the margin
	r3, status := send(t, a, o.APIURL())
	if status != http.StatusOK || r3.Header.Get("Authorization") == r1.Header.Get("Authorization") {
		t.Fatalf("not renewed in the expiry margin (status %d)", status)
	}
	if n := o.TokenRequests(); n != 2 {
		t.Fatalf("token requests = %d, want 2", n)
	}
}

func TestOAuth2ReauthAfter401FetchesOneNewToken(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{})
	a, err := auth.New(ccConfig(o), auth.WithHTTPClient(o.Client()))
	if err != nil {
		t.Fatal(err)
	}
	failed, status := send(t, a, o.APIURL())
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	// The provider revokes the token: the API now answers 401.
	o.Revoke(strings.TrimPrefix(failed.Header.Get("Authorization"), "Bearer "))
	if _, status := send(t, a, o.APIURL()); status != http.StatusUnauthorized {
		t.Fatalf("revoked token: status %d, want 401", status)
	}
	before := o.TokenRequests()
	re := a.(auth.Reauther)
	// Many leads hit the 401 with the same token at once.
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = re.Reauth(context.Background(), failed)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("Reauth: %v", err)
		}
	}
	if got := o.TokenRequests() - before; got != 1 {
		t.Fatalf("Reauth made %d token requests, want exactly 1", got)
	}
	retry, status := send(t, a, o.APIURL())
	if status != http.StatusOK {
		t.Fatalf("after reauth: status %d", status)
	}
	if retry.Header.Get("Authorization") == failed.Header.Get("Authorization") {
		t.Fatal("same token after Reauth")
	}
	// A late Reauth for the old token changes nothing.
	if err := re.Reauth(context.Background(), failed); err != nil {
		t.Fatal(err)
	}
	if got := o.TokenRequests() - before; got != 1 {
		t.Fatalf("stale Reauth refetched: %d requests", got)
	}
}

func TestOAuth2WrongSecretError(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{})
	cfg := ccConfig(o)
	cfg.ClientSecret = "wrong-Secret-do-not-leak-123"
	a, err := auth.New(cfg, auth.WithHTTPClient(o.Client()))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, o.APIURL(), nil)
	err = a.Apply(context.Background(), req, nil)
	if err == nil {
		t.Fatal("Apply succeeded with a wrong secret")
	}
	msg := err.Error()
	t.Log(msg)
	if !strings.Contains(msg, "oauth2 token request to "+o.TokenURL()+" failed") {
		t.Errorf("error does not name the token URL: %q", msg)
	}
	if !strings.Contains(msg, "401") || !strings.Contains(msg, "invalid_client") {
		t.Errorf("error lacks status/code: %q", msg)
	}
	for _, secret := range []string{cfg.ClientSecret, oauthtest.ClientSecret} {
		if strings.Contains(msg, secret) {
			t.Errorf("error leaks a secret: %q", msg)
		}
	}
	var te *auth.TokenError
	if !errors.As(err, &te) || te.StatusCode != http.StatusUnauthorized || te.Code != "invalid_client" {
		t.Errorf("TokenError = %+v", te)
	}
	if req.Header.Get("Authorization") != "" {
		t.Error("request signed despite the error")
	}
}

func TestOAuth2TokenEndpointEchoingSecretIsRedacted(t *testing.T) {
	// A misbehaving endpoint that echoes the request body in its error.
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"invalid_request","error_description":"bad secret `+r.Form.Get("client_secret")+`"}`)
	}))
	defer ts.Close()
	a, err := auth.New(auth.Config{Type: "oauth2", TokenURL: ts.URL, ClientID: "id", ClientSecret: "echoed-Secret-999", AuthStyle: "body"})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://example.invalid/", nil)
	err = a.Apply(context.Background(), req, nil)
	if err == nil || strings.Contains(err.Error(), "echoed-Secret-999") || !strings.Contains(err.Error(), "[REDACTED]") {
		t.Fatalf("err = %v", err)
	}
}

func TestOAuth2TokenEndpointDown(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	u := ts.URL + "/token"
	ts.Close()
	a, err := auth.New(auth.Config{Type: "oauth2", TokenURL: u, ClientID: "id", ClientSecret: "down-Secret"})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://example.invalid/", nil)
	err = a.Apply(context.Background(), req, nil)
	if err == nil || !strings.Contains(err.Error(), "oauth2 token request to "+u+" failed") || strings.Contains(err.Error(), "down-Secret") {
		t.Fatalf("err = %v", err)
	}
}

func TestOAuth2CancelledContextWhileWaiting(t *testing.T) {
	block := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
		http.Error(w, "slow", http.StatusServiceUnavailable)
	}))
	defer ts.Close()
	defer close(block)
	a, err := auth.New(auth.Config{Type: "oauth2", TokenURL: ts.URL, ClientID: "id", ClientSecret: "x"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, "http://example.invalid/", nil)
			errs[i] = a.Apply(ctx, req, nil)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want deadline exceeded", err)
		}
	}
}

func TestOAuth2AuthStyleBody(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{FormOnly: true})
	cfg := ccConfig(o)
	cfg.AuthStyle = "body"
	cfg.Params = map[string]string{"audience": "https://api.example"}
	a, err := auth.New(cfg, auth.WithHTTPClient(o.Client()))
	if err != nil {
		t.Fatal(err)
	}
	if _, status := send(t, a, o.APIURL()); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	if n := o.TokenRequests(); n != 1 {
		t.Fatalf("token requests = %d", n)
	}
}

func TestOAuth2ClientCredentialsWithStore(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{})
	st := &auth.MemoryStore{}
	cfg := ccConfig(o)
	a1, _ := auth.New(cfg, auth.WithHTTPClient(o.Client()), auth.WithTokenStore(st))
	r1, _ := send(t, a1, o.APIURL())
	// A second run reuses the stored token: no new token request.
	a2, _ := auth.New(cfg, auth.WithHTTPClient(o.Client()), auth.WithTokenStore(st))
	r2, status := send(t, a2, o.APIURL())
	if status != http.StatusOK || r1.Header.Get("Authorization") != r2.Header.Get("Authorization") {
		t.Fatalf("stored token not reused (status %d)", status)
	}
	if n := o.TokenRequests(); n != 1 {
		t.Fatalf("token requests = %d, want 1", n)
	}
}
