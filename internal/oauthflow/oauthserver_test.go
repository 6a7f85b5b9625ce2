package oauthflow_test

import (
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

const (
	testClientID     = "plumb-client"
	testClientSecret = "s3cr3t-Client-Value-42"
	testUser         = "test-user"
)

// oauthServer is a real OAuth2 authorization server (go-oauth2) plus a
// protected API that validates bearer tokens against its token store.
type oauthServer struct {
	t       *testing.T
	manager *manage.Manager
	srv     *server.Server
	ts      *httptest.Server

	mu     sync.Mutex
	grants map[string]int // token requests by grant_type
	total  atomic.Int64   // all token requests
}

type serverOpts struct {
	accessExp time.Duration
	formOnly  bool // client authentication in the body only
}

func newOAuthServer(t *testing.T, so serverOpts) *oauthServer {
	t.Helper()
	if so.accessExp == 0 {
		so.accessExp = time.Hour
	}
	m := manage.NewDefaultManager()
	m.SetClientTokenCfg(&manage.Config{AccessTokenExp: so.accessExp})
	m.SetAuthorizeCodeTokenCfg(&manage.Config{AccessTokenExp: so.accessExp, RefreshTokenExp: 24 * time.Hour, IsGenerateRefresh: true})
	m.SetRefreshTokenCfg(&manage.RefreshingConfig{
		AccessTokenExp:     so.accessExp,
		IsGenerateRefresh:  true, // rotate refresh tokens
		IsRemoveAccess:     true,
		IsRemoveRefreshing: true,
	})
	m.MustTokenStorage(store.NewMemoryTokenStore())
	cs := store.NewClientStore()
	if err := cs.Set(testClientID, &models.Client{ID: testClientID, Secret: testClientSecret, Domain: "http://127.0.0.1"}); err != nil {
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
	if so.formOnly {
		srv.SetClientInfoHandler(server.ClientFormHandler)
	}
	srv.SetUserAuthorizationHandler(func(w http.ResponseWriter, r *http.Request) (string, error) {
		return testUser, nil // auto-approve
	})

	o := &oauthServer{t: t, manager: m, srv: srv, grants: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
		if err := srv.HandleAuthorizeRequest(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		o.total.Add(1)
		_ = r.ParseForm()
		o.mu.Lock()
		o.grants[r.Form.Get("grant_type")]++
		o.mu.Unlock()
		_ = srv.HandleTokenRequest(w, r)
	})
	mux.HandleFunc("/api", func(w http.ResponseWriter, r *http.Request) {
		ti, err := srv.ValidationBearerToken(r)
		if err != nil {
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"client": ti.GetClientID(), "user": ti.GetUserID()})
	})
	o.ts = httptest.NewServer(mux)
	t.Cleanup(o.ts.Close)
	return o
}

func (o *oauthServer) tokenURL() string { return o.ts.URL + "/token" }
func (o *oauthServer) authURL() string  { return o.ts.URL + "/authorize" }
func (o *oauthServer) apiURL() string   { return o.ts.URL + "/api" }

func (o *oauthServer) grantCount(g string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.grants[g]
}
