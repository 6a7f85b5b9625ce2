package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/plumbhq/plumb/steps"
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
// context) and then reuse what it got. A refusal of the login (invalid
// grant) is shared the same way: one refused refresh, then every request
// fails at once until a new login is stored.
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
	// versions is the store when it is versioned and the grant is
	// authorization_code: its version is compared before each use.
	versions VersionedTokenStore

	sem chan struct{} // held while loading or renewing

	mu        sync.Mutex // guards the fields below
	cur       *oauth2.Token
	refreshAt time.Time // zero: never
	stale     bool      // rejected by the API (Reauth): renew before use
	loaded    bool      // store consulted and held a token
	ver       uint64    // versions' version when the store was last read
	// base is the token the store held when last read or written by us:
	// what a save swaps out (cur differs when saving it failed).
	base *oauth2.Token
	// refused is set once the partner refused the login, until a new one
	// is stored; dead are the refused tokens, never adopted again.
	refused *LoginRefusedError
	dead    []*oauth2.Token
}

func newOAuth2(cfg Config, o options) (*oauthAuth, error) {
	grant := cfg.Grant
	if grant == "" {
		grant = GrantClientCredentials
	}
	if !steps.OAuth2Grants.Has(steps.OAuth2Grant(grant)) {
		return nil, fmt.Errorf("auth: oauth2 grant %q is not %s", cfg.Grant, steps.OAuth2Grants.Hint())
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
	if vs, ok := o.store.(VersionedTokenStore); ok && grant == GrantAuthorizationCode {
		a.versions = vs
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
			reason := o.noStore
			if reason == "" {
				reason = "none was given"
			}
			return nil, fmt.Errorf("auth: %w: %s", ErrNoTokenStore, reason)
		}
		r := newRefresher(cfg, style)
		a.fetch = func(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error) {
			if old == nil || old.RefreshToken == "" {
				return nil, fmt.Errorf("auth: %w: the oauth2 token expired and there is no refresh token; %s", ErrNotLoggedIn, a.hint)
			}
			return r.refresh(ctx, old.RefreshToken)
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
	switch steps.OAuth2AuthStyle(s) {
	case "":
		return oauth2.AuthStyleAutoDetect, nil
	case steps.AuthStyleHeader:
		return oauth2.AuthStyleInHeader, nil
	case steps.AuthStyleBody:
		return oauth2.AuthStyleInParams, nil
	default:
		return 0, fmt.Errorf("auth: oauth2 auth_style %q is not %s (or empty: auto-detect)", s, steps.OAuth2AuthStyles.Hint())
	}
}

// refresher refreshes authorization_code tokens. With auth_style
// auto-detect it sends the client credentials in a Basic header, then in
// the form, as golang.org/x/oauth2 does, and keeps the one that worked —
// except that an invalid_grant answer is final: the server knew the client
// and refused the refresh token, which is not sent a second time.
type refresher struct {
	header, form *oauth2.Config

	mu    sync.Mutex
	style oauth2.AuthStyle // AuthStyleAutoDetect until known
}

func newRefresher(cfg Config, style oauth2.AuthStyle) *refresher {
	return &refresher{header: oauthConfig(cfg, oauth2.AuthStyleInHeader), form: oauthConfig(cfg, oauth2.AuthStyleInParams), style: style}
}

func (r *refresher) refresh(ctx context.Context, refresh string) (*oauth2.Token, error) {
	r.mu.Lock()
	style := r.style
	r.mu.Unlock()
	if style != oauth2.AuthStyleAutoDetect {
		return r.with(ctx, style, refresh)
	}
	style = oauth2.AuthStyleInHeader
	t, err := r.with(ctx, style, refresh)
	if err != nil && !invalidGrant(err) && ctx.Err() == nil {
		style = oauth2.AuthStyleInParams
		t, err = r.with(ctx, style, refresh)
	}
	if err == nil || invalidGrant(err) {
		r.mu.Lock()
		r.style = style
		r.mu.Unlock()
	}
	return t, err
}

// with refreshes with the client credentials sent as style says. A token
// without an access token is never valid, so the source refreshes at
// once; rotated refresh tokens come back in the result and are persisted
// by renew.
func (r *refresher) with(ctx context.Context, style oauth2.AuthStyle, refresh string) (*oauth2.Token, error) {
	conf := r.header
	if style == oauth2.AuthStyleInParams {
		conf = r.form
	}
	return conf.TokenSource(ctx, &oauth2.Token{RefreshToken: refresh}).Token()
}

// invalidGrant reports whether a token endpoint refused the grant itself
// (RFC 6749 5.2): revoked, expired or unknown.
func invalidGrant(err error) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == "invalid_grant"
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
// replaced (by a concurrent Reauth, a refresh here or in the cluster, or a
// new login), the cached token is dropped and a new one fetched
// (client_credentials) or refreshed (authorization_code). A login the
// partner refused is an error at once.
func (a *oauthAuth) Reauth(ctx context.Context, failed *http.Request) error {
	rejected := ""
	if failed != nil {
		rejected = tokenFromHeader(failed.Header.Get(a.header))
	}
	if err := a.acquire(ctx); err != nil {
		return err
	}
	defer a.release()
	if err := a.syncLocked(rejected); err != nil {
		return err
	}
	unlock, err := a.lockShared(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := a.reloadBeforeRenew(rejected); err != nil {
		return err
	}
	a.mu.Lock()
	if a.refused != nil {
		defer a.mu.Unlock()
		return a.refused
	}
	cur := a.cur
	if cur != nil && rejected != "" && cur.AccessToken != rejected {
		a.mu.Unlock()
		return nil // someone else already got a new one
	}
	a.stale = true
	a.mu.Unlock()
	_, err = a.renewLocked(ctx, cur)
	return err
}

// valid returns the cached token if it can be used now, and the store
// version it was checked against.
func (a *oauthAuth) valid() (*oauth2.Token, uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.validLocked(), a.ver
}

func (a *oauthAuth) validLocked() *oauth2.Token {
	if a.cur == nil || a.stale || a.cur.AccessToken == "" {
		return nil
	}
	if !a.refreshAt.IsZero() && !a.now().Before(a.refreshAt) {
		return nil
	}
	return a.cur
}

// usable returns the cached token if it can be used without looking at
// the store: valid, and the store's version has not moved since it was
// read (a login or another runner saved nothing since).
func (a *oauthAuth) usable() *oauth2.Token {
	t, seen := a.valid()
	if t == nil || (a.versions != nil && a.versions.Version(a.storeKey) != seen) {
		return nil
	}
	return t
}

// ready returns the cached token when it can be used, or the refusal of
// the login; (nil, nil) when a token must be fetched.
func (a *oauthAuth) ready() (*oauth2.Token, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.refused != nil {
		return nil, a.refused
	}
	return a.validLocked(), nil
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
	if t := a.usable(); t != nil {
		return t, nil
	}
	if err := a.acquire(ctx); err != nil {
		return nil, err
	}
	defer a.release()
	// Another goroutine may have renewed it while we waited, a login may
	// have been stored, or the login refused.
	if err := a.syncLocked(""); err != nil {
		return nil, err
	}
	if t, err := a.ready(); t != nil || err != nil {
		return t, err
	}
	unlock, err := a.lockShared(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := a.reloadBeforeRenew(""); err != nil {
		return nil, err
	}
	if t, err := a.ready(); t != nil || err != nil {
		return t, err // renewed (or refused) by another process of the cluster
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

// syncLocked reads the store when it may hold something else than the
// cached token: never read yet (or it held nothing), its version moved (a
// login or another runner saved), or the login was refused (a new login
// may have been stored, here or by another instance: read on every use
// until then). Called with sem held; rejected as for adopt.
func (a *oauthAuth) syncLocked(rejected string) error {
	if a.store == nil {
		return nil
	}
	a.mu.Lock()
	need := !a.loaded || a.refused != nil
	seen := a.ver
	a.mu.Unlock()
	if !need && (a.versions == nil || a.versions.Version(a.storeKey) == seen) {
		return nil
	}
	return a.reloadLocked(rejected)
}

// reloadBeforeRenew reads the store again right before a renewal (under
// the shared lock): another instance may have renewed the token, a login
// been stored or refused. client_credentials reads only a
// SharedTokenStore again.
func (a *oauthAuth) reloadBeforeRenew(rejected string) error {
	if a.store == nil {
		return nil
	}
	if _, shared := a.store.(SharedTokenStore); !shared && a.grant != GrantAuthorizationCode {
		return nil
	}
	return a.reloadLocked(rejected)
}

// reloadLocked reads the store and adopts what it holds. Called with sem
// held.
func (a *oauthAuth) reloadLocked(rejected string) error {
	var ver uint64
	if a.versions != nil {
		// before Load: a save racing with it moves the version again
		ver = a.versions.Version(a.storeKey)
	}
	t, err := a.store.Load(a.storeKey)
	if err != nil {
		return err
	}
	a.adopt(t, ver, rejected)
	return nil
}

// adopt takes what the store holds (t, read at version ver) as the
// current token: a refusal makes requests fail at once; a token refused
// before (dead) is not taken again; the token the API just rejected is
// taken only to be renewed; anything else is a login (or another
// runner's renewal) to use.
func (a *oauthAuth) adopt(t *oauth2.Token, ver uint64, rejected string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ver = ver
	if t == nil {
		if a.grant == GrantAuthorizationCode && a.loaded {
			// logged out: the login is gone, whatever we cached
			a.cur, a.base, a.loaded = nil, nil, false
		}
		return // nothing stored (yet): look again next time
	}
	a.loaded, a.base = true, t
	if r := RefusalOf(t); r != nil && a.grant == GrantAuthorizationCode {
		if a.refused == nil || !a.refused.At.Equal(r.At) { // keep our own, with its cause
			a.refused = &LoginRefusedError{Refusal: *r, hint: a.hint}
		}
		a.cur, a.stale = nil, false
		return
	}
	for _, d := range a.dead {
		if SameToken(t, d) {
			return // still the refused login (its refusal could not be stored)
		}
	}
	if rejected != "" && t.AccessToken == rejected {
		if a.cur == nil {
			a.cur, a.refreshAt = t, storedRefreshAt(t)
		}
		a.stale = a.stale || a.cur.AccessToken == rejected
		return
	}
	if a.cur == nil || !SameToken(a.cur, t) {
		a.cur, a.refreshAt, a.stale = t, storedRefreshAt(t), false
	}
	a.refused, a.dead = nil, nil
}

// renewLocked fetches a new token, caches it and saves it to the store.
// Called with sem held. If saving fails the new token is still cached
// (and used by later calls) but the error is returned. An
// authorization_code token is saved only in place of the one the store
// held: a login stored meanwhile wins.
func (a *oauthAuth) renewLocked(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error) {
	fctx := ctx
	if a.client != nil {
		fctx = context.WithValue(ctx, oauth2.HTTPClient, a.client)
	}
	t, err := a.fetch(fctx, old)
	if err != nil {
		return nil, a.fetchFailed(ctx, err, old)
	}
	// Re-base the expiry on our clock so an injected clock governs it.
	nt, refreshAt := rebase(a.now(), t)
	a.mu.Lock()
	a.cur, a.refreshAt, a.stale, a.loaded = nt, refreshAt, false, true
	a.mu.Unlock()
	if a.store == nil {
		return nt, nil
	}
	saved := true
	if a.grant == GrantAuthorizationCode {
		saved, err = a.swapLocked(nt)
	} else {
		err = a.store.Save(a.storeKey, nt)
	}
	if err != nil {
		return nt, fmt.Errorf("auth: oauth2: saving the new token: %w", err)
	}
	if !saved {
		// A login was stored while we refreshed the old one: use it.
		if err := a.reloadLocked(""); err != nil {
			return nil, err
		}
		if t, err := a.ready(); t != nil || err != nil {
			return t, err
		}
	}
	return nt, nil
}

// swapLocked saves t in place of what the store held when we last read or
// wrote it (base); false, saving nothing, when it holds something else now.
func (a *oauthAuth) swapLocked(t *oauth2.Token) (bool, error) {
	a.mu.Lock()
	old := a.base
	a.mu.Unlock()
	var ok bool
	var err error
	if sw, is := a.store.(SwappingTokenStore); is {
		ok, err = sw.Swap(a.storeKey, old, t)
	} else {
		var cur *oauth2.Token
		if cur, err = a.store.Load(a.storeKey); err == nil && SameToken(cur, old) {
			ok, err = true, a.store.Save(a.storeKey, t)
		}
	}
	if ok && err == nil {
		a.mu.Lock()
		a.base = t
		a.mu.Unlock()
	}
	return ok, err
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

// fetchFailed turns a token endpoint failure into a TokenError without
// secrets; an authorization_code refresh refused with invalid_grant is
// the end of the login (refuse).
func (a *oauthAuth) fetchFailed(ctx context.Context, err error, old *oauth2.Token) error {
	if errors.Is(err, ErrNotLoggedIn) {
		return err
	}
	te := tokenRequestError(ctx, a.tokenURL, err, a.secrets(old))
	if a.grant == GrantAuthorizationCode && te.Code == "invalid_grant" && old != nil {
		return a.refuse(te, old)
	}
	return te
}

// maxReason bounds the partner's answer kept in a Refusal.
const maxReason = 500

// refuse records that the partner refused the login whose refresh token
// old carried: in memory, so this authenticator's requests fail at once
// from now on, and in the store in place of the dead token, so other
// runners and instances and the login's status see it. A login stored
// meanwhile is not overwritten: it is used from the next request on.
// Called with sem held.
func (a *oauthAuth) refuse(te *TokenError, old *oauth2.Token) error {
	reason := strings.TrimPrefix(te.Error(), "auth: ")
	if len(reason) > maxReason {
		reason = strings.ToValidUTF8(reason[:maxReason], "") + "…"
	}
	r := &LoginRefusedError{Refusal: Refusal{At: a.now().UTC(), Reason: reason}, hint: a.hint, cause: te}
	ok, err := a.swapLocked(RefusedToken(r.Refusal))
	switch {
	case err != nil:
		r.note = "; recording the refusal in the token store failed: " + err.Error()
	case !ok:
		r.note = "; a new login was stored meanwhile and is used from the next request on"
		return errors.Join(r, a.reloadLocked(""))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refused, a.cur, a.stale = r, nil, false
	a.dead = append(a.dead, old)
	if a.base != nil && RefusalOf(a.base) == nil {
		a.dead = append(a.dead, a.base) // the refusal could not replace it
	}
	return r
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
