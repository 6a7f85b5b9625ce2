package serve

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/plumbhq/plumb/internal/testkit"
	"github.com/plumbhq/plumb/steps"
)

// hostRequest sends one request with the given Host header and returns
// the status and body.
func hostRequest(t *testing.T, method, url, host string, hdr ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader([]byte(`{}`)))
	must(t, err)
	req.Host = host
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req) // no redirects followed
	must(t, err)
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes()
}

func hostGet(t *testing.T, url, host string) int {
	t.Helper()
	code, _ := hostRequest(t, http.MethodGet, url, host)
	return code
}

// concrete is a request path for a route pattern.
func concrete(pattern string) string {
	p := strings.NewReplacer("{name}", "partner", "{id}", "k1").Replace(pattern)
	switch p {
	case "/":
		return "/v2/elsewhere"
	case "/v1/oauth/":
		return "/v1/oauth/crm/start"
	}
	return p
}

// openServer is a server without API tokens (so on loopback) with every
// optional route mounted: the console, the OAuth2 install flow and a
// webhook receiver.
func openServer(t *testing.T) *Server {
	t.Helper()
	p := newPartner(t)
	dir := t.TempDir()
	writeIntegration(t, dir, p.URL)
	writeHookIntegration(t, dir, p.URL)
	must(t, os.WriteFile(filepath.Join(dir, "crm.yaml"), []byte(crmYAML), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "crm.settings.yaml"), []byte("base_url: "+p.URL+"\n"), 0o600))
	return testServer(t, Config{Dir: dir, Console: true, TokenKey: bytes.Repeat([]byte{7}, 32)})
}

// TestHostRebindingRefusedOnEveryRoute: without API tokens, every route of
// the API (walked from the table the mux is built from, so a new route is
// checked too), the console and the OAuth2 routes refuse a Host that is
// not a loopback name, with every method the route takes; the same
// requests with a loopback Host are not refused for their Host.
func TestHostRebindingRefusedOnEveryRoute(t *testing.T) {
	s := openServer(t)
	base := "http://" + s.Addr()
	_, port, _ := net.SplitHostPort(s.Addr())
	type req struct{ method, path string }
	var reqs []req
	for _, rt := range s.apiRoutes() {
		p := concrete(rt.pattern)
		if rt.pattern != "/" && !steps.ReservedPath(p) {
			t.Errorf("route %s is not a reserved path: a webhook could take it", rt.pattern)
		}
		for _, m := range rt.methods {
			reqs = append(reqs, req{m, p})
		}
	}
	for _, p := range []string{"/v1/oauth/crm/status", "/v1/oauth/crm/callback?state=x&code=y", "/console", "/console/", "/console/api/integrations", "/console/ops/", "/console/api/v1/dead"} {
		reqs = append(reqs, req{http.MethodGet, p})
	}
	reqs = append(reqs, req{http.MethodPost, "/console/api/run"}, req{http.MethodPost, "/console/api/v1/dead/x/retry"})
	if len(reqs) < 15 {
		t.Fatalf("only %d requests: the route table was not walked", len(reqs))
	}
	bad := []string{"rebind.example", "rebind.example:" + port, "127.0.0.1.rebind.example", "localhost.rebind.example:" + port,
		"0.0.0.0:" + port, "192.168.1.10:" + port, "[2001:db8::1]:" + port, "127.1:" + port}
	for _, r := range reqs {
		for _, host := range bad {
			code, body := hostRequest(t, r.method, base+r.path, host, "X-Plumb-Console", "1")
			if code != http.StatusForbidden || errorCode(t, body) != CodeForbiddenHost {
				t.Errorf("%s %s Host %s: %d %s, want 403 %s", r.method, r.path, host, code, body, CodeForbiddenHost)
			}
		}
		for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LocalHost", "127.0.0.2", "[::1]:" + port} {
			if code, body := hostRequest(t, r.method, base+r.path, host, "X-Plumb-Console", "1"); code == http.StatusForbidden {
				t.Errorf("%s %s Host %s: %d %s, a loopback Host must pass", r.method, r.path, host, code, body)
			}
		}
	}
	// a webhook receiver answers to any Host: its signature authenticates
	// the delivery (a partner comes through a tunnel under a public name)
	code, body := hostRequest(t, http.MethodPost, base+"/v1/hooks/acare", "partner-tunnel.example")
	if code != http.StatusUnauthorized || errorCode(t, body) != CodeMissingSignature {
		t.Errorf("unsigned delivery through a tunnel: %d %s, want 401 %s", code, body, CodeMissingSignature)
	}
	code, _, err := post(base, "/v1/hooks/acare", event(1), hookSecret)
	must(t, err)
	if code != http.StatusOK {
		t.Errorf("signed delivery: %d", code)
	}

	// with API tokens the Host is not what protects the API
	_, c, _ := setup(t, testAPIToken)
	if code, body := hostRequest(t, http.MethodGet, c.base+"/v1/integrations", "plumb.example.com", "Authorization", "Bearer "+testAPIToken); code != 200 {
		t.Errorf("with tokens, a public Host: %d %s", code, body)
	}
}

// TestAccessTokenOnlyOnInstallRoutes: ?access_token= opens the OAuth2
// install routes (a browser cannot send a header) and nothing else: every
// other route of the API refuses it, as does the console.
func TestAccessTokenOnlyOnInstallRoutes(t *testing.T) {
	p := newPartner(t)
	dir := t.TempDir()
	writeIntegration(t, dir, p.URL)
	must(t, os.WriteFile(filepath.Join(dir, "crm.yaml"), []byte(crmYAML), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "crm.settings.yaml"), []byte("base_url: "+p.URL+"\n"), 0o600))
	s := testServer(t, Config{Dir: dir, Tokens: []string{testAPIToken}, TokenKey: bytes.Repeat([]byte{7}, 32)})
	base := "http://" + s.Addr()
	q := "?access_token=" + testAPIToken
	checked := 0
	for _, rt := range s.apiRoutes() {
		if rt.open {
			continue
		}
		for _, m := range rt.methods {
			path := concrete(rt.pattern)
			code, body := hostRequest(t, m, base+path+q, s.Addr())
			if code != http.StatusUnauthorized || errorCode(t, body) != CodeUnauthorized {
				t.Errorf("%s %s with ?access_token=: %d %s, want 401", m, path, code, body)
			}
			// the same token in the header passes
			if code, body := hostRequest(t, m, base+path, s.Addr(), "Authorization", "Bearer "+testAPIToken); code == http.StatusUnauthorized {
				t.Errorf("%s %s with the header: %d %s", m, path, code, body)
			}
			checked++
		}
	}
	if checked < 8 {
		t.Fatalf("only %d routes checked", checked)
	}
	for _, path := range []string{"/v1/oauth/crm/start", "/v1/oauth/crm/status"} {
		if code, body := hostRequest(t, http.MethodGet, base+path+q, s.Addr()); code != http.StatusFound && code != http.StatusOK {
			t.Errorf("%s with ?access_token=: %d %s", path, code, body)
		}
	}
	// a path that climbs out of the install routes is refused before any
	// token is read
	if code, _ := hostRequest(t, http.MethodGet, base+"/v1/oauth/../queue"+q, s.Addr()); code != http.StatusBadRequest {
		t.Errorf("/v1/oauth/../queue: %d, want 400", code)
	}
	if code, _ := hostRequest(t, http.MethodGet, base+"/v1/oauth%2F..%2Fqueue"+q, s.Addr()); code != http.StatusBadRequest {
		t.Errorf("/v1/oauth%%2F..%%2Fqueue: %d, want 400", code)
	}
}

// TestCheckToken: short, repeated, sequential and few-character tokens are
// refused, and the error never quotes them; generated tokens pass.
func TestCheckToken(t *testing.T) {
	weak := []string{"", "t", "t0ken", "15-characters-x", strings.Repeat("a", 64), "abcdefghijklmnopqrstuvwxyz",
		"0123456789abcdefghij", "1234567890123456789012345", "passwordpasswordpassword", "s3cret-token-s3cret-token",
		"hunter2hunter2hunter2", "ababababababababababababababab", strings.Repeat("1", 40) + strings.Repeat("2", 40),
		"ZYXWVUTSRQPONMLKJIHGFEDCBA", "aAbBcCdDeEfFgGhHiIjJkKlL", "1111111111111111111111111111111z",
		"PQORNSMTLUKVJWI"} // the last: 15 characters, all different, steps too
	for _, tok := range weak {
		err := CheckToken(tok)
		if err == nil {
			t.Errorf("%q accepted", tok)
			continue
		}
		if len(tok) >= 4 && strings.Contains(err.Error(), tok[:4]) {
			t.Errorf("the error quotes the token: %v", err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 32)
	for range 500 {
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		for _, tok := range []string{hex.EncodeToString(b[:16]), base64.StdEncoding.EncodeToString(b[:18]), base64.RawURLEncoding.EncodeToString(b)} {
			if err := CheckToken(tok); err != nil {
				t.Errorf("generated token %q refused: %v", tok, err)
			}
		}
	}
	for _, tok := range []string{testAPIToken, testOtherToken, testConsoleToken, "550e8400-e29b-41d4-a716-446655440000"} {
		if err := CheckToken(tok); err != nil {
			t.Errorf("%q refused: %v", tok, err)
		}
	}
}

// TestWeakTokensRefusedAtStart: New refuses a weak API or console token,
// naming it by its place, never by its value.
func TestWeakTokensRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	writeIntegration(t, dir, "http://127.0.0.1:1")
	for _, cfg := range []Config{
		{Tokens: []string{testAPIToken, "x"}},
		{Tokens: []string{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}},
		{Tokens: []string{testAPIToken}, ConsoleTokens: []string{"0123456789abcdefghijklmnop"}, Console: true},
	} {
		cfg.Dir, cfg.DataDir = dir, t.TempDir()
		_, err := New(cfg)
		if err == nil || !strings.Contains(err.Error(), "too weak") {
			t.Errorf("%d/%d tokens: err = %v, want a refusal", len(cfg.Tokens), len(cfg.ConsoleTokens), err)
			continue
		}
		if strings.Contains(err.Error(), "aaaa") || strings.Contains(err.Error(), "0123") {
			t.Errorf("the error quotes the token: %v", err)
		}
	}
}

// TestWrongTokensThrottled: after AuthFailBurst wrong tokens a client is
// answered 429 with Retry-After, even with the right token (tokens are not
// checked while it waits), until the clock gives it another try; another
// client is not affected; the console login and the install routes count
// too. The clock is a manual one: nothing sleeps.
func TestWrongTokensThrottled(t *testing.T) {
	clock := testkit.NewManualClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	p := newPartner(t)
	dir := t.TempDir()
	writeIntegration(t, dir, p.URL)
	must(t, os.WriteFile(filepath.Join(dir, "crm.yaml"), []byte(crmYAML), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "crm.settings.yaml"), []byte("base_url: "+p.URL+"\n"), 0o600))
	s := testServer(t, Config{Dir: dir, Tokens: []string{testAPIToken}, ConsoleTokens: []string{testConsoleToken}, Console: true,
		TokenKey: bytes.Repeat([]byte{7}, 32), now: clock.Now})
	base := "http://" + s.Addr()
	wrong := client{t: t, base: base, token: strings.Repeat("0", 32)}
	good := client{t: t, base: base, token: testAPIToken}
	anon := client{t: t, base: base}
	// no token presented is not a guess: not counted
	for range 2 * AuthFailBurst {
		if code, _ := anon.do("GET", "/v1/queue", "", nil); code != 401 {
			t.Fatalf("no token: %d, want 401", code)
		}
	}
	for i := range AuthFailBurst {
		if code, _ := wrong.do("GET", "/v1/queue", "", nil); code != 401 {
			t.Fatalf("wrong token %d: %d, want 401", i+1, code)
		}
	}
	resp := rawGet(t, base+"/v1/queue", testAPIToken, "")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "6" {
		t.Fatalf("right token after %d wrong ones: %d Retry-After %q, want 429 6", AuthFailBurst, resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	for _, path := range []string{"/metrics", "/v1/oauth/crm/start?access_token=" + testAPIToken, "/console/"} {
		if code, _ := good.do("GET", path, "", nil); code != 429 {
			t.Errorf("%s while throttled: %d, want 429", path, code)
		}
	}
	if code, _ := anon.do("GET", "/healthz", "", nil); code != 200 {
		t.Errorf("healthz while throttled: %d", code)
	}
	// another client address is not affected
	if resp := rawGet(t, base+"/v1/queue", testAPIToken, "127.0.0.2"); resp.StatusCode != 200 {
		t.Errorf("another client: %d", resp.StatusCode)
	}
	clock.Advance(AuthFailEvery - time.Second)
	if resp := rawGet(t, base+"/v1/queue", testAPIToken, ""); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("1 s before the next try: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	clock.Advance(time.Second)
	if code, _ := wrong.do("GET", "/v1/queue", "", nil); code != 401 {
		t.Errorf("one try back: %d, want 401", code)
	}
	if code, _ := good.do("GET", "/v1/queue", "", nil); code != 429 {
		t.Errorf("the try spent: %d, want 429", code)
	}
	clock.Advance(AuthFailEvery * AuthFailBurst)
	if code, b := good.do("GET", "/v1/queue", "", nil); code != 200 {
		t.Fatalf("after the wait: %d %s", code, b)
	}

	// console logins and install starts with wrong tokens count as well
	for range AuthFailBurst / 2 {
		resp := rawPostForm(t, base+"/console/login", "token="+strings.Repeat("1", 32))
		if resp.StatusCode != 401 {
			t.Fatalf("wrong console login: %d", resp.StatusCode)
		}
		if code, _ := anon.do("GET", "/v1/oauth/crm/start?access_token="+strings.Repeat("2", 32), "", nil); code != 403 {
			t.Fatalf("wrong install token: %d", code)
		}
	}
	if code, _ := good.do("GET", "/v1/queue", "", nil); code != 429 {
		t.Errorf("after wrong console logins and install starts: %d, want 429", code)
	}
	if n := testutil.ToFloat64(s.metrics.authThrottled); n < 5 {
		t.Errorf("plumb_serve_auth_throttled_total = %v", n)
	}
}

func rawGet(t *testing.T, url, token, from string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	must(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	tr := &http.Transport{}
	if from != "" {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		tr.DialContext = d.DialContext
	}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	must(t, err)
	resp.Body.Close()
	return resp
}

func rawPostForm(t *testing.T, url, form string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(form))
	must(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultTransport.RoundTrip(req)
	must(t, err)
	resp.Body.Close()
	return resp
}

// TestFailLimiter: the bucket's arithmetic, its debt under concurrent
// failures, and its bounded memory.
func TestFailLimiter(t *testing.T) {
	clock := testkit.NewManualClock(time.Unix(1e9, 0))
	l := newFailLimiter(clock.Now)
	for i := range AuthFailBurst {
		if w := l.wait("a"); w != 0 {
			t.Fatalf("failure %d: wait %v before it", i, w)
		}
		if ran := l.fail("a"); ran != (i == AuthFailBurst-1) {
			t.Fatalf("failure %d: ran out = %v", i+1, ran)
		}
	}
	if w := l.wait("a"); w != AuthFailEvery {
		t.Fatalf("wait = %v, want %v", w, AuthFailEvery)
	}
	if w := l.wait("b"); w != 0 {
		t.Fatalf("another client waits %v", w)
	}
	// failures in flight together all count: 20 more mean 20 more waits
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { l.fail("a") })
	}
	wg.Wait()
	if w := l.wait("a"); w != 21*AuthFailEvery {
		t.Fatalf("after 20 concurrent failures: wait = %v, want %v", w, 21*AuthFailEvery)
	}
	clock.Advance(21 * AuthFailEvery)
	if w := l.wait("a"); w != 0 {
		t.Fatalf("after paying back: wait = %v", w)
	}

	// bounded: past max clients, full buckets are forgotten, and when none
	// is, new clients share the overflow bucket
	l = newFailLimiter(clock.Now)
	l.max = 4
	for _, k := range []string{"1", "2", "3", "4"} {
		for range AuthFailBurst {
			l.fail(k)
		}
	}
	for i := range AuthFailBurst {
		l.fail("new-" + string(rune('a'+i)))
	}
	if len(l.clients) != 4 {
		t.Fatalf("%d clients remembered, want at most 4", len(l.clients))
	}
	if w := l.wait("yet-another"); w == 0 {
		t.Fatalf("the overflow bucket is spent, a new client must wait")
	}
	clock.Advance(AuthFailEvery * AuthFailBurst)
	l.fail("fresh")
	if _, ok := l.clients["fresh"]; !ok || len(l.clients) > 4 {
		t.Fatalf("refilled clients were not forgotten: %d remembered", len(l.clients))
	}
}

// TestClientKey: the TCP peer decides, an IPv6 host by its /64.
func TestClientKey(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:5555":              "127.0.0.1",
		"[::ffff:10.0.0.1]:1":         "10.0.0.1",
		"[2001:db8:1:2:3:4:5:6]:80":   "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:8080": "2001:db8:1:2::/64",
	} {
		r := &http.Request{RemoteAddr: addr, Header: http.Header{"X-Forwarded-For": {"1.2.3.4"}}}
		if got := clientKey(r); got != want {
			t.Errorf("%s: %s, want %s", addr, got, want)
		}
	}
}
