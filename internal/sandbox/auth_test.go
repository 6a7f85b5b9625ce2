package sandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

type answer struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, c *http.Client, method, u string, header map[string]string, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func want(t *testing.T, what string, a answer, status int, contains string) {
	t.Helper()
	if a.status != status || !strings.Contains(a.body, contains) {
		t.Errorf("%s: %d %s, want %d containing %q", what, a.status, a.body, status, contains)
	}
}

func TestHMACSignedLeads(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	body := `{"email":"a@mail.example","product":"auto","amount":10}`
	signed := func(secret, ts, body string) map[string]string {
		return map[string]string{
			"Content-Type": "application/json",
			"X-Timestamp":  ts,
			"X-Signature":  Sign(secret, "POST", "/signed/leads", ts, []byte(body)),
		}
	}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	post := func(h map[string]string, body string) answer {
		return do(t, srv.Client(), "POST", srv.URL+"/signed/leads", h, body)
	}

	want(t, "valid", post(signed(HMACSecret, now, body), body), 200, `"accepted":true`)
	want(t, "tampered body", post(signed(HMACSecret, now, body), strings.Replace(body, "auto", "home", 1)), 401, "bad signature")
	want(t, "wrong secret", post(signed("not-the-secret", now, body), body), 401, "bad signature")
	h := signed(HMACSecret, now, body)
	h["X-Timestamp"] = strconv.FormatInt(time.Now().Unix()+1, 10) // signed for another time
	want(t, "timestamp not signed", post(h, body), 401, "bad signature")
	stale := strconv.FormatInt(time.Now().Add(-6*time.Minute).Unix(), 10)
	want(t, "stale", post(signed(HMACSecret, stale, body), body), 401, "stale request")
	future := strconv.FormatInt(time.Now().Add(6*time.Minute).Unix(), 10)
	want(t, "future", post(signed(HMACSecret, future, body), body), 401, "stale request")
	want(t, "unsigned", post(map[string]string{"Content-Type": "application/json"}, body), 401, "X-Signature are required")
	want(t, "rfc3339 timestamp", post(signed(HMACSecret, time.Now().UTC().Format(time.RFC3339), body), body), 401, "Unix seconds")
	bad := `{"email":"a@invalid.example","product":"auto"}`
	want(t, "undeliverable", post(signed(HMACSecret, now, bad), bad), 422, "not a deliverable address")
	odd := `{"email":"a@mail.example","product":"auto","extra":1}`
	want(t, "unknown field", post(signed(HMACSecret, now, odd), odd), 400, "unknown field")
}

func TestRotateLeads(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	body := `{"email":"a@mail.example","state":"TX"}`
	post := func(tok, version string) answer {
		h := map[string]string{"Content-Type": "application/json", "X-Auth-Version": version}
		if tok != "" {
			h["X-Auth-Token"] = tok
		}
		return do(t, srv.Client(), "POST", srv.URL+"/rotate/leads", h, body)
	}
	want(t, "active", post(ActiveToken, "2.0"), 200, `"status":"accepted"`)
	want(t, "retired", post(RevokedToken, "2.0"), 401, "token retired")
	want(t, "unknown", post("demo-token-z", "2.0"), 401, "invalid or missing")
	want(t, "none", post("", "2.0"), 401, "invalid or missing")
	want(t, "old version", post(ActiveToken, "1.0"), 400, "X-Auth-Version")
}

func TestOAuthServer(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	c := srv.Client()
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	token := func(t *testing.T, header map[string]string, v url.Values) answer {
		t.Helper()
		h := map[string]string{}
		for k, x := range form {
			h[k] = x
		}
		for k, x := range header {
			h[k] = x
		}
		return do(t, c, "POST", srv.URL+"/oauth/token", h, v.Encode())
	}
	basic := func(id, secret string) map[string]string {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth(id, secret)
		return map[string]string{"Authorization": r.Header.Get("Authorization")}
	}
	get := func(t *testing.T, a answer) string {
		t.Helper()
		var out struct {
			AccessToken string `json:"access_token"`
			ExpiresIn   int    `json:"expires_in"`
			Scope       string `json:"scope"`
		}
		if a.status != 200 || json.Unmarshal([]byte(a.body), &out) != nil || out.AccessToken == "" || out.ExpiresIn <= 0 {
			t.Fatalf("token answer %d %s", a.status, a.body)
		}
		if a.header.Get("Cache-Control") != "no-store" {
			t.Errorf("token answer without Cache-Control: no-store")
		}
		return out.AccessToken
	}
	cc := url.Values{"grant_type": {"client_credentials"}, "scope": {ScopeWrite}}
	withForm := url.Values{"grant_type": {"client_credentials"}, "scope": {ScopeWrite}, "client_id": {ClientID}, "client_secret": {ClientSecret}}

	t.Run("token endpoint", func(t *testing.T) {
		a, b := get(t, token(t, basic(ClientID, ClientSecret), cc)), get(t, token(t, nil, withForm))
		if a == b {
			t.Errorf("two token requests got the same token %q", a)
		}
		want(t, "wrong secret (basic)", token(t, basic(ClientID, "nope"), cc), 401, "invalid_client")
		bad := url.Values{"grant_type": {"client_credentials"}, "client_id": {ClientID}, "client_secret": {"nope"}}
		want(t, "wrong secret (form)", token(t, nil, bad), 401, "invalid_client")
		want(t, "no client", token(t, nil, cc), 401, "invalid_client")
		want(t, "two methods", token(t, basic(ClientID, ClientSecret), withForm), 400, "invalid_request")
		want(t, "password grant", token(t, basic(ClientID, ClientSecret), url.Values{"grant_type": {"password"}}), 400, "unsupported_grant_type")
		want(t, "unknown scope", token(t, basic(ClientID, ClientSecret), url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}}), 400, "invalid_scope")
		want(t, "json body", do(t, c, "POST", srv.URL+"/oauth/token", map[string]string{"Content-Type": "application/json"}, `{}`), 400, "invalid_request")
	})

	lead := func(email string) string { return `{"email":"` + email + `","first_name":"A","last_name":"B"}` }
	call := func(t *testing.T, tok, body string) answer {
		t.Helper()
		h := map[string]string{"Content-Type": "application/json"}
		if tok != "" {
			h["Authorization"] = "Bearer " + tok
		}
		return do(t, c, "POST", srv.URL+"/secure/leads", h, body)
	}
	t.Run("token required", func(t *testing.T) {
		tok := get(t, token(t, basic(ClientID, ClientSecret), cc))
		want(t, "valid", call(t, tok, lead("a@mail.example")), 201, `"status":"accepted"`)
		want(t, "no token", call(t, "", lead("a@mail.example")), 401, "bearer token is required")
		want(t, "unknown token", call(t, "at-made-up", lead("a@mail.example")), 401, "unknown token")
		want(t, "static token of token-then-call", call(t, Token(), lead("a@mail.example")), 401, "unknown token")
		read := get(t, token(t, basic(ClientID, ClientSecret), url.Values{"grant_type": {"client_credentials"}}))
		want(t, "read-only token", call(t, read, lead("a@mail.example")), 403, "insufficient_scope")
		want(t, "undeliverable", call(t, tok, lead("x@invalid.example")), 422, "not a deliverable address")
		want(t, "duplicate", call(t, tok, lead("x@duplicate.example")), 409, "duplicate lead")
	})
	t.Run("revocation", func(t *testing.T) {
		tok := get(t, token(t, basic(ClientID, ClientSecret), cc))
		want(t, "revoking lead", call(t, tok, lead("revoked@mail.example")), 401, "revoked")
		want(t, "revoked token", call(t, tok, lead("a@mail.example")), 401, "revoked")
		fresh := get(t, token(t, basic(ClientID, ClientSecret), cc))
		want(t, "retry with a new token", call(t, fresh, lead("revoked@mail.example")), 201, "accepted")
		want(t, "next run revokes again", call(t, fresh, lead("revoked@mail.example")), 401, "revoked")
	})
}

func TestEnrich(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	c := srv.Client()
	call := func(t *testing.T, path, scenario, ref, email string) answer {
		t.Helper()
		h := map[string]string{"Content-Type": "application/json", "X-API-Key": APIKey}
		if scenario != "" {
			h["X-Sandbox-Scenario"] = scenario
		}
		return do(t, c, "POST", srv.URL+path, h, `{"reference":"`+ref+`","email":"`+email+`"}`)
	}
	t.Run("checks", func(t *testing.T) {
		want(t, "normal", call(t, "/enrich/company", "", "r1", "a@acme.example"), 200, `"source":"primary"`)
		want(t, "no key", do(t, c, "POST", srv.URL+"/enrich/company", map[string]string{"Content-Type": "application/json"}, `{}`), 401, "X-API-Key")
		want(t, "no reference", call(t, "/enrich/company", "", "", "a@acme.example"), 400, "reference and email are required")
		want(t, "free mail", call(t, "/enrich/company", "", "r1", "a@freemail.example"), 422, "personal email domain")
		want(t, "unknown scenario", call(t, "/enrich/company", "sunny", "r1", "a@acme.example"), 400, "unknown X-Sandbox-Scenario")
		want(t, "primary down", call(t, "/enrich/company", ScenarioPrimaryDown, "r1", "a@acme.example"), 503, "unavailable")
		want(t, "backup up", call(t, "/enrich/backup", ScenarioPrimaryDown, "r1", "a@acme.example"), 200, `"source":"backup"`)
		want(t, "backup down", call(t, "/enrich/backup", ScenarioAllDown, "r1", "a@acme.example"), 503, "unavailable")
		want(t, "social", call(t, "/enrich/social", "", "r1", "a@acme.example"), 503, "maintenance")
	})
	t.Run("rate limited, per reference", func(t *testing.T) {
		a := call(t, "/enrich/company", ScenarioRateLimited, "r2", "a@acme.example")
		want(t, "first try", a, 429, "rate limit")
		if a.header.Get("Retry-After") != "1" {
			t.Errorf("Retry-After %q", a.header.Get("Retry-After"))
		}
		want(t, "other lead's first try", call(t, "/enrich/company", ScenarioRateLimited, "r3", "a@acme.example"), 429, "")
		want(t, "second try", call(t, "/enrich/company", ScenarioRateLimited, "r2", "a@acme.example"), 200, "primary")
		want(t, "next run", call(t, "/enrich/company", ScenarioRateLimited, "r2", "a@acme.example"), 429, "")
	})
	t.Run("flaky", func(t *testing.T) {
		want(t, "first try", call(t, "/enrich/company", ScenarioFlaky, "r4", "a@acme.example"), 500, "internal error")
		req, _ := http.NewRequest("POST", srv.URL+"/enrich/company", strings.NewReader(`{"reference":"r4","email":"a@acme.example"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", APIKey)
		req.Header.Set("X-Sandbox-Scenario", ScenarioFlaky)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("second try: got HTTP %d, want a dropped connection", resp.StatusCode)
		}
		want(t, "third try", call(t, "/enrich/company", ScenarioFlaky, "r4", "a@acme.example"), 200, "primary")
	})
	t.Run("slow", func(t *testing.T) {
		impatient := &http.Client{Transport: c.Transport, Timeout: 100 * time.Millisecond}
		req, _ := http.NewRequest("POST", srv.URL+"/enrich/company", strings.NewReader(`{"reference":"r5","email":"a@acme.example"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", APIKey)
		req.Header.Set("X-Sandbox-Scenario", ScenarioSlow)
		if resp, err := impatient.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("first try answered %d", resp.StatusCode)
		}
		want(t, "second try", call(t, "/enrich/company", ScenarioSlow, "r5", "a@acme.example"), 200, "primary")
	})
	t.Run("crm", func(t *testing.T) {
		post := func(body string) answer {
			return do(t, c, "POST", srv.URL+"/crm/leads", map[string]string{"Content-Type": "application/json", "X-API-Key": APIKey}, body)
		}
		want(t, "accepted", post(`{"reference":"r1","email":"a@acme.example","company":"Acme","employees":100}`), 201, `"status":"accepted"`)
		want(t, "review", post(`{"reference":"r1","email":"a@acme.example","manual_review":true}`), 201, `"status":"queued_for_review"`)
		want(t, "flag as text", post(`{"reference":"r1","email":"a@acme.example","manual_review":"true"}`), 400, "invalid JSON")
		want(t, "no email", post(`{"reference":"r1"}`), 400, "required")
	})
}
