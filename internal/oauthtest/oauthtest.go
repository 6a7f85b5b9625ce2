// Package oauthtest is test support: it starts a real OAuth2 authorization
// server (github.com/go-oauth2/oauth2/v4) on a loopback httptest server,
// together with a protected API that accepts only bearer tokens that server
// issued. Only tests import it.
//
// The server serves:
//
//   - /authorize: the authorization-code grant. It approves every request
//     as [User] and redirects to the loopback callback (any port on the
//     client's host name); PKCE is required.
//   - /token: the client_credentials, authorization_code and refresh_token
//     grants for the one client [ClientID] / [ClientSecret] (in a Basic
//     Authorization header, or the form body with [Options.FormOnly]); the
//     token request may also be a GET. Refresh tokens rotate: a refresh
//     removes the old access and refresh tokens. Every request is counted,
//     in total and by grant_type, and so are the refused ones (an answer
//     of 400 or more, e.g. invalid_grant for a revoked refresh token).
//   - /api: answers {"client": …, "user": …} as application/json for a
//     valid bearer token and 401 {"error":"invalid token"} otherwise.
package oauthtest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	oerrors "github.com/go-oauth2/oauth2/v4/errors"
	"github.com/go-oauth2/oauth2/v4/manage"
	"github.com/go-oauth2/oauth2/v4/models"
	"github.com/go-oauth2/oauth2/v4/server"
	"github.com/go-oauth2/oauth2/v4/store"
)

// The one client the server knows, and the user /authorize approves as.
const (
	// ClientID is the id of the server's only client.
	ClientID = "plumb-client"
	// ClientSecret is the secret of the client ClientID.
	ClientSecret = "s3cr3t-Client-Value-42"
	// User is the user every authorization request is approved as; /api
	// reports it for tokens from the authorization-code grant.
	User = "test-user"
)

// Options adjusts a Server. The zero value is a server whose access
// tokens live an hour and whose /token takes the client credentials from
// a Basic Authorization header only.
type Options struct {
	// AccessExp is how long an access token lives; 0 means an hour.
	// Refresh tokens from the authorization-code grant live 24 hours.
	AccessExp time.Duration
	// FormOnly makes /token take the client credentials from the form
	// body only (client_id and client_secret) instead of Basic auth.
	FormOnly bool
}

// Server is a running OAuth2 authorization server and protected API; New
// starts it and the test's cleanup closes it.
type Server struct {
	t       testing.TB
	manager *manage.Manager
	ts      *httptest.Server

	mu      sync.Mutex
	grants  map[string]int // token requests by grant_type
	refused map[string]int // of them, answered with a status >= 400
	total   atomic.Int64   // all token requests
}

// New starts a Server with the options o and closes it when the test ends.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	if o.AccessExp == 0 {
		o.AccessExp = time.Hour
	}
	m := manage.NewDefaultManager()
	m.SetClientTokenCfg(&manage.Config{AccessTokenExp: o.AccessExp})
	m.SetAuthorizeCodeTokenCfg(&manage.Config{AccessTokenExp: o.AccessExp, RefreshTokenExp: 24 * time.Hour, IsGenerateRefresh: true})
	m.SetRefreshTokenCfg(&manage.RefreshingConfig{
		AccessTokenExp:     o.AccessExp,
		IsGenerateRefresh:  true, // rotate refresh tokens
		IsRemoveAccess:     true,
		IsRemoveRefreshing: true,
	})
	m.MustTokenStorage(store.NewMemoryTokenStore())
	cs := store.NewClientStore()
	if err := cs.Set(ClientID, &models.Client{ID: ClientID, Secret: ClientSecret, Domain: "http://127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	m.MapClientStorage(cs)
	// The loopback callback has a random port: compare host names only.
	m.SetValidateURIHandler(func(base, redirect string) error {
		b, err1 := url.Parse(base)
		r, err2 := url.Parse(redirect)
		if err1 != nil || err2 != nil || b.Hostname() != r.Hostname() {
			return oerrors.ErrInvalidRedirectURI
		}
		return nil
	})

	srv := server.NewDefaultServer(m)
	srv.SetAllowGetAccessRequest(true)
	srv.Config.ForcePKCE = true
	if o.FormOnly {
		srv.SetClientInfoHandler(server.ClientFormHandler)
	}
	srv.SetUserAuthorizationHandler(func(http.ResponseWriter, *http.Request) (string, error) {
		return User, nil // auto-approve
	})

	s := &Server{t: t, manager: m, grants: map[string]int{}, refused: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
		if err := srv.HandleAuthorizeRequest(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		s.total.Add(1)
		_ = r.ParseForm()
		grant := r.Form.Get("grant_type")
		s.mu.Lock()
		s.grants[grant]++
		s.mu.Unlock()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		_ = srv.HandleTokenRequest(rec, r)
		if rec.status >= 400 {
			s.mu.Lock()
			s.refused[grant]++
			s.mu.Unlock()
		}
	})
	mux.HandleFunc("/api", func(w http.ResponseWriter, r *http.Request) {
		ti, err := srv.ValidationBearerToken(r)
		if err != nil {
			http.Error(w, `{"error":"invalid token"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"client": ti.GetClientID(), "user": ti.GetUserID()})
	})
	s.ts = httptest.NewServer(mux)
	t.Cleanup(s.ts.Close)
	return s
}

// URL is the server's base URL, http://127.0.0.1:port with no trailing
// slash.
func (s *Server) URL() string { return s.ts.URL }

// AuthURL is the URL of the authorization endpoint.
func (s *Server) AuthURL() string { return s.ts.URL + "/authorize" }

// TokenURL is the URL of the token endpoint.
func (s *Server) TokenURL() string { return s.ts.URL + "/token" }

// APIURL is the URL of the protected API.
func (s *Server) APIURL() string { return s.ts.URL + "/api" }

// Client returns an HTTP client for the server (that of httptest).
func (s *Server) Client() *http.Client { return s.ts.Client() }

// GrantCount is how many token requests had grant_type g so far.
func (s *Server) GrantCount(g string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.grants[g]
}

// RefusedCount is how many token requests with grant_type g were refused
// (answered with a status of 400 or more) so far.
func (s *Server) RefusedCount(g string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused[g]
}

// statusRecorder notes the status a handler answers with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// RevokeGrant revokes the login that refresh belongs to, as a partner
// does when the user disconnects the app: the refresh token and its access
// token are removed server-side, so a refresh with it is answered 400
// invalid_grant and /api rejects the access token. It fails the test if
// refresh is unknown.
func (s *Server) RevokeGrant(refresh string) {
	s.t.Helper()
	ctx := context.Background()
	ti, err := s.manager.LoadRefreshToken(ctx, refresh)
	if err != nil {
		s.t.Fatalf("oauthtest: RevokeGrant: %v", err)
	}
	if err := s.manager.RemoveAccessToken(ctx, ti.GetAccess()); err != nil {
		s.t.Fatal(err)
	}
	if err := s.manager.RemoveRefreshToken(ctx, refresh); err != nil {
		s.t.Fatal(err)
	}
}

// TokenRequests is how many requests /token has had so far, of any grant
// type and whether or not they succeeded.
func (s *Server) TokenRequests() int64 { return s.total.Load() }

// Revoke removes the access token access server-side, so /api rejects it
// from then on. It fails the test if the token store refuses.
func (s *Server) Revoke(access string) {
	s.t.Helper()
	if err := s.manager.RemoveAccessToken(context.Background(), access); err != nil {
		s.t.Fatal(err)
	}
}
