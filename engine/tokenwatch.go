package engine

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// tokenTransport makes OAuth2 token traffic visible: it tells the plan's
// events of each token fetch and, when they observe exchanges, reports
// each as an Exchange (step "auth:token") with every credential in
// it masked — the client secret, codes, verifiers, and the tokens in the
// answer.
type tokenTransport struct {
	next http.RoundTripper
	r    *Runner
}

func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	p := t.r.plan
	start := time.Now()
	var reqBody []byte
	if p.obs != nil && req.GetBody != nil {
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
	if p.ev == nil {
		return resp, err
	}
	shown := t.r.mask.url(req.URL.String())
	p.ev.TokenFetch(req.Context(), TokenFetch{Integration: p.Name(), URL: shown, Status: status, Duration: time.Since(start)})
	if p.obs == nil {
		return resp, err
	}
	ex := &Exchange{Step: "auth:token", Attempt: 1, Method: req.Method, URL: shown,
		RequestHeader: t.r.mask.header(req.Header, nil), RequestBody: maskCredentials(reqBody, t.r.mask),
		Timing: Timing{Total: Duration(time.Since(start))}}
	if err != nil {
		ex.Err = t.r.mask.text(err.Error())
	} else {
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if rerr == nil {
			ex.Status, ex.ResponseHeader, ex.ResponseBody = status, t.r.mask.header(resp.Header, nil), maskCredentials(body, t.r.mask)
		}
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
			if out, err := marshalJSON(v); err == nil {
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
