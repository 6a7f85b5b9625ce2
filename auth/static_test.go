package auth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/plumbhq/plumb/auth"
)

// echo answers with what it received.
func echo() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		_ = json.NewEncoder(w).Encode(map[string]any{
			"headers": r.Header, "query": r.URL.Query(), "raw_query": r.URL.RawQuery,
			"basic": ok, "user": u, "pass": p,
		})
	}))
}

type echoed struct {
	Headers  http.Header         `json:"headers"`
	Query    map[string][]string `json:"query"`
	RawQuery string              `json:"raw_query"`
	Basic    bool                `json:"basic"`
	User     string              `json:"user"`
	Pass     string              `json:"pass"`
}

func roundTrip(t *testing.T, a auth.Authenticator, target string) echoed {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, target, nil)
	if err := a.Apply(context.Background(), req, nil); err != nil {
		t.Fatal(err)
	}
	// Applying again (a retry) must not duplicate anything.
	if err := a.Apply(context.Background(), req, nil); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e echoed
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestAPIKeyHeader(t *testing.T) {
	ts := echo()
	defer ts.Close()
	a, err := auth.New(auth.Config{Type: "api_key", Value: "k-123"})
	if err != nil {
		t.Fatal(err)
	}
	e := roundTrip(t, a, ts.URL)
	if got := e.Headers.Values("X-Api-Key"); len(got) != 1 || got[0] != "k-123" {
		t.Fatalf("X-API-Key = %v", got)
	}
	b, _ := auth.New(auth.Config{Type: "api_key", In: "header", Name: "Api-Token", Value: "z"})
	if e := roundTrip(t, b, ts.URL); e.Headers.Get("Api-Token") != "z" {
		t.Fatalf("headers %v", e.Headers)
	}
}

func TestAPIKeyQueryKeepsParamsAndEscapes(t *testing.T) {
	ts := echo()
	defer ts.Close()
	a, err := auth.New(auth.Config{Type: "api_key", In: "query", Value: "a b&c=d/é"})
	if err != nil {
		t.Fatal(err)
	}
	e := roundTrip(t, a, ts.URL+"/p?source=web&tag=x%2Cy&api_key=stale")
	if got := e.Query["api_key"]; len(got) != 1 || got[0] != "a b&c=d/é" {
		t.Fatalf("api_key = %v (raw %q)", got, e.RawQuery)
	}
	if e.Query["source"][0] != "web" || e.Query["tag"][0] != "x,y" {
		t.Fatalf("existing params lost: %v", e.Query)
	}
	if !strings.HasPrefix(e.RawQuery, "source=web&tag=x%2Cy&") {
		t.Fatalf("existing params re-encoded: %q", e.RawQuery)
	}
	b, _ := auth.New(auth.Config{Type: "api_key", In: "query", Name: "key", Value: "v"})
	if e := roundTrip(t, b, ts.URL); e.RawQuery != "key=v" {
		t.Fatalf("raw query %q", e.RawQuery)
	}
}

func TestBasicAndBearer(t *testing.T) {
	ts := echo()
	defer ts.Close()
	a, err := auth.New(auth.Config{Type: "basic", Username: "u", Password: "p:w"})
	if err != nil {
		t.Fatal(err)
	}
	if e := roundTrip(t, a, ts.URL); !e.Basic || e.User != "u" || e.Pass != "p:w" {
		t.Fatalf("basic: %+v", e)
	}
	b, err := auth.New(auth.Config{Type: "bearer", Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	if e := roundTrip(t, b, ts.URL); e.Headers.Get("Authorization") != "Bearer tok" {
		t.Fatalf("bearer: %v", e.Headers)
	}
}

func TestRotateSkipsBadTokenAfterReauth(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Auth-Token") == "t2" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, r.Header.Get("X-Auth-Token"))
	}))
	defer ts.Close()
	a, err := auth.New(auth.Config{Type: "rotate", Tokens: []string{"t1", "t2", "t3"}})
	if err != nil {
		t.Fatal(err)
	}
	next := func() (*http.Request, int) {
		req, _ := http.NewRequest(http.MethodGet, ts.URL, nil)
		if err := a.Apply(context.Background(), req, nil); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return req, resp.StatusCode
	}
	var seen []string
	for range 3 {
		req, status := next()
		seen = append(seen, req.Header.Get("X-Auth-Token"))
		if status == http.StatusUnauthorized {
			if err := a.(auth.Reauther).Reauth(context.Background(), req); err != nil {
				t.Fatal(err)
			}
		}
	}
	if strings.Join(seen, ",") != "t1,t2,t3" {
		t.Fatalf("round robin order %v", seen)
	}
	for range 6 {
		req, status := next()
		if status != http.StatusOK || req.Header.Get("X-Auth-Token") == "t2" {
			t.Fatalf("bad token used again: %q", req.Header.Get("X-Auth-Token"))
		}
	}
	// Marking the rest bad exhausts the list.
	re := a.(auth.Reauther)
	for _, tok := range []string{"t1", "t3"} {
		req, _ := http.NewRequest(http.MethodGet, ts.URL, nil)
		req.Header.Set("X-Auth-Token", tok)
		err = re.Reauth(context.Background(), req)
	}
	if err == nil || strings.Contains(err.Error(), "t1") {
		t.Fatalf("exhausted Reauth: %v", err)
	}
	req, _ := http.NewRequest(http.MethodGet, ts.URL, nil)
	if err := a.Apply(context.Background(), req, nil); err == nil {
		t.Fatal("Apply succeeded with every token bad")
	}
}

func TestRotateConcurrentRoundRobin(t *testing.T) {
	a, _ := auth.New(auth.Config{Type: "rotate", Header: "Authorization", Prefix: "Token ", Tokens: []string{"a", "b"}})
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
			_ = a.Apply(context.Background(), req, nil)
			mu.Lock()
			counts[req.Header.Get("Authorization")]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts["Token a"] != 50 || counts["Token b"] != 50 {
		t.Fatalf("counts %v", counts)
	}
}

func TestNewValidation(t *testing.T) {
	const secret = "SuperSecretValue"
	cases := []struct {
		cfg  auth.Config
		want string
	}{
		{auth.Config{}, "auth: needs type"},
		{auth.Config{Type: "magic"}, `unknown type "magic"`},
		{auth.Config{Type: "api_key"}, "api_key needs value"},
		{auth.Config{Type: "api_key", In: "cookie", Value: secret}, `api_key in "cookie" is not one of header, query`},
		{auth.Config{Type: "api_key", Name: "Bad Name", Value: secret}, "not a valid header name"},
		{auth.Config{Type: "api_key", Value: secret + "\r\nX-Evil: 1"}, "api_key value contains control characters"},
		{auth.Config{Type: "basic", Password: secret}, "basic needs username"},
		{auth.Config{Type: "bearer"}, "bearer needs token"},
		{auth.Config{Type: "bearer", Token: secret + "\n"}, "bearer token contains control characters"},
		{auth.Config{Type: "oauth2", ClientID: "id", ClientSecret: secret}, "auth: oauth2 needs token_url"},
		{auth.Config{Type: "oauth2", TokenURL: "not a url", ClientID: "id", ClientSecret: secret}, "token_url must be an absolute http(s) URL"},
		{auth.Config{Type: "oauth2", TokenURL: "https://a/t", ClientSecret: secret}, "oauth2 needs client_id"},
		{auth.Config{Type: "oauth2", TokenURL: "https://a/t", ClientID: "id"}, "client_credentials needs client_secret"},
		{auth.Config{Type: "oauth2", Grant: "password", TokenURL: "https://a/t", ClientID: "id", ClientSecret: secret}, `oauth2 grant "password" is not one of client_credentials, authorization_code`},
		{auth.Config{Type: "oauth2", AuthStyle: "cookie", TokenURL: "https://a/t", ClientID: "id", ClientSecret: secret}, `auth_style "cookie" is not one of header, body`},
		{auth.Config{Type: "oauth2", Grant: "authorization_code", TokenURL: "https://a/t", ClientID: "id", ClientSecret: secret}, "oauth2 needs auth_url"},
		{auth.Config{Type: "hmac"}, "hmac needs secret"},
		{auth.Config{Type: "hmac", Secret: secret, Algorithm: "md5"}, `hmac algorithm "md5" is not one of sha256, sha512`},
		{auth.Config{Type: "hmac", Secret: secret, Encoding: "hexx"}, `hmac encoding "hexx" is not one of hex, base64, base64url`},
		{auth.Config{Type: "hmac", Secret: secret, TimestampFormat: "iso"}, `timestamp_format "iso" is not one of unix, unix_ms, rfc3339`},
		{auth.Config{Type: "hmac", Secret: secret, SignatureHeader: "X-T", TimestampHeader: "x-t"}, "must differ"},
		{auth.Config{Type: "rotate"}, "rotate needs tokens"},
		{auth.Config{Type: "rotate", Tokens: []string{secret, ""}}, "rotate needs tokens[1]"},
	}
	for _, tc := range cases {
		_, err := auth.New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.cfg.Type, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks the secret: %v", err)
		}
	}
}

func TestFileStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "tokens")
	st := auth.NewFileStore(dir)
	if tok, err := st.Load("missing"); tok != nil || err != nil {
		t.Fatalf("missing: %v, %v", tok, err)
	}
	if err := st.Delete("missing"); err != nil {
		t.Fatalf("delete missing: %v", err)
	}
	want := &oauth2.Token{AccessToken: "at", TokenType: "Bearer", RefreshToken: "rt", Expiry: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	key := "weird/../key with spaces"
	if err := st.Save(key, want); err != nil {
		t.Fatal(err)
	}
	got, err := st.Load(key)
	if err != nil || got.AccessToken != "at" || got.RefreshToken != "rt" || !got.Expiry.Equal(want.Expiry) || got.TokenType != "Bearer" {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	p := st.Path(key)
	if filepath.Dir(p) != dir {
		t.Fatalf("key escaped the directory: %s", p)
	}
	fi, _ := os.Stat(p)
	di, _ := os.Stat(dir)
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Fatalf("modes file %v dir %v", fi.Mode().Perm(), di.Mode().Perm())
	}
	// Atomic replacement: concurrent saves and loads never see a partial
	// file, and no temporary files are left behind.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := st.Save(key, &oauth2.Token{AccessToken: fmt.Sprintf("at-%02d-%s", i, strings.Repeat("x", 4096))}); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			tok, err := st.Load(key)
			if err != nil || tok == nil || !strings.HasPrefix(tok.AccessToken, "at") {
				t.Errorf("partial read: %v", err)
			}
		}()
	}
	wg.Wait()
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want 1", len(entries))
	}
	if err := st.Delete(key); err != nil {
		t.Fatal(err)
	}
	if tok, err := st.Load(key); tok != nil || err != nil {
		t.Fatalf("after delete: %v, %v", tok, err)
	}
	// A corrupt file is an error that does not echo its content.
	_ = os.WriteFile(st.Path("bad"), []byte(`{"access_token": 42, "refresh_token": "leak`), 0o600)
	if _, err := st.Load("bad"); err == nil || strings.Contains(err.Error(), "leak") {
		t.Fatalf("corrupt file: %v", err)
	}
}

func TestStoreKey(t *testing.T) {
	base := auth.Config{Type: "oauth2", TokenURL: "https://a/t", ClientID: "id", ClientSecret: "sec", Scopes: []string{"b", "a"}}
	k := auth.StoreKey(base)
	if len(k) != 64 || strings.Contains(k, "sec") {
		t.Fatalf("key %q", k)
	}
	same := base
	same.ClientSecret = "rotated"
	same.Scopes = []string{"a", "b"}
	if auth.StoreKey(same) != k {
		t.Fatal("key depends on the secret or scope order")
	}
	other := base
	other.ClientID = "id2"
	if auth.StoreKey(other) == k {
		t.Fatal("different clients share a key")
	}
	code := base
	code.Grant = "authorization_code"
	if auth.StoreKey(code) == k {
		t.Fatal("different grants share a key")
	}
}

func TestConfigStringRedacts(t *testing.T) {
	c := auth.Config{Type: "oauth2", ClientID: "visible-id", ClientSecret: "hidden-1", Value: "hidden-2", Password: "hidden-3",
		Token: "hidden-4", Secret: "hidden-5", Tokens: []string{"hidden-6"}}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%v", &c)} {
		if strings.Contains(s, "hidden") || !strings.Contains(s, "visible-id") {
			t.Fatalf("Config printed as %s", s)
		}
	}
}
