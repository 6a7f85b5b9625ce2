package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// defaultEarlyRefresh is how long before expiry a token is renewed (the
// same margin as golang.org/x/oauth2), capped at half the token's lifetime
// so short-lived tokens are still reused.
const defaultEarlyRefresh = 10 * time.Second

// TokenError reports a failed request to an OAuth2 token endpoint. Its
// message names the token URL and the server's status and error code, and
// never contains the client secret or tokens.
type TokenError struct {
	// TokenURL is the endpoint that was called.
	TokenURL string
	// StatusCode is the HTTP status of the answer, 0 if none was received.
	StatusCode int
	// Code and Description are RFC 6749's error and error_description.
	Code, Description string

	msg   string
	cause error // only context errors, never anything that may hold a secret
}

// Error implements error.
func (e *TokenError) Error() string { return e.msg }

// Unwrap returns context.Canceled or context.DeadlineExceeded when the
// request was cut short by its context, otherwise nil.
func (e *TokenError) Unwrap() error { return e.cause }

// oauthAuth is the oauth2 Authenticator. It keeps one token for all
// concurrent requests: a fast path reads it under mu; renewing it is done
// by a single goroutine at a time (sem), the others wait (honouring their
// context) and then reuse what it got.
type oauthAuth struct {
	grant    string
	header   string
	tokenURL string
	client   *http.Client
	now      func() time.Time
	hint     string // "run plumb auth login <name>"

	// fetch gets a new token; old is the current one (nil if none), whose
	// refresh token authorization_code uses.
	fetch func(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error)
	// secrets returns what must never appear in an error.
	secrets func(old *oauth2.Token) []string

	store    TokenStore // may be nil for client_credentials
	storeKey string

	sem chan struct{} // held while loading or renewing

	mu        sync.Mutex // guards the fields below
	cur       *oauth2.Token
	refreshAt time.Time // zero: never
	stale     bool      // rejected by the API (Reauth): renew before use
	loaded    bool      // store consulted and held a token
}

func newOAuth2(cfg Config, o options) (*oauthAuth, error) {
	grant := cfg.Grant
	if grant == "" {
		grant = GrantClientCredentials
	}
	if grant != GrantClientCredentials && grant != GrantAuthorizationCode {
		return nil, fmt.Errorf("auth: oauth2 grant must be \"client_credentials\" or \"authorization_code\", got %q", cfg.Grant)
	}
	if err := checkURL("oauth2", "token_url", cfg.TokenURL); err != nil {
		return nil, err
	}
	if cfg.ClientID == "" {
		return nil, errors.New("auth: oauth2 needs client_id")
	}
	style, err := authStyle(cfg.AuthStyle)
	if err != nil {
		return nil, err
	}
	h := cfg.Header
	if h == "" {
		h = "Authorization"
	}
	if err := checkHeaderName("oauth2", "header", h); err != nil {
		return nil, err
	}
	a := &oauthAuth{
		grant:    grant,
		header:   h,
		tokenURL: cfg.TokenURL,
		client:   o.client,
		now:      o.now,
		hint:     o.loginHint(),
		store:    o.store,
		storeKey: StoreKey(cfg),
		sem:      make(chan struct{}, 1),
	}
	switch grant {
	case GrantClientCredentials:
		if cfg.ClientSecret == "" {
			return nil, errors.New("auth: oauth2 client_credentials needs client_secret")
		}
		cc := &clientcredentials.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			TokenURL:     cfg.TokenURL,
			Scopes:       append([]string(nil), cfg.Scopes...),
			AuthStyle:    style,
		}
		if len(cfg.Params) > 0 {
			cc.EndpointParams = url.Values{}
			for k, v := range cfg.Params {
				cc.EndpointParams.Set(k, v)
			}
		}
		a.fetch = func(ctx context.Context, _ *oauth2.Token) (*oauth2.Token, error) {
			return cc.Token(ctx)
		}
		a.secrets = func(*oauth2.Token) []string { return []string{cfg.ClientSecret} }
	case GrantAuthorizationCode:
		if err := checkURL("oauth2", "auth_url", cfg.AuthURL); err != nil {
			return nil, err
		}
		if o.store == nil {
			return nil, errors.New("auth: oauth2 authorization_code needs a token store (auth.WithTokenStore)")
		}
		conf := oauthConfig(cfg, style)
		a.fetch = func(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error) {
			if old == nil || old.RefreshToken == "" {
				return nil, fmt.Errorf("auth: %w: the oauth2 token expired and there is no refresh token; %s", ErrNotLoggedIn, a.hint)
			}
			// A token without an access token is never valid, so this
			// source refreshes at once; rotated refresh tokens come back
			// in the result and are persisted by renew.
			return conf.TokenSource(ctx, &oauth2.Token{RefreshToken: old.RefreshToken}).Token()
		}
		a.secrets = func(old *oauth2.Token) []string {
			s := []string{cfg.ClientSecret}
			if old != nil {
				s = append(s, old.RefreshToken, old.AccessToken)
			}
			return s
		}
	}
	return a, nil
}

func authStyle(s string) (oauth2.AuthStyle, error) {
	switch s {
	case "":
		return oauth2.AuthStyleAutoDetect, nil
	case "header":
		return oauth2.AuthStyleInHeader, nil
	case "body":
		return oauth2.AuthStyleInParams, nil
	default:
		return 0, fmt.Errorf("auth: oauth2 auth_style must be \"header\", \"body\" or empty (auto-detect), got %q", s)
	}
}

// oauthConfig is the x/oauth2 configuration of an authorization_code cfg.
func oauthConfig(cfg Config, style oauth2.AuthStyle) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:   cfg.AuthURL,
			TokenURL:  cfg.TokenURL,
			AuthStyle: style,
		},
		RedirectURL: cfg.RedirectURL,
		Scopes:      append([]string(nil), cfg.Scopes...),
	}
}

// Apply implements Authenticator: it sets "<type> <access token>" (type
// normally "Bearer") in the header, fetching or refreshing the token first
// when there is none or it is about to expire.
func (a *oauthAuth) Apply(ctx context.Context, req *http.Request, _ []byte) error {
	t, err := a.token(ctx)
	if t != nil {
		setHeader(req, a.header, t.Type()+" "+t.AccessToken)
	}
	return err
}

// Reauth implements Reauther: unless the token failed carries was already
// replaced (by a concurrent Reauth or a refresh), the cached token is
// dropped and a new one fetched (client_credentials) or refreshed
// (authorization_code).
func (a *oauthAuth) Reauth(ctx context.Context, failed *http.Request) error {
	rejected := ""
	if failed != nil {
		rejected = tokenFromHeader(failed.Header.Get(a.header))
	}
	if err := a.acquire(ctx); err != nil {
		return err
	}
	defer a.release()
	if err := a.loadLocked(); err != nil {
		return err
	}
	unlock, err := a.lockShared(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := a.reloadShared(rejected); err != nil {
		return err
	}
	a.mu.Lock()
	cur := a.cur
	if cur != nil && rejected != "" && cur.AccessToken != rejected {
		a.mu.Unlock()
		return nil // someone else (here or in the cluster) already got a new one
	}
	a.stale = true
	a.mu.Unlock()
	_, err = a.renewLocked(ctx, cur)
	return err
}

// valid returns the cached token if it can be used now.
func (a *oauthAuth) valid() *oauth2.Token {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur == nil || a.stale || a.cur.AccessToken == "" {
		return nil
	}
	if !a.refreshAt.IsZero() && !a.now().Before(a.refreshAt) {
		return nil
	}
	return a.cur
}

func (a *oauthAuth) acquire(ctx context.Context) error {
	select {
	case a.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *oauthAuth) release() { <-a.sem }

func (a *oauthAuth) token(ctx context.Context) (*oauth2.Token, error) {
	if t := a.valid(); t != nil {
		return t, nil
	}
	if err := a.acquire(ctx); err != nil {
		return nil, err
	}
	defer a.release()
	// Another goroutine may have renewed it while we waited.
	if t := a.valid(); t != nil {
		return t, nil
	}
	if err := a.loadLocked(); err != nil {
		return nil, err
	}
	if t := a.valid(); t != nil {
		return t, nil
	}
	unlock, err := a.lockShared(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := a.reloadShared(""); err != nil {
		return nil, err
	}
	if t := a.valid(); t != nil {
		return t, nil // another process of the cluster renewed it
	}
	a.mu.Lock()
	cur := a.cur
	a.mu.Unlock()
	if cur == nil && a.grant == GrantAuthorizationCode {
		return nil, fmt.Errorf("auth: %w: %s", ErrNotLoggedIn, a.hint)
	}
	return a.renewLocked(ctx, cur)
}

// lockShared takes the cluster-wide renewal lock of a SharedTokenStore
// (nothing to do for other stores).
func (a *oauthAuth) lockShared(ctx context.Context) (func(), error) {
	ss, ok := a.store.(SharedTokenStore)
	if !ok {
		return func() {}, nil
	}
	unlock, err := ss.Lock(ctx, a.storeKey)
	if err != nil {
		return nil, fmt.Errorf("auth: oauth2: taking the token lock: %w", err)
	}
	return unlock, nil
}

// reloadShared reads a SharedTokenStore again (another process may have
// renewed the token) and adopts what it holds unless it is the token the
// API just rejected. Called with sem held.
func (a *oauthAuth) reloadShared(rejected string) error {
	if _, ok := a.store.(SharedTokenStore); !ok {
		return nil
	}
	t, err := a.store.Load(a.storeKey)
	if err != nil || t == nil || t.AccessToken == "" || (rejected != "" && t.AccessToken == rejected) {
		return err
	}
	refreshAt := storedRefreshAt(t)
	a.mu.Lock()
	if a.cur == nil || a.cur.AccessToken != t.AccessToken {
		a.cur, a.refreshAt, a.stale = t, refreshAt, false
	}
	a.loaded = true
	a.mu.Unlock()
	return nil
}

// loadLocked reads the stored token once, if there is a store. Called
// with sem held.
func (a *oauthAuth) loadLocked() error {
	a.mu.Lock()
	done := a.loaded || a.store == nil
	a.mu.Unlock()
	if done {
		return nil
	}
	t, err := a.store.Load(a.storeKey)
	if err != nil {
		return err
	}
	if t == nil {
		return nil // not loaded: look again next time (a login may happen)
	}
	refreshAt := storedRefreshAt(t)
	a.mu.Lock()
	a.loaded = true
	if a.cur == nil {
		a.cur, a.refreshAt, a.stale = t, refreshAt, false
	}
	a.mu.Unlock()
	return nil
}

// renewLocked fetches a new token, caches it and saves it to the store.
// Called with sem held. If saving fails the new token is still cached
// (and used by later calls) but the error is returned.
func (a *oauthAuth) renewLocked(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error) {
	fctx := ctx
	if a.client != nil {
		fctx = context.WithValue(ctx, oauth2.HTTPClient, a.client)
	}
	t, err := a.fetch(fctx, old)
	if err != nil {
		return nil, a.fetchError(ctx, err, old)
	}
	// Re-base the expiry on our clock so an injected clock governs it.
	nt, refreshAt := rebase(a.now(), t)
	a.mu.Lock()
	a.cur, a.refreshAt, a.stale, a.loaded = nt, refreshAt, false, true
	a.mu.Unlock()
	if a.store != nil {
		if err := a.store.Save(a.storeKey, nt); err != nil {
			return nt, fmt.Errorf("auth: oauth2: saving the new token: %w", err)
		}
	}
	return nt, nil
}

// lifetime is how long a just-received token lives.
func lifetime(t *oauth2.Token) (time.Duration, bool) {
	if t.ExpiresIn > 0 {
		return time.Duration(t.ExpiresIn) * time.Second, true
	}
	if !t.Expiry.IsZero() {
		// x/oauth2 derived Expiry from the wall clock a moment ago.
		return max(time.Until(t.Expiry), 0), true
	}
	return 0, false
}

// fetchError turns a token endpoint failure into a TokenError without
// secrets.
func (a *oauthAuth) fetchError(ctx context.Context, err error, old *oauth2.Token) error {
	if errors.Is(err, ErrNotLoggedIn) {
		return err
	}
	te := tokenRequestError(ctx, a.tokenURL, err, a.secrets(old))
	if a.grant == GrantAuthorizationCode && te.Code == "invalid_grant" {
		te.msg += "; the login is no longer valid: " + a.hint
	}
	return te
}

// tokenRequestError describes err, returned by x/oauth2 for a request to
// tokenURL, with every one of secrets redacted.
func tokenRequestError(ctx context.Context, tokenURL string, err error, secrets []string) *TokenError {
	te := &TokenError{TokenURL: tokenURL}
	var detail string
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re):
		if re.Response != nil {
			te.StatusCode = re.Response.StatusCode
			detail = re.Response.Status
		}
		te.Code, te.Description = re.ErrorCode, re.ErrorDescription
		if te.Code != "" {
			detail += ": " + te.Code
			if te.Description != "" {
				detail += ": " + te.Description
			}
		}
		if detail == "" {
			detail = "invalid response"
		}
	case ctx.Err() != nil:
		te.cause = ctx.Err()
		detail = ctx.Err().Error()
	default:
		var ue *url.Error
		if errors.As(err, &ue) {
			// Drop the URL (it is the token URL, already named).
			detail = ue.Err.Error()
		} else {
			detail = err.Error()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			te.cause = context.DeadlineExceeded
		}
	}
	te.msg = fmt.Sprintf("auth: oauth2 token request to %s failed: %s", tokenURL, redact(detail, secrets...))
	return te
}

// rebase re-computes t's expiry on the clock now (x/oauth2 used the wall
// clock) and returns the copy with the time at which to renew it (zero:
// never).
func rebase(now time.Time, t *oauth2.Token) (*oauth2.Token, time.Time) {
	nt := *t
	var refreshAt time.Time
	if life, ok := lifetime(t); ok {
		nt.Expiry = now.Add(life)
		// kept with the token, so whoever loads it from a store knows its
		// lifetime (storedRefreshAt)
		nt.ExpiresIn = int64(life / time.Second)
		refreshAt = nt.Expiry.Add(-min(defaultEarlyRefresh, life/2))
	}
	return &nt, refreshAt
}

// storedRefreshAt is when a token read from a store is renewed: as for a
// fresh one (rebase), defaultEarlyRefresh before expiry, or half its life
// when that is shorter, so a short-lived token is not renewed at once.
func storedRefreshAt(t *oauth2.Token) time.Time {
	if t.Expiry.IsZero() {
		return time.Time{}
	}
	early := defaultEarlyRefresh
	if t.ExpiresIn > 0 {
		early = min(early, time.Duration(t.ExpiresIn)*time.Second/2)
	}
	return t.Expiry.Add(-early)
}

// Prepare gets a usable token now (fetching or loading it if needed), so a
// caller about to wait for a rate-limit slot does not spend its slot on
// the token fetch.
func (a *oauthAuth) Prepare(ctx context.Context) error {
	_, err := a.token(ctx)
	return err
}
