package oauthflow

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/plumbhq/plumb/auth"
)

// Defaults of [Config].
const (
	// DefaultStateTTL is how long a started login may take: the state, its
	// cookie and the PKCE verifier are forgotten after it.
	DefaultStateTTL = 10 * time.Minute
	// DefaultMaxPending bounds the logins in progress at once.
	DefaultMaxPending = 1000
	// exchangeTimeout bounds the code exchange when the client has none.
	exchangeTimeout = 30 * time.Second
)

// Prefix is the path under which [Flow.Handler] serves its routes.
const Prefix = "/v1/oauth/"

// cookiePrefix starts the name of the login cookie; a hash of the
// integration name follows, so logins to two integrations can run at once.
const cookiePrefix = "plumb_oauth_"

// Config configures a [Flow].
type Config struct {
	// Lookup returns the oauth2 authorization_code auth sections of an
	// integration's current runner (engine.Runner.OAuth2Configs, filtered
	// on grant authorization_code), and false when there is no such
	// integration. It is called at start and again at the callback, so a
	// reloaded integration is seen. Sections of another type or grant are
	// ignored. Required.
	Lookup func(integration string) ([]auth.Config, bool)
	// Store keeps the tokens, under auth.StoreKey of each section; give the
	// runners the same store (engine.Config.Tokens). Required.
	Store auth.TokenStore
	// BaseURL is the service's external URL as the browser and the partner
	// see it (e.g. https://plumb.example.com), without /v1/oauth. The
	// redirect URI is <BaseURL>/v1/oauth/{integration}/callback; it must be
	// registered with the partner. A section's redirect_url is not used:
	// it is the loopback callback of `plumb auth login`, so one file serves
	// both (plumb serve warns when it loads one). An https base makes the
	// login cookie Secure. Required.
	BaseURL string
	// Now is the clock for login expiry and token expiry (default
	// time.Now).
	Now func() time.Time
	// HTTPClient calls the partners' token endpoints (default: a client
	// with a 30 s timeout that does not follow redirects).
	HTTPClient *http.Client
	// Logger receives one record per login started, completed or refused
	// (default: discard). Records never hold secrets.
	Logger *slog.Logger
	// StateTTL is how long a started login may take (default
	// DefaultStateTTL).
	StateTTL time.Duration
	// MaxPending bounds the logins in progress (default
	// DefaultMaxPending); more starts are answered 503.
	MaxPending int
	// Authorize, when set, is asked before start and status are served;
	// a non-nil error refuses the request with 403 and the error's text.
	// Without it anyone who can reach the routes can connect an
	// integration to their own partner account, so a service reachable by
	// others must set it (or guard the routes in front). The callback is
	// not asked: the state and cookie of a started login protect it.
	Authorize func(r *http.Request) error
}

// Flow serves the install routes. It is safe for concurrent use.
type Flow struct {
	cfg        Config
	base       string // without trailing slash
	basePath   string // path part of base, without trailing slash
	secure     bool
	log        *slog.Logger
	client     *http.Client
	now        func() time.Time
	ttl        time.Duration
	maxPending int

	mu      sync.Mutex
	pending map[[32]byte]*login // by SHA-256 of the state
}

// login is a started authorization request.
type login struct {
	integration string
	section     int
	storeKey    string
	state       string
	binding     string // the cookie's value
	verifier    string
	redirect    string
	expires     time.Time
}

// New validates cfg and returns a Flow.
func New(cfg Config) (*Flow, error) {
	if cfg.Lookup == nil {
		return nil, errors.New("oauthflow: Config.Lookup is required")
	}
	if cfg.Store == nil {
		return nil, errors.New("oauthflow: Config.Store is required")
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, errors.New("oauthflow: Config.BaseURL must be an absolute http(s) URL without query, fragment or user info (the service's external URL)")
	}
	f := &Flow{
		cfg:        cfg,
		base:       strings.TrimSuffix(u.String(), "/"),
		basePath:   strings.TrimSuffix(u.EscapedPath(), "/"),
		secure:     u.Scheme == "https",
		log:        cfg.Logger,
		client:     cfg.HTTPClient,
		now:        cfg.Now,
		ttl:        cfg.StateTTL,
		maxPending: cfg.MaxPending,
		pending:    map[[32]byte]*login{},
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.client == nil {
		f.client = &http.Client{
			Timeout:       exchangeTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if f.now == nil {
		f.now = time.Now
	}
	if f.ttl <= 0 {
		f.ttl = DefaultStateTTL
	}
	if f.maxPending <= 0 {
		f.maxPending = DefaultMaxPending
	}
	return f, nil
}

// RedirectURL is the callback URL of integration's section cfg:
// <BaseURL>/v1/oauth/{integration}/callback, the URL to register with the
// partner. The section's own redirect_url is the loopback callback of
// `plumb auth login` and is not used here: the browser must come back to
// this service, whatever the file says.
func (f *Flow) RedirectURL(integration string, _ auth.Config) string {
	return f.base + Prefix + url.PathEscape(integration) + "/callback"
}

// Handler returns the handler of the routes under /v1/oauth/. It expects
// the full request path (mount it with mux.Handle("/v1/oauth/", h), not
// behind http.StripPrefix). Unknown paths are 404, other methods 405.
func (f *Flow) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Prefix+"{integration}/start", f.start)
	mux.HandleFunc("GET "+Prefix+"{integration}/callback", f.callback)
	mux.HandleFunc("GET "+Prefix+"{integration}/status", f.status)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		// The callback URL holds the code: never pass it on as a referrer.
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		mux.ServeHTTP(w, r)
	})
}

// sections returns integration's authorization_code sections, one per
// store key, in file order.
func (f *Flow) sections(integration string) ([]auth.Config, bool) {
	cfgs, ok := f.cfg.Lookup(integration)
	if !ok {
		return nil, false
	}
	var out []auth.Config
	seen := map[string]bool{}
	for _, c := range cfgs {
		if c.Type != auth.TypeOAuth2 || c.Grant != auth.GrantAuthorizationCode {
			continue
		}
		k := auth.StoreKey(c)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, c)
	}
	return out, true
}

func (f *Flow) cookieName(integration string) string {
	sum := sha256.Sum256([]byte(integration))
	return cookiePrefix + hex.EncodeToString(sum[:8])
}

// cookiePath is where the browser sends the login cookie: the oauth
// routes, where the callback is.
func (f *Flow) cookiePath() string { return f.basePath + Prefix }

func (f *Flow) start(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("integration")
	if f.cfg.Authorize != nil {
		if err := f.cfg.Authorize(r); err != nil {
			f.log.Warn("oauth login start refused", "integration", name, "error", err.Error())
			page(w, http.StatusForbidden, "Not allowed: "+err.Error())
			return
		}
	}
	secs, ok := f.sections(name)
	if !ok {
		page(w, http.StatusNotFound, fmt.Sprintf("There is no integration %q.", name))
		return
	}
	if len(secs) == 0 {
		page(w, http.StatusNotFound, fmt.Sprintf("Integration %q has no auth section with type: oauth2 and grant: authorization_code; there is nothing to connect.", name))
		return
	}
	idx := 0
	if s := r.URL.Query().Get("section"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n >= len(secs) {
			page(w, http.StatusBadRequest, fmt.Sprintf("section must be a number from 0 to %d.", len(secs)-1))
			return
		}
		idx = n
	}
	c := secs[idx]
	conf, params, err := auth.AuthCodeConfig(c)
	if err != nil {
		f.log.Error("oauth login start: bad auth section", "integration", name, "section", idx, "error", err.Error())
		page(w, http.StatusInternalServerError, "The integration's auth section is not usable: "+err.Error())
		return
	}
	redirect := f.RedirectURL(name, c)
	conf.RedirectURL = redirect
	now := f.now()
	l := &login{
		integration: name,
		section:     idx,
		storeKey:    auth.StoreKey(c),
		state:       rand.Text(),
		binding:     rand.Text(),
		verifier:    oauth2.GenerateVerifier(),
		redirect:    redirect,
		expires:     now.Add(f.ttl),
	}
	if !f.put(l, now) {
		f.log.Warn("oauth login start refused: too many logins in progress", "integration", name, "max", f.maxPending)
		page(w, http.StatusServiceUnavailable, "Too many logins are in progress; try again in a few minutes.")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     f.cookieName(name),
		Value:    l.binding,
		Path:     f.cookiePath(),
		MaxAge:   int(f.ttl / time.Second),
		Expires:  l.expires,
		HttpOnly: true,
		Secure:   f.secure,
		SameSite: http.SameSiteLaxMode,
	})
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(l.verifier)}, params...)
	f.log.Info("oauth login started", "integration", name, "section", idx, "client_id", c.ClientID, "auth_url", c.AuthURL, "redirect_uri", redirect)
	http.Redirect(w, r, conf.AuthCodeURL(l.state, opts...), http.StatusFound)
}

// put records l after dropping expired logins; false when too many remain.
func (f *Flow) put(l *login, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, p := range f.pending {
		if !now.Before(p.expires) {
			delete(f.pending, k)
		}
	}
	if len(f.pending) >= f.maxPending {
		return false
	}
	f.pending[sha256.Sum256([]byte(l.state))] = l
	return true
}

// take removes and returns the unexpired login of state (single use).
func (f *Flow) take(state string, now time.Time) *login {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := sha256.Sum256([]byte(state))
	l := f.pending[k]
	delete(f.pending, k)
	if l == nil || !now.Before(l.expires) {
		return nil
	}
	// The map is keyed by a hash; compare the state itself too.
	if subtle.ConstantTimeCompare([]byte(l.state), []byte(state)) != 1 {
		return nil
	}
	return l
}

func (f *Flow) callback(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("integration")
	q := r.URL.Query()
	cookieName := f.cookieName(name)
	refuse := func(status int, reason, msg string) {
		f.log.Warn("oauth login refused", "integration", name, "reason", reason)
		page(w, status, msg)
	}
	state := q.Get("state")
	if state == "" {
		refuse(http.StatusBadRequest, "no state", "Login failed: the callback carries no state. Start the login again.")
		return
	}
	l := f.take(state, f.now())
	if l == nil {
		refuse(http.StatusBadRequest, "unknown, expired or used state", "Login failed: this login is unknown, expired or already finished. Start the login again.")
		return
	}
	// The login is used up whatever happens next: forget its cookie.
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: f.cookiePath(), MaxAge: -1, HttpOnly: true, Secure: f.secure, SameSite: http.SameSiteLaxMode})
	if l.integration != name {
		refuse(http.StatusBadRequest, "state of another integration", "Login failed: this callback belongs to another integration's login. Start the login again.")
		return
	}
	ck, err := r.Cookie(cookieName)
	if err != nil || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(l.binding)) != 1 {
		refuse(http.StatusForbidden, "login cookie missing or wrong", "Login refused: this browser did not start this login (its login cookie is missing or does not match). Start the login again from this browser.")
		return
	}
	if e := q.Get("error"); e != "" {
		msg := "The partner did not authorize the connection: " + clip(e)
		if d := q.Get("error_description"); d != "" {
			msg += ": " + clip(d)
		}
		f.log.Warn("oauth login denied by the partner", "integration", name, "error", clip(e))
		page(w, http.StatusBadRequest, msg+". Nothing was stored.")
		return
	}
	code := q.Get("code")
	if code == "" {
		refuse(http.StatusBadRequest, "no code", "Login failed: the callback carries no authorization code. Start the login again.")
		return
	}
	secs, _ := f.sections(name)
	var c *auth.Config
	for i := range secs {
		if auth.StoreKey(secs[i]) == l.storeKey {
			c = &secs[i]
			break
		}
	}
	if c == nil {
		refuse(http.StatusConflict, "auth section changed", "Login failed: the integration's auth section changed during the login. Start the login again.")
		return
	}
	conf, params, err := auth.AuthCodeConfig(*c)
	if err != nil {
		refuse(http.StatusInternalServerError, "bad auth section", "The integration's auth section is not usable: "+err.Error())
		return
	}
	conf.RedirectURL = l.redirect // the one sent with the authorization request
	ctx := context.WithValue(r.Context(), oauth2.HTTPClient, f.client)
	if f.client.Timeout == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, exchangeTimeout)
		defer cancel()
	}
	opts := append([]oauth2.AuthCodeOption{oauth2.VerifierOption(l.verifier)}, params...)
	t, err := conf.Exchange(ctx, code, opts...)
	if err != nil {
		te := auth.NewTokenError(ctx, c.TokenURL, err, c.ClientSecret, code, l.verifier)
		f.log.Error("oauth login: code exchange failed", "integration", name, "section", l.section, "token_url", c.TokenURL, "status", te.StatusCode, "error", te.Error())
		page(w, http.StatusBadGateway, "Login failed: "+te.Error()+". Nothing was stored; start the login again.")
		return
	}
	tok := auth.RebaseToken(f.now(), t)
	prev, _ := f.cfg.Store.Load(l.storeKey) // only to log what the login replaces
	// A plain Save: a new login replaces whatever is stored, a refused
	// login included; runners sharing the store use it at their next
	// request (its version moves) or, after a refusal, read it on every
	// use until it is there.
	if err := f.cfg.Store.Save(l.storeKey, tok); err != nil {
		f.log.Error("oauth login: storing the token failed", "integration", name, "section", l.section, "error", redact(err.Error(), tok.AccessToken, tok.RefreshToken))
		page(w, http.StatusInternalServerError, "Login failed: the token could not be stored (see the service log). Start the login again.")
		return
	}
	attrs := []any{"integration", name, "section", l.section, "client_id", c.ClientID, "refresh_token", tok.RefreshToken != ""}
	if !tok.Expiry.IsZero() {
		attrs = append(attrs, "expiry", tok.Expiry.UTC().Format(time.RFC3339))
	}
	if auth.RefusalOf(prev) != nil {
		attrs = append(attrs, "replaces_refused_login", true)
	}
	f.log.Info("oauth login complete", attrs...)
	page(w, http.StatusOK, fmt.Sprintf("plumb: %s is connected. You can close this window.", name))
}

// Status is the JSON answer of the status route.
type Status struct {
	Integration string `json:"integration"`
	// LoggedIn is true when every section has a usable stored login.
	LoggedIn bool `json:"logged_in"`
	// NeedsLogin is true when a section has none: never logged in, logged
	// out, or the partner refused the login. Reason and RefusedAt are
	// those of the first such section.
	NeedsLogin bool            `json:"needs_login"`
	Reason     string          `json:"reason,omitempty"`
	RefusedAt  *time.Time      `json:"refused_at,omitempty"`
	Sections   []SectionStatus `json:"sections"`
}

// SectionStatus describes the stored token of one authorization_code
// section, without any secret.
type SectionStatus struct {
	Section  int      `json:"section"`
	ClientID string   `json:"client_id"`
	TokenURL string   `json:"token_url"`
	Scopes   []string `json:"scopes,omitempty"`
	// RedirectURI is the callback URL to register with the partner.
	RedirectURI string `json:"redirect_uri"`
	LoggedIn    bool   `json:"logged_in"`
	// NeedsLogin is true when there is no usable login: none stored, or
	// the partner refused the stored one (RefusedAt, Reason: its answer).
	// Runs fail at once with class auth until a new login is stored
	// through start; the login takes effect at the next request.
	NeedsLogin bool       `json:"needs_login"`
	Reason     string     `json:"reason,omitempty"`
	RefusedAt  *time.Time `json:"refused_at,omitempty"`
	// Expiry of the access token; absent when none is stored or it has no
	// expiry. An expired token with a refresh token is renewed at its
	// next use.
	Expiry       *time.Time `json:"expiry,omitempty"`
	Expired      bool       `json:"expired,omitempty"`
	RefreshToken bool       `json:"refresh_token"`
	// Error is why the stored token could not be read (e.g. a wrong
	// encryption key).
	Error string `json:"error,omitempty"`
}

func (f *Flow) status(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("integration")
	if f.cfg.Authorize != nil {
		if err := f.cfg.Authorize(r); err != nil {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "not allowed: " + err.Error()})
			return
		}
	}
	secs, ok := f.sections(name)
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no integration %q", name)})
		return
	}
	st := Status{Integration: name, LoggedIn: len(secs) > 0, Sections: []SectionStatus{}}
	for i, c := range secs {
		ss := f.sectionStatus(name, i, len(secs), c)
		st.LoggedIn = st.LoggedIn && ss.LoggedIn
		if ss.NeedsLogin && !st.NeedsLogin {
			st.NeedsLogin, st.Reason, st.RefusedAt = true, ss.Reason, ss.RefusedAt
		}
		st.Sections = append(st.Sections, ss)
	}
	writeJSON(w, http.StatusOK, st)
}

// sectionStatus reads the stored login of section i (of n) of integration
// name.
func (f *Flow) sectionStatus(name string, i, n int, c auth.Config) SectionStatus {
	ss := SectionStatus{Section: i, ClientID: c.ClientID, TokenURL: c.TokenURL, Scopes: c.Scopes, RedirectURI: f.RedirectURL(name, c)}
	t, err := f.cfg.Store.Load(auth.StoreKey(c))
	login := f.basePath + Prefix + url.PathEscape(name) + "/start"
	if n > 1 {
		login += "?section=" + strconv.Itoa(i)
	}
	switch refusal := auth.RefusalOf(t); {
	case err != nil:
		ss.Error = err.Error()
	case refusal != nil:
		at := refusal.At.UTC()
		ss.NeedsLogin, ss.RefusedAt = true, &at
		ss.Reason = "the partner refused the login (" + clip(refusal.Reason) + "); log in again at " + login
	case t == nil || (t.AccessToken == "" && t.RefreshToken == ""):
		ss.NeedsLogin, ss.Reason = true, "not logged in; log in at "+login
	default:
		ss.LoggedIn = true
		ss.RefreshToken = t.RefreshToken != ""
		if !t.Expiry.IsZero() {
			e := t.Expiry.UTC()
			ss.Expiry, ss.Expired = &e, !f.now().Before(e)
		}
	}
	return ss
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// page answers a small HTML page showing msg, escaped.
func page(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html>\n<meta charset=\"utf-8\"><title>plumb</title>\n<p>%s</p>\n", html.EscapeString(msg))
}

// clip bounds partner-supplied text shown on a page or logged.
func clip(s string) string {
	const n = 200
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func redact(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return s
}
