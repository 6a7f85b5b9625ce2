package auth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	"golang.org/x/net/http/httpguts"

	"github.com/plumbhq/plumb/steps"
)

// apiKey puts a static key in a header or a query parameter.
type apiKey struct {
	inQuery bool
	name    string
	value   string
	// escaped is "name=value", query-escaped, for the query form.
	escaped string
}

func newAPIKey(cfg Config) (*apiKey, error) {
	a := &apiKey{name: cfg.Name, value: cfg.Value}
	switch cmp.Or(steps.APIKeyIn(cfg.In), steps.APIKeyIns.Default) {
	case steps.APIKeyInHeader:
		if a.name == "" {
			a.name = "X-API-Key"
		}
		if err := checkHeaderName("api_key", "name", a.name); err != nil {
			return nil, err
		}
		if err := checkSecretValue("api_key", "value", a.value); err != nil {
			return nil, err
		}
	case steps.APIKeyInQuery:
		a.inQuery = true
		if a.name == "" {
			a.name = "api_key"
		}
		if a.value == "" {
			return nil, errors.New("auth: api_key needs value")
		}
		a.escaped = url.QueryEscape(a.name) + "=" + url.QueryEscape(a.value)
	default:
		return nil, fmt.Errorf("auth: api_key in %q is not %s", cfg.In, steps.APIKeyIns.Hint())
	}
	return a, nil
}

// Apply implements Authenticator.
func (a *apiKey) Apply(_ context.Context, req *http.Request, _ []byte) error {
	if !a.inQuery {
		setHeader(req, a.name, a.value)
		return nil
	}
	// Keep every other parameter byte for byte (order and encoding matter
	// to some APIs and to signatures); drop an earlier copy of ours so a
	// retry does not repeat it.
	var parts []string
	if req.URL.RawQuery != "" {
		for _, p := range strings.Split(req.URL.RawQuery, "&") {
			k, _, _ := strings.Cut(p, "=")
			if uk, err := url.QueryUnescape(k); err == nil && uk == a.name {
				continue
			}
			parts = append(parts, p)
		}
	}
	parts = append(parts, a.escaped)
	req.URL.RawQuery = strings.Join(parts, "&")
	return nil
}

func setHeader(req *http.Request, name, value string) {
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	req.Header.Set(name, value)
}

// basic is HTTP Basic authentication.
type basic struct{ user, pass string }

func newBasic(cfg Config) (*basic, error) {
	if cfg.Username == "" {
		return nil, errors.New("auth: basic needs username")
	}
	if strings.Contains(cfg.Username, ":") {
		return nil, errors.New("auth: basic username must not contain ':'")
	}
	return &basic{user: cfg.Username, pass: cfg.Password}, nil
}

// Apply implements Authenticator.
func (b *basic) Apply(_ context.Context, req *http.Request, _ []byte) error {
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	req.SetBasicAuth(b.user, b.pass)
	return nil
}

// bearer sends a static "Bearer <token>".
type bearer struct{ header, value string }

func newBearer(cfg Config) (*bearer, error) {
	h := cfg.Header
	if h == "" {
		h = "Authorization"
	}
	if err := checkHeaderName("bearer", "header", h); err != nil {
		return nil, err
	}
	if err := checkSecretValue("bearer", "token", cfg.Token); err != nil {
		return nil, err
	}
	return &bearer{header: h, value: "Bearer " + cfg.Token}, nil
}

// Apply implements Authenticator.
func (b *bearer) Apply(_ context.Context, req *http.Request, _ []byte) error {
	setHeader(req, b.header, b.value)
	return nil
}

// rotate uses a list of tokens round robin, skipping tokens marked bad by
// Reauth.
type rotate struct {
	header string
	prefix string
	tokens []string
	bad    []atomic.Bool
	nbad   atomic.Int64
	next   atomic.Uint64
}

func newRotate(cfg Config) (*rotate, error) {
	h := cfg.Header
	if h == "" {
		h = "X-Auth-Token"
	}
	if err := checkHeaderName("rotate", "header", h); err != nil {
		return nil, err
	}
	if len(cfg.Tokens) == 0 {
		return nil, errors.New("auth: rotate needs tokens")
	}
	if !httpguts.ValidHeaderFieldValue(cfg.Prefix) {
		return nil, errors.New("auth: rotate prefix contains control characters")
	}
	for i, t := range cfg.Tokens {
		if err := checkSecretValue("rotate", fmt.Sprintf("tokens[%d]", i), t); err != nil {
			return nil, err
		}
	}
	r := &rotate{header: h, prefix: cfg.Prefix, tokens: append([]string(nil), cfg.Tokens...)}
	r.bad = make([]atomic.Bool, len(r.tokens))
	return r, nil
}

// Apply implements Authenticator.
func (r *rotate) Apply(_ context.Context, req *http.Request, _ []byte) error {
	n := uint64(len(r.tokens))
	for range n {
		i := (r.next.Add(1) - 1) % n
		if !r.bad[i].Load() {
			setHeader(req, r.header, r.prefix+r.tokens[i])
			return nil
		}
	}
	return r.exhausted()
}

func (r *rotate) exhausted() error {
	return fmt.Errorf("auth: rotate: all %d tokens were rejected", len(r.tokens))
}

// Reauth implements Reauther: the token carried by failed is marked bad and
// skipped from then on. It fails when no good token is left, or when failed
// carries none of the configured tokens.
func (r *rotate) Reauth(_ context.Context, failed *http.Request) error {
	got := ""
	if failed != nil {
		got = strings.TrimPrefix(failed.Header.Get(r.header), r.prefix)
	}
	found := false
	for i, t := range r.tokens {
		if t == got {
			found = true
			if r.bad[i].CompareAndSwap(false, true) {
				r.nbad.Add(1)
			}
		}
	}
	if r.nbad.Load() >= int64(len(r.tokens)) {
		return r.exhausted()
	}
	if !found {
		return fmt.Errorf("auth: rotate: the failed request carries none of the configured tokens in %s", r.header)
	}
	return nil
}
