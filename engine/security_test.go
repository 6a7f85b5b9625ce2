package engine

import (
	"context"
	"io"
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
		defer r.Close()
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
