package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// Login is an OAuth2 authorization-code login in progress: a loopback HTTP
// server waiting for the provider to redirect the user's browser back with
// a code. Send the user to [Login.AuthURL], then call [Login.Wait].
//
// The authorization request uses PKCE (S256) and a random state; the
// callback is rejected unless its state matches.
type Login struct {
	conf     *oauth2.Config
	opts     options
	key      string
	secret   string
	tokenURL string
	params   []oauth2.AuthCodeOption
	state    string
	verifier string
	authURL  string
	path     string

	srv     *http.Server
	served  chan struct{} // closed when Serve returns
	results chan callback // the first callback with the right state
	done    chan struct{} // closed by Close
	waited  atomic.Bool
	once    sync.Once
}

type callback struct {
	code  string
	err   error
	reply chan error // Wait's verdict, shown in the browser
}

// StartLogin starts an authorization-code login for cfg (type oauth2,
// grant authorization_code), which it validates like [New]; a
// [WithTokenStore] option is required. It listens on 127.0.0.1 — on the
// port of cfg.RedirectURL when set (which must then be an http URL on a
// loopback host), else on a free port with redirect URL
// http://127.0.0.1:<port>/callback. ctx bounds only the start-up.
//
// The caller must call Wait (or Close) to release the listener.
func StartLogin(ctx context.Context, cfg Config, opts ...Option) (*Login, error) {
	if cfg.Type != TypeOAuth2 || cfg.Grant != GrantAuthorizationCode {
		return nil, errors.New("auth: login needs type oauth2 with grant authorization_code")
	}
	o := buildOptions(opts)
	if _, err := newOAuth2(cfg, o); err != nil {
		return nil, err
	}
	style, _ := authStyle(cfg.AuthStyle) // validated by newOAuth2

	listenHost, port, path := "127.0.0.1", "0", "/callback"
	if cfg.RedirectURL != "" {
		u, err := url.Parse(cfg.RedirectURL)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return nil, errors.New("auth: oauth2 redirect_url must be an http://127.0.0.1:<port>/<path> (loopback) URL")
		}
		switch h := u.Hostname(); h {
		case "localhost":
		default:
			ip := net.ParseIP(h)
			if ip == nil || !ip.IsLoopback() {
				return nil, fmt.Errorf("auth: oauth2 redirect_url host %q is not a loopback address", h)
			}
			listenHost = h
		}
		port = u.Port()
		if port == "" {
			port = "80"
		}
		path = u.Path
		if path == "" {
			path = "/"
		}
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", net.JoinHostPort(listenHost, port))
	if err != nil {
		return nil, fmt.Errorf("auth: login callback server: %w", err)
	}
	conf := oauthConfig(cfg, style)
	if cfg.RedirectURL == "" {
		conf.RedirectURL = "http://" + net.JoinHostPort(listenHost, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)) + path
	}
	l := &Login{
		conf:     conf,
		opts:     o,
		key:      StoreKey(cfg),
		secret:   cfg.ClientSecret,
		tokenURL: cfg.TokenURL,
		state:    rand.Text(),
		verifier: oauth2.GenerateVerifier(),
		path:     path,
		served:   make(chan struct{}),
		results:  make(chan callback, 1),
		done:     make(chan struct{}),
	}
	for k, v := range cfg.Params {
		l.params = append(l.params, oauth2.SetAuthURLParam(k, v))
	}
	authOpts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(l.verifier)}, l.params...)
	l.authURL = conf.AuthCodeURL(l.state, authOpts...)
	l.srv = &http.Server{
		Handler:           http.HandlerFunc(l.serveCallback),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		defer close(l.served)
		_ = l.srv.Serve(ln) // returns when Close shuts the server down
	}()
	return l, nil
}

// AuthURL is the provider URL to open in the user's browser.
func (l *Login) AuthURL() string { return l.authURL }

// RedirectURL is the loopback callback URL the provider redirects to.
func (l *Login) RedirectURL() string { return l.conf.RedirectURL }

func (l *Login) serveCallback(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != l.path {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(l.state)) != 1 {
		// Not our authorization request (stale tab, or forged): ignore it
		// and keep waiting for the real one.
		page(w, http.StatusBadRequest, "plumb: login failed: the state parameter does not match this login. Start the login again.")
		return
	}
	cb := callback{code: q.Get("code"), reply: make(chan error, 1)}
	if e := q.Get("error"); e != "" {
		cb.err = fmt.Errorf("auth: authorization denied by the provider: %q", e)
		if d := q.Get("error_description"); d != "" {
			cb.err = fmt.Errorf("auth: authorization denied by the provider: %q: %q", e, d)
		}
	} else if cb.code == "" {
		cb.err = errors.New("auth: the authorization callback carries no code")
	}
	select {
	case l.results <- cb:
	default:
		page(w, http.StatusConflict, "plumb: this login has already received its answer.")
		return
	}
	select {
	case err := <-cb.reply:
		verdict(w, err)
	case <-l.done:
		// Wait replies before closing: prefer its verdict if present.
		select {
		case err := <-cb.reply:
			verdict(w, err)
		default:
			page(w, http.StatusServiceUnavailable, "plumb: the login was cancelled.")
		}
	case <-r.Context().Done():
	}
}

func verdict(w http.ResponseWriter, err error) {
	if err != nil {
		page(w, http.StatusBadRequest, "plumb: login failed: "+err.Error())
		return
	}
	page(w, http.StatusOK, "plumb: login complete. You can close this window and return to the terminal.")
}

func page(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html><title>plumb</title><p>%s</p>\n", html.EscapeString(msg))
}

// Wait waits for the provider's callback (or ctx), exchanges the code with
// the PKCE verifier, saves the token in the TokenStore under
// StoreKey(cfg) and shuts the callback server down. The browser is shown
// whether it worked. Wait may be called once.
func (l *Login) Wait(ctx context.Context) (*oauth2.Token, error) {
	if !l.waited.CompareAndSwap(false, true) {
		return nil, errors.New("auth: Login.Wait called twice")
	}
	defer l.Close()
	select {
	case cb := <-l.results:
		t, err := l.finish(ctx, cb)
		cb.reply <- err
		return t, err
	case <-l.done:
		return nil, errors.New("auth: login closed")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *Login) finish(ctx context.Context, cb callback) (*oauth2.Token, error) {
	if cb.err != nil {
		return nil, cb.err
	}
	opts := append([]oauth2.AuthCodeOption{oauth2.VerifierOption(l.verifier)}, l.params...)
	xctx := context.WithValue(ctx, oauth2.HTTPClient, l.opts.client)
	t, err := l.conf.Exchange(xctx, cb.code, opts...)
	if err != nil {
		return nil, tokenRequestError(ctx, l.tokenURL, err, []string{l.secret, cb.code, l.verifier})
	}
	nt, _ := rebase(l.opts.now(), t)
	if err := l.opts.store.Save(l.key, nt); err != nil {
		return nil, fmt.Errorf("auth: login: saving the token: %w", err)
	}
	return nt, nil
}

// Close stops the callback server; a pending Wait returns an error. It is
// safe to call more than once and after Wait.
func (l *Login) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err = l.srv.Shutdown(ctx); err != nil {
			err = l.srv.Close()
		}
		<-l.served
	})
	return err
}
