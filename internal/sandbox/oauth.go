package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ---- oauth2 client credentials (seed: OAuth 2.0) ----

// Scopes the sandbox's OAuth2 server grants. /secure/leads needs ScopeWrite.
const (
	ScopeRead  = "leads.read"
	ScopeWrite = "leads.write"
)

// RevokePrefix is the local part of emails that make /secure/leads revoke
// the token that carries them (every 1st of 2 times it sees the address),
// the way a partner revokes a token after a key rotation: the call gets a
// 401 and a new token works.
const RevokePrefix = "revoked@"

// TokenLifetime is the expires_in of the tokens /oauth/token issues.
const TokenLifetime = time.Hour

// oauthServer is a client-credentials token endpoint and an API that
// needs its tokens. It remembers the tokens it issued.
type oauthServer struct {
	mu     sync.Mutex
	tokens map[string]*issued
	seen   map[string]int // RevokePrefix emails → times seen
}

type issued struct {
	scopes  []string
	expiry  time.Time
	revoked bool
}

func newOAuthServer() *oauthServer {
	return &oauthServer{tokens: map[string]*issued{}, seen: map[string]int{}}
}

func (o *oauthServer) register(mux *http.ServeMux) {
	mux.HandleFunc("POST /oauth/token", o.token)
	mux.HandleFunc("POST /secure/leads", o.leads)
}

// token implements RFC 6749 §4.4 with client authentication by HTTP Basic
// (§2.3.1) or by client_id/client_secret form parameters.
func (o *oauthServer) token(w http.ResponseWriter, r *http.Request) {
	oauthErr := func(status int, code, desc string) {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="oauth"`)
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, status, map[string]any{"error": code, "error_description": desc})
	}
	if !mediaType(r, "application/x-www-form-urlencoded") {
		oauthErr(http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		oauthErr(http.StatusBadRequest, "invalid_request", "malformed form body")
		return
	}
	f := r.PostForm
	id, secret, basic := r.BasicAuth()
	if basic && (f.Get("client_id") != "" && f.Get("client_id") != id || f.Has("client_secret")) {
		oauthErr(http.StatusBadRequest, "invalid_request", "use one client authentication method")
		return
	}
	if !basic {
		id, secret = f.Get("client_id"), f.Get("client_secret")
	}
	if id != ClientID || secret != ClientSecret {
		oauthErr(http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret")
		return
	}
	if g := f.Get("grant_type"); g != "client_credentials" {
		oauthErr(http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
		return
	}
	scopes := strings.Fields(f.Get("scope"))
	if len(scopes) == 0 {
		scopes = []string{ScopeRead}
	}
	for _, s := range scopes {
		if s != ScopeRead && s != ScopeWrite {
			oauthErr(http.StatusBadRequest, "invalid_scope", "unknown scope "+s)
			return
		}
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := "at-" + hex.EncodeToString(b)
	o.mu.Lock()
	o.tokens[tok] = &issued{scopes: scopes, expiry: time.Now().Add(TokenLifetime)}
	o.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "token_type": "Bearer", "expires_in": int(TokenLifetime / time.Second),
		"scope": strings.Join(scopes, " "),
	})
}

// check validates r's bearer token and scope; it answers the error itself.
func (o *oauthServer) check(w http.ResponseWriter, r *http.Request, scope string) (string, bool) {
	deny := func(status int, code, desc string) (string, bool) {
		w.Header().Set("WWW-Authenticate", `Bearer error="`+code+`", error_description="`+desc+`"`)
		jsonError(w, status, "%s: %s", code, desc)
		return "", false
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return deny(http.StatusUnauthorized, "invalid_request", "a bearer token is required")
	}
	o.mu.Lock()
	t := o.tokens[tok]
	o.mu.Unlock()
	switch {
	case t == nil:
		return deny(http.StatusUnauthorized, "invalid_token", "unknown token")
	case t.revoked:
		return deny(http.StatusUnauthorized, "invalid_token", "the token was revoked")
	case time.Now().After(t.expiry):
		return deny(http.StatusUnauthorized, "invalid_token", "the token expired")
	}
	for _, s := range t.scopes {
		if s == scope {
			return tok, true
		}
	}
	return deny(http.StatusForbidden, "insufficient_scope", "the token lacks scope "+scope)
}

func (o *oauthServer) leads(w http.ResponseWriter, r *http.Request) {
	tok, ok := o.check(w, r, ScopeWrite)
	if !ok {
		return
	}
	var in struct {
		Email     string `json:"email"`
		FirstName string `json:"first_name"`
		LastName  string `json:"last_name"`
		Source    string `json:"source"`
	}
	if !decodeJSON(w, r, &in) || !required(w, "email", in.Email) {
		return
	}
	if strings.HasPrefix(strings.ToLower(in.Email), RevokePrefix) {
		o.mu.Lock()
		o.seen[in.Email]++
		revoke := o.seen[in.Email]%2 == 1
		if revoke {
			o.tokens[tok].revoked = true
		}
		o.mu.Unlock()
		if revoke {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="the token was revoked"`)
			jsonError(w, http.StatusUnauthorized, "invalid_token: the token was revoked")
			return
		}
	}
	if !validEmail(in.Email) {
		jsonError(w, http.StatusUnprocessableEntity, "%s is not a deliverable address", in.Email)
		return
	}
	if domain(in.Email) == DuplicateDomain {
		jsonError(w, http.StatusConflict, "duplicate lead: %s was submitted before", in.Email)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": "S-" + hash(in.Email), "status": "accepted"})
}

const oauthIndex = `POST /oauth/token            client_credentials (HTTP Basic or form client auth), scope leads.read|leads.write -> {access_token, expires_in}
POST /secure/leads           Authorization: Bearer (scope leads.write), JSON {email, first_name, last_name, source}
`
