package engine

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestAPIKeyAuthAndStepOverride(t *testing.T) {
	srv := newServer(t, map[string]http.HandlerFunc{"/": reply(200, "application/json", `{}`)})
	src := `version: 1
name: a
settings: { base_url: {}, api_key: { secret: true, required: true } }
auth: { type: api_key, in: query, name: key, value: "{{settings.api_key}}" }
steps:
  - name: signed
    request: { url: "{{settings.base_url}}/a?x=1" }
  - name: public
    auth: { type: none }
    request: { url: "{{settings.base_url}}/b" }
  - name: basic
    auth: { type: basic, username: demo, password: "{{settings.api_key}}" }
    request: { url: "{{settings.base_url}}/c" }
`
	r := run(t, plan(t, src), nil, map[string]any{"base_url": srv.URL, "api_key": "k&1"})
	wantOutcome(t, r, Success)
	reqs := srv.requests()
	if reqs[0].Query.Get("key") != "k&1" || reqs[0].Query.Get("x") != "1" {
		t.Fatalf("api key query %q", reqs[0].RawQuery)
	}
	if reqs[1].RawQuery != "" || reqs[1].Header.Get("Authorization") != "" {
		t.Fatalf("auth: none still signed: %+v", reqs[1])
	}
	if u, p, ok := (&http.Request{Header: reqs[2].Header}).BasicAuth(); !ok || u != "demo" || p != "k&1" {
		t.Fatalf("basic auth %q %q", u, p)
	}
	if strings.Contains(r.Steps[0].URL, "k&1") || strings.Contains(r.Steps[0].URL, "k%261") {
		t.Fatalf("api key in result URL %q", r.Steps[0].URL)
	}
}

func TestAuthValuesReadOnlySettings(t *testing.T) {
	src := "version: 1\nname: a\nauth: { type: bearer, token: \"{{lead.token}}\" }\nsteps:\n  - name: s\n    request: { url: \"http://x\" }\n"
	_, err := Parse("a.yaml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "a.yaml:3:30: auth values can only read settings, not lead") {
		t.Fatalf("err = %v", err)
	}
	// a value no setting can give is a load error; one a setting renders
	// empty fails at bind, at the section
	src = "version: 1\nname: a\nauth: { type: oauth2 }\nsteps:\n  - name: s\n    request: { url: \"http://x\" }\n"
	if _, err := Parse("test.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), "test.yaml:3:7: auth: oauth2 needs token_url") {
		t.Fatalf("load err = %v", err)
	}
	src = "version: 1\nname: a\nsettings: { t: { default: \"\" } }\nauth: { type: oauth2, token_url: \"{{settings.t}}\", client_id: c, client_secret: s }\nsteps:\n  - name: s\n    request: { url: \"http://x\" }\n"
	p := plan(t, src)
	if _, err := p.Settings(nil, nil); err == nil || !strings.Contains(err.Error(), "test.yaml:4:7: auth: oauth2 needs token_url") {
		t.Fatalf("settings err = %v", err)
	}
}

// TestOAuth2ReauthOnce: the API rejects the first token; the default 401
// rule drops it, fetches a new one and retries exactly once.
func TestOAuth2ReauthOnce(t *testing.T) {
	var issued atomic.Int32
	var valid sync.Map
	mux := http.NewServeMux()
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		id, secret, _ := r.BasicAuth()
		if id == "" {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		if id != "cid" || secret != "csecret" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(401)
			io.WriteString(w, `{"error":"invalid_client"}`)
			return
		}
		n := issued.Add(1)
		tok := fmt.Sprintf("tok-%d", n)
		if n > 1 {
			valid.Store(tok, true) // the first token is "revoked"
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"bearer","expires_in":3600}`, tok)
	})
	var calls atomic.Int32
	mux.HandleFunc("/api", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if _, ok := valid.Load(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")); !ok {
			w.WriteHeader(401)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	src := `version: 1
name: o
settings: { base_url: {}, client_secret: { secret: true } }
auth:
  type: oauth2
  token_url: "{{settings.base_url}}/token"
  client_id: cid
  client_secret: "{{settings.client_secret}}"
steps:
  - name: s
    request: { url: "{{settings.base_url}}/api" }
    capture: { ok: { json: ok } }
`
	var logs bytes.Buffer
	var dumps []string
	var mu sync.Mutex
	p := plan(t, src, WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		WithEvents(&recorder{w: &logs}), withObserver(func(_ context.Context, ex *Exchange) {
			b, _ := json.Marshal(ex)
			mu.Lock()
			dumps = append(dumps, string(b))
			mu.Unlock()
		}))
	r := run(t, p, nil, map[string]any{"base_url": srv.URL, "client_secret": "csecret"})
	wantOutcome(t, r, Success)
	if issued.Load() != 2 || calls.Load() != 2 || r.Steps[0].Attempts != 2 {
		t.Fatalf("tokens %d, calls %d, attempts %d", issued.Load(), calls.Load(), r.Steps[0].Attempts)
	}
	// a wrong secret: a clear error naming the token URL, never the secret
	r = run(t, p, nil, map[string]any{"base_url": srv.URL, "client_secret": "wrong-s3cret"})
	wantOutcome(t, r, Error)
	if !strings.Contains(r.Reason, srv.URL+"/token") {
		t.Fatalf("reason %q", r.Reason)
	}
	all, _ := json.Marshal(r)
	everything := string(all) + logs.String() + strings.Join(dumps, "\n")
	for _, secret := range []string{"csecret", "wrong-s3cret", "tok-2"} {
		if strings.Contains(everything, secret) {
			t.Fatalf("secret %q leaked into results, logs or dumps", secret)
		}
	}
}

// TestHMACResignedOnRetry: the partner verifies signatures with its own
// code; a retried request carries a fresh timestamp and signature.
func TestHMACResignedOnRetry(t *testing.T) {
	var mu sync.Mutex
	var stamps []string
	var tries atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts := r.Header.Get("X-Timestamp")
		mac := hmac.New(sha256.New, []byte("hmac-key"))
		io.WriteString(mac, r.Method+r.URL.Path+ts+string(body))
		if !hmac.Equal([]byte(hex.EncodeToString(mac.Sum(nil))), []byte(r.Header.Get("X-Signature"))) {
			w.WriteHeader(403)
			return
		}
		mu.Lock()
		stamps = append(stamps, ts)
		mu.Unlock()
		if tries.Add(1) == 1 {
			w.WriteHeader(503)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	src := `version: 1
name: h
settings: { base_url: {}, secret: { secret: true } }
auth: { type: hmac, secret: "{{settings.secret}}" }
steps:
  - name: s
    request: { url: "{{settings.base_url}}/sign", body: { json: { email: "{{lead.email}}" } } }
    retry: [ { on: [503], action: retry, backoff: { initial: 2s, jitter: false } } ]
`
	r := run(t, plan(t, src), map[string]any{"email": "a@b.co"}, map[string]any{"base_url": srv.URL, "secret": "hmac-key"})
	wantOutcome(t, r, Success)
	if len(stamps) != 2 || stamps[0] == stamps[1] {
		t.Fatalf("timestamps %v", stamps)
	}
	r = run(t, plan(t, src), map[string]any{"email": "a@b.co"}, map[string]any{"base_url": srv.URL, "secret": "wrong"})
	wantOutcome(t, r, Failure)
}
