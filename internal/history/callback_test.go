package history

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestURLPolicy(t *testing.T) {
	integration := []string{"https://hooks.example.com", "http://127.0.0.1:9999"}
	for _, c := range []struct {
		url     string
		policy  URLPolicy
		refused string
	}{
		{"https://hooks.example.com/a?b=c", URLPolicy{}, ""},
		{"https://HOOKS.example.com:443/a", URLPolicy{}, ""},
		{"https://hooks.example.com:8443/a", URLPolicy{}, "origin"},
		{"http://hooks.example.com/a", URLPolicy{}, "origin"},
		{"https://evil.example.com/a", URLPolicy{}, "origin"},
		{"https://evil.example.com/a", URLPolicy{Allow: []string{"https://evil.example.com/"}}, ""},
		{"http://127.0.0.1:9999/x", URLPolicy{}, "private"},
		{"http://127.0.0.1:9999/x", URLPolicy{AllowPrivate: true}, ""},
		{"https://10.0.0.1/x", URLPolicy{Allow: []string{"https://10.0.0.1"}}, "private"},
		{"https://[::1]/x", URLPolicy{Allow: []string{"https://[::1]"}}, "private"},
		{"https://169.254.169.254/x", URLPolicy{Allow: []string{"https://169.254.169.254"}}, "private"},
		{"https://localhost/x", URLPolicy{Allow: []string{"https://localhost"}}, "loopback"},
		{"https://u:p@hooks.example.com/x", URLPolicy{}, "user info"},
		{"ftp://hooks.example.com/x", URLPolicy{}, "http(s)"},
		{"/relative", URLPolicy{}, "http(s)"},
	} {
		err := c.policy.Check(c.url, integration)
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("%s: refused: %v", c.url, err)
		case c.refused != "" && (err == nil || !strings.Contains(err.Error(), c.refused)):
			t.Errorf("%s: err = %v, want it refused (%s)", c.url, err, c.refused)
		}
	}
}

// A URL from an API request is checked again at the dial: a name or
// address that leads to a loopback address is refused there too.
func TestSenderRefusesPrivateAddressAtDial(t *testing.T) {
	hit := 0
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit++ }))
	defer srv.Close()
	job := CallbackJob{ID: "res_1", URL: srv.URL, Untrusted: true, Body: []byte(`{}`)}
	const key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	if _, err := NewSender(URLPolicy{}, nil).Send(context.Background(), job, key); !errors.Is(err, errPrivate) {
		t.Fatalf("untrusted loopback: err = %v", err)
	}
	if _, err := NewSender(URLPolicy{AllowPrivate: true}, nil).Send(context.Background(), job, key); err != nil {
		t.Fatalf("with AllowPrivate: %v", err)
	}
	job.Untrusted = false
	if _, err := NewSender(URLPolicy{}, nil).Send(context.Background(), job, key); err != nil {
		t.Fatalf("a trusted URL (the integration's file): %v", err)
	}
	if hit != 2 {
		t.Fatalf("%d requests reached the receiver, want 2", hit)
	}
	if _, err := NewSender(URLPolicy{}, nil).Send(context.Background(), job, "not base64!"); err == nil {
		t.Fatal("a bad key signed")
	}
}
