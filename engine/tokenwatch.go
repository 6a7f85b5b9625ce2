package engine

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plumbhq/plumb/internal/jsonw"
)

// tokenTransport makes OAuth2 token traffic visible: it tells the plan's
// events of each token fetch and, when they observe exchanges, reports
// each as an Exchange (step "auth:token") with every credential in
// it masked — the client secret, codes, verifiers, and the tokens in the
// answer. The tokens of every answer are given to the runner's masker
// before package auth sees them, so they are masked wherever a partner
// echoes them.
type tokenTransport struct {
	next http.RoundTripper
	r    *Runner
}

func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	p := t.r.plan
	start := time.Now()
	var reqBody []byte
	observed := p.observing(req.Context())
	if observed && req.GetBody != nil {
		if rc, err := req.GetBody(); err == nil {
			reqBody, _ = io.ReadAll(io.LimitReader(rc, 64<<10))
			rc.Close()
		}
	}
	resp, err := t.next.RoundTrip(req)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	// the answer's tokens go to the masker first, whoever listens
	var body []byte
	var rerr error
	if err == nil {
		body, rerr = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		t.r.live.learnAnswer(body, tokenKey(req.Context()))
	}
	if p.ev == nil {
		return resp, err
	}
	shown := t.r.mask.url(req.URL.String())
	p.ev.TokenFetch(req.Context(), TokenFetch{Integration: p.Name(), URL: shown, Status: status, Duration: time.Since(start)})
	if !observed {
		return resp, err
	}
	ex := &Exchange{Step: "auth:token", Attempt: 1, Method: req.Method, URL: shown,
		RequestHeader: t.r.mask.header(req.Header, nil), RequestBody: maskCredentials(reqBody, t.r.mask),
		Timing: Timing{Total: Duration(time.Since(start))}}
	if err != nil {
		ex.Err = t.r.mask.text(err.Error())
	} else if rerr == nil {
		ex.Status, ex.ResponseHeader, ex.ResponseBody = status, t.r.mask.header(resp.Header, nil), maskCredentials(body, t.r.mask)
	}
	p.obs.Exchange(req.Context(), ex)
	return resp, err
}

// isCredentialKey tells the fields of token requests and answers that hold
// credentials.
func isCredentialKey(k string) bool {
	switch strings.ToLower(k) {
	case "access_token", "refresh_token", "id_token", "client_secret", "password", "assertion",
		"code", "code_verifier", "client_assertion", "token":
		return true
	}
	return false
}

// maskCredentials masks credential fields of a token request or answer
// (JSON or a form) by name, then secret settings everywhere.
func maskCredentials(b []byte, m *masker) string {
	t := bytes.TrimSpace(b)
	if len(t) > 0 && t[0] == '{' {
		var v map[string]any
		if json.Unmarshal(t, &v) == nil {
			for k := range v {
				if isCredentialKey(k) {
					v[k] = mask
				}
			}
			if out, err := jsonw.Marshal(v); err == nil {
				return m.body(out)
			}
		}
	}
	if q, err := url.ParseQuery(string(b)); err == nil && len(q) > 0 && !bytes.ContainsAny(b, " \n{") {
		for k := range q {
			if isCredentialKey(k) {
				q[k] = []string{mask}
			}
		}
		return m.body([]byte(q.Encode()))
	}
	return m.body(b)
}

// How long the runner keeps masking a token after it expired or, for one
// whose expiry is unknown, after it was replaced; and how many tokens it
// masks at most (the oldest learned go first).
const (
	tokenGrace     = time.Hour
	maxLiveSecrets = 64
)

// liveSecrets are the secrets a runner learns while it runs: the OAuth2
// access, refresh and ID tokens of its token endpoints' answers, and the
// access token auth puts on a request (one loaded from a token store
// included), each the current one of its auth section. Each is
// masked from the moment it is learned until its expiry plus tokenGrace
// or, when its expiry is unknown, until tokenGrace after another token
// replaced it; at most maxLiveSecrets are kept, so a runner that renews
// tokens for months does not grow. Readers take the current set without
// locking.
type liveSecrets struct {
	now func() time.Time
	set atomic.Pointer[secretSet]
	// keys is the current secret of each key, read without locking so a
	// request signed with the current token costs no lock
	keys atomic.Pointer[map[string]string]

	mu      sync.Mutex
	secrets map[string]*liveSecret
}

// liveSecret is what is known of one learned secret.
type liveSecret struct {
	key   string    // what it is the current value of ("" once replaced, or unknown)
	until time.Time // when to forget it; zero: not before it is replaced
	seen  time.Time // when it was last learned
}

func newLiveSecrets(now func() time.Time) *liveSecrets {
	return &liveSecrets{now: now, secrets: map[string]*liveSecret{}}
}

// current is the set to mask with (nil when nothing was learned).
func (l *liveSecrets) current() *secretSet {
	if l == nil {
		return nil
	}
	return l.set.Load()
}

// size is how many secrets are masked.
func (l *liveSecrets) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.secrets)
}

// learn records secret as the current value of key ("" when unknown),
// expiring at expiry (zero when unknown). A secret key held before is
// replaced: it is forgotten tokenGrace from now, or at its own expiry
// plus tokenGrace when that is known.
func (l *liveSecrets) learn(secret, key string, expiry time.Time) {
	if l == nil || secret == "" {
		return
	}
	if k := l.keys.Load(); k != nil && key != "" && expiry.IsZero() && (*k)[key] == secret {
		return // known, and still the current one
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	changed := l.prune(now)
	e := l.secrets[secret]
	if e == nil {
		e = &liveSecret{}
		l.secrets[secret] = e
		changed = true
	}
	e.seen = now
	if !expiry.IsZero() {
		e.until = expiry.Add(tokenGrace)
	}
	if key != "" && e.key != key {
		for _, o := range l.secrets {
			if o != e && o.key == key {
				o.key = ""
				if o.until.IsZero() {
					o.until = now.Add(tokenGrace)
				}
			}
		}
		e.key = key
		changed = true
	}
	if l.cap() || changed {
		all := make([]string, 0, len(l.secrets))
		keys := map[string]string{}
		for s, o := range l.secrets {
			all = append(all, s)
			if o.key != "" {
				keys[o.key] = s
			}
		}
		l.set.Store(newSecretSet(all))
		l.keys.Store(&keys)
	}
}

// prune forgets the secrets whose time is up.
func (l *liveSecrets) prune(now time.Time) bool {
	changed := false
	for s, e := range l.secrets {
		if !e.until.IsZero() && now.After(e.until) {
			delete(l.secrets, s)
			changed = true
		}
	}
	return changed
}

// cap forgets the secrets learned longest ago beyond maxLiveSecrets,
// replaced ones first.
func (l *liveSecrets) cap() bool {
	over := len(l.secrets) - maxLiveSecrets
	if over <= 0 {
		return false
	}
	all := make([]string, 0, len(l.secrets))
	for s := range l.secrets {
		all = append(all, s)
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := l.secrets[all[i]], l.secrets[all[j]]
		if (a.key == "") != (b.key == "") {
			return a.key == ""
		}
		return a.seen.Before(b.seen)
	})
	for _, s := range all[:over] {
		delete(l.secrets, s)
	}
	return true
}

// learnAnswer learns the tokens in a token endpoint's answer (JSON or a
// form), before package auth reads it, as the current ones of the auth
// section key ("" when unknown).
func (l *liveSecrets) learnAnswer(b []byte, key string) {
	if l == nil || len(b) == 0 {
		return
	}
	get := func(string) string { return "" }
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		var v map[string]any
		if json.Unmarshal(t, &v) != nil {
			return
		}
		get = func(k string) string {
			switch x := v[k].(type) {
			case string:
				return x
			case float64:
				return strconv.FormatFloat(x, 'f', -1, 64)
			}
			return ""
		}
	} else if q, err := url.ParseQuery(string(b)); err == nil {
		get = q.Get
	}
	var expiry time.Time
	if n, err := strconv.ParseInt(get("expires_in"), 10, 64); err == nil && n > 0 && n < 1<<31 {
		expiry = l.now().Add(time.Duration(n) * time.Second)
	}
	kind := func(k string) string {
		if key == "" {
			return ""
		}
		return key + "/" + k
	}
	l.learn(get("access_token"), kind("access"), expiry)
	l.learn(get("refresh_token"), kind("refresh"), time.Time{})
	l.learn(get("id_token"), kind("id"), expiry)
}
