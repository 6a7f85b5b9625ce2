package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/plumbhq/plumb/internal/testkit"
)

// recorded is one request as the test server saw it.
type recorded struct {
	Method, Path, RawPath, RawQuery string
	Query                           url.Values
	Header                          http.Header
	Body                            string
}

// server is an httptest server that records requests and answers with the
// handler chosen by path.
type server struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

func newServer(t *testing.T, routes map[string]http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		s.mu.Lock()
		s.reqs = append(s.reqs, recorded{r.Method, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.URL.Query(), r.Header.Clone(), string(b)})
		s.mu.Unlock()
		for prefix, h := range routes {
			if strings.HasPrefix(r.URL.Path, prefix) {
				h(w, r)
				return
			}
		}
		http.Error(w, "no route", http.StatusNotFound)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) requests() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.reqs...)
}

func reply(status int, contentType, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// plan compiles an integration whose settings include base_url pointing at srv.
func plan(t *testing.T, src string, opts ...Option) *Plan {
	t.Helper()
	p, err := Parse("test.yaml", []byte(src), append([]Option{WithClock(newFakeClock())}, opts...)...)
	if err != nil {
		t.Fatalf("load:\n%v", err)
	}
	return p
}

func run(t *testing.T, p *Plan, lead map[string]any, given map[string]any) *Result {
	t.Helper()
	s, err := p.Settings(given, nil)
	if err != nil {
		t.Fatalf("settings: %v", err)
	}
	return p.Run(context.Background(), lead, s)
}

func wantOutcome(t *testing.T, r *Result, o Outcome) {
	t.Helper()
	if r.Outcome != o {
		b, _ := json.MarshalIndent(r, "", "  ")
		t.Fatalf("outcome %s, want %s\n%s", r.Outcome, o, b)
	}
}

const blacklist = `version: 1
name: internal-blacklist
settings:
  api_key:  { required: true, secret: true }
  base_url: { default: "https://api.internal.com" }
steps:
  - name: check
    when: lead.email != ""
    request:
      method: POST
      url: "{{settings.base_url}}/blacklist/check"
      query: { source: "{{lead.source.id}}" }
      headers: { X-API-Key: "{{settings.api_key}}" }
      body:
        json:
          email: "{{lead.email}}"
          phone: "{{ lead.phone | digits }}"
          verified: "{{lead.email_valid}}"
          age: "{{lead.age}}"
          tags: ["lead", "{{lead.source.id}}"]
          label: "id-{{lead.source.id}}"
          fixed: 3
    timeout: 2s
    capture:
      blacklisted: { json: is_blacklisted }
      reason:      { json: reason }
      score:       { json: risk_score, type: number }
      request_id:  { header: X-Request-Id }
      code:        { status: true }
    outcome:
      failure_when: captured.blacklisted == true
      reason: "blacklisted: {{captured.reason}}"
    append:
      blacklisted: "{{captured.blacklisted}}"
      risk.score: "{{captured.score}}"
`

func TestJSONStepSuccessAndFailure(t *testing.T) {
	srv := newServer(t, map[string]http.HandlerFunc{"/blacklist/check": func(w http.ResponseWriter, r *http.Request) {
		var in map[string]any
		json.NewDecoder(r.Body).Decode(&in)
		w.Header().Set("X-Request-Id", "req-7")
		w.Header().Set("Content-Type", "application/json")
		if in["email"] == "bad@blocked.example" {
			io.WriteString(w, `{"is_blacklisted": true, "reason": "known fraud", "risk_score": "97"}`)
			return
		}
		io.WriteString(w, `{"is_blacklisted": false, "risk_score": 12}`)
	}})
	p := plan(t, blacklist)
	settings := map[string]any{"api_key": "sekret-key-123", "base_url": srv.URL}
	lead := map[string]any{"email": "ok@example.com", "phone": "(512) 555-0100", "email_valid": true, "age": 41.0, "source": map[string]any{"id": "123"}}
	r := run(t, p, lead, settings)
	wantOutcome(t, r, Success)

	req := srv.requests()[0]
	if req.Method != "POST" || req.Query.Get("source") != "123" || req.Header.Get("X-API-Key") != "sekret-key-123" {
		t.Fatalf("request: %+v", req)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content-type %q", ct)
	}
	wantBody := `{"email":"ok@example.com","phone":"5125550100","verified":true,"age":41,"tags":["lead","123"],"label":"id-123","fixed":3}`
	if req.Body != wantBody {
		t.Fatalf("body\n got %s\nwant %s", req.Body, wantBody)
	}
	s := r.Steps[0]
	if s.Status != 200 || s.Attempts != 1 || s.Captured["request_id"] != "req-7" || s.Captured["code"] != 200 || s.Captured["score"] != 12.0 {
		t.Fatalf("step: %+v", s)
	}
	if r.Lead["blacklisted"] != false || r.Lead["risk"].(map[string]any)["score"] != 12.0 {
		t.Fatalf("lead: %+v", r.Lead)
	}
	if _, touched := lead["blacklisted"]; touched {
		t.Fatal("Run modified the caller's lead")
	}

	lead["email"] = "bad@blocked.example"
	r = run(t, p, lead, settings)
	wantOutcome(t, r, Failure)
	if r.Reason != "blacklisted: known fraud" || r.Step != "check" || r.Lead["blacklisted"] != true {
		t.Fatalf("failure result: %+v", r)
	}
	if r.Steps[0].Captured["score"] != 97.0 {
		t.Fatalf("typed capture: %#v", r.Steps[0].Captured["score"])
	}

	delete(lead, "email")
	r = run(t, p, lead, settings)
	wantOutcome(t, r, Skip)
	if len(srv.requests()) != 2 {
		t.Fatal("skipped step sent a request")
	}
}

func TestBodyKinds(t *testing.T) {
	srv := newServer(t, map[string]http.HandlerFunc{"/": reply(200, "text/plain", "OK")})
	lead := map[string]any{"email": "a@b.co", "name": "Ann", "ok": true, "n": 5.0}
	cases := []struct {
		name, body, ct, want string
	}{
		{"json text", "json: |\n          {\"email\": \"{{lead.email}}\", \"ok\": {{lead.ok}}, \"n\": {{lead.n}}}", "application/json", `{"email": "a@b.co", "ok": true, "n": 5}`},
		{"form", "form: { email: \"{{lead.email}}\", name: \"{{lead.name}}\" }", "application/x-www-form-urlencoded", "email=a%40b.co&name=Ann"},
		{"xml", "xml: \"<Lead><Email>{{lead.email}}</Email></Lead>\"", "text/xml; charset=utf-8", "<Lead><Email>a@b.co</Email></Lead>"},
		{"text", "text: \"hello {{lead.name}}\"", "text/plain; charset=utf-8", "hello Ann"},
		{"content type override", "text: \"x\"\n        content_type: application/vnd.partner+text", "application/vnd.partner+text", "x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := fmt.Sprintf("version: 1\nname: b\nsettings: { base_url: {} }\nsteps:\n  - name: s\n    request:\n      url: \"{{settings.base_url}}/b\"\n      body:\n        %s\n", c.body)
			before := len(srv.requests())
			r := run(t, plan(t, src), lead, map[string]any{"base_url": srv.URL})
			wantOutcome(t, r, Success)
			req := srv.requests()[before]
			if req.Method != "POST" || strings.TrimSpace(req.Body) != c.want || req.Header.Get("Content-Type") != c.ct {
				t.Fatalf("got %s %q %q", req.Method, req.Header.Get("Content-Type"), req.Body)
			}
		})
	}
}

// TestEscaping sends hostile lead values everywhere a template can put them
// and checks the request keeps the shape the author wrote.
func TestEscaping(t *testing.T) {
	evil := "a\"b<c>&d/e?f=g#h'i\\j"
	srv := newServer(t, map[string]http.HandlerFunc{"/": reply(200, "application/json", `{}`)})
	src := `version: 1
name: esc
settings: { base_url: {} }
steps:
  - name: json
    request:
      url: "{{settings.base_url}}/leads/{{lead.v}}/x"
      query: { q: "{{lead.v}}", fixed: "1" }
      headers: { X-Val: "{{lead.v}}" }
      body: { json: { v: "{{lead.v}}", w: "pre {{lead.v}}" } }
  - name: jsontext
    request:
      url: "{{settings.base_url}}/t"
      body:
        json: '{"v": "{{lead.v}}", "k": 1}'
  - name: xml
    request:
      url: "{{settings.base_url}}/x"
      body: { xml: "<r a=\"{{lead.v}}\"><v>{{lead.v}}</v></r>" }
  - name: form
    request:
      url: "{{settings.base_url}}/f"
      body: { form: { v: "{{lead.v}}", k: "1" } }
`
	r := run(t, plan(t, src), map[string]any{"v": evil}, map[string]any{"base_url": srv.URL})
	wantOutcome(t, r, Success)
	reqs := srv.requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests", len(reqs))
	}
	// URL path: one segment holding the whole value; query keys unchanged.
	if reqs[0].Path != "/leads/"+evil+"/x" || len(strings.Split(reqs[0].RawPath, "/")) != 4 {
		t.Fatalf("path %q raw %q", reqs[0].Path, reqs[0].RawPath)
	}
	if len(reqs[0].Query) != 2 || reqs[0].Query.Get("q") != evil || reqs[0].Query.Get("fixed") != "1" {
		t.Fatalf("query %v", reqs[0].Query)
	}
	if reqs[0].Header.Get("X-Val") != evil {
		t.Fatalf("header %q", reqs[0].Header.Get("X-Val"))
	}
	var j map[string]any
	if err := json.Unmarshal([]byte(reqs[0].Body), &j); err != nil || len(j) != 2 || j["v"] != evil || j["w"] != "pre "+evil {
		t.Fatalf("json body %s: %v", reqs[0].Body, err)
	}
	j = nil
	if err := json.Unmarshal([]byte(reqs[1].Body), &j); err != nil || len(j) != 2 || j["v"] != evil {
		t.Fatalf("json text body %s: %v", reqs[1].Body, err)
	}
	var x struct {
		A string `xml:"a,attr"`
		V string `xml:"v"`
	}
	if err := xml.Unmarshal([]byte(reqs[2].Body), &x); err != nil || x.A != evil || x.V != evil {
		t.Fatalf("xml body %s: %v %+v", reqs[2].Body, err, x)
	}
	f, err := url.ParseQuery(reqs[3].Body)
	if err != nil || len(f) != 2 || f.Get("v") != evil {
		t.Fatalf("form body %s: %v", reqs[3].Body, err)
	}
}

func TestHeaderInjectionIsAnError(t *testing.T) {
	srv := newServer(t, map[string]http.HandlerFunc{"/": reply(200, "", "")})
	src := `version: 1
name: esc
settings: { base_url: {} }
steps:
  - name: s
    request:
      url: "{{settings.base_url}}/h"
      headers: { X-Val: "{{lead.v}}" }
`
	r := run(t, plan(t, src), map[string]any{"v": "x\r\nX-Admin: 1"}, map[string]any{"base_url": srv.URL})
	wantOutcome(t, r, Error)
	if !strings.Contains(r.Reason, "header X-Val") || len(srv.requests()) != 0 {
		t.Fatalf("reason %q, %d requests", r.Reason, len(srv.requests()))
	}
}

const soapEnvelope = `<?xml version="1.0"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body>
    <v:ValidateResponse xmlns:v="http://partner.com/leads">
      <v:Status>Success</v:Status>
      <v:Result><v:Valid>true</v:Valid><v:Score>85</v:Score></v:Result>
    </v:ValidateResponse>
  </soap:Body>
</soap:Envelope>`

func TestExtractors(t *testing.T) {
	srv := newServer(t, map[string]http.HandlerFunc{
		"/soap":  reply(200, "text/xml; charset=utf-8", soapEnvelope),
		"/text":  reply(200, "text/plain", "SUCCESS|85|VALID|ABC123\n"),
		"/regex": reply(200, "text/plain", "Lead accepted with ID: 12345 and price: $45.00"),
	})
	src := `version: 1
name: ex
settings: { base_url: {} }
steps:
  - name: soap
    request:
      url: "{{settings.base_url}}/soap"
      headers: { SOAPAction: "http://partner.com/ValidateLead" }
      body:
        xml: |
          <soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><Email>{{lead.email}}</Email></soap:Body></soap:Envelope>
    namespaces: { s: "http://schemas.xmlsoap.org/soap/envelope/", v: "http://partner.com/leads" }
    capture:
      status: { xpath: "//v:Status" }
      valid:  { xpath: "/s:Envelope/s:Body/v:ValidateResponse/v:Result/v:Valid", type: bool }
      score:  { xpath: "//v:Score", type: int }
  - name: text
    request: { url: "{{settings.base_url}}/text" }
    capture:
      status:    { split: "|", index: 0 }
      score:     { split: "|", index: 1, type: number }
      reference: { split: "|", index: -1 }
  - name: regex
    request: { url: "{{settings.base_url}}/regex" }
    capture:
      lead_id: { regex: 'ID: (\d+)', group: 1 }
      price:   { regex: 'price: \$(?P<price>\d+\.\d{2})', group: price, type: number }
    append:
      partner_id: "{{captured.lead_id}}"
      soap_score: "{{steps.soap.score}}"
      summary: "{{steps.text.status}}/{{steps.text.reference}}"
`
	r := run(t, plan(t, src), map[string]any{"email": "a@b.co"}, map[string]any{"base_url": srv.URL})
	wantOutcome(t, r, Success)
	c := r.Steps[0].Captured
	if c["status"] != "Success" || c["valid"] != true || c["score"] != int64(85) {
		t.Fatalf("soap captures %#v", c)
	}
	if reqs := srv.requests(); reqs[0].Header.Get("SOAPAction") != "http://partner.com/ValidateLead" || !strings.Contains(reqs[0].Body, "<Email>a@b.co</Email>") {
		t.Fatalf("soap request %+v", reqs[0])
	}
	c = r.Steps[1].Captured
	if c["status"] != "SUCCESS" || c["score"] != 85.0 || c["reference"] != "ABC123" {
		t.Fatalf("text captures %#v", c)
	}
	c = r.Steps[2].Captured
	if c["lead_id"] != "12345" || c["price"] != 45.0 {
		t.Fatalf("regex captures %#v", c)
	}
	if r.Lead["partner_id"] != "12345" || r.Lead["soap_score"] != int64(85) || r.Lead["summary"] != "SUCCESS/ABC123" {
		t.Fatalf("lead %#v", r.Lead)
	}
}

// TestTokenThenCall chains two steps: the first captures a token that the
// second sends (seed "Multi-Step Flows").
func TestTokenThenCall(t *testing.T) {
	srv := newServer(t, map[string]http.HandlerFunc{
		"/auth": func(w http.ResponseWriter, r *http.Request) {
			r.ParseForm()
			if r.PostForm.Get("client_secret") != "s3cret" {
				http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"access_token":"tok-42","expires_in":3600}`)
		},
		"/validate": func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer tok-42" {
				http.Error(w, "no", http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"needs_verification": true}`)
		},
		"/verify": reply(200, "application/json", `{"verified": "yes"}`),
	})
	src := `version: 1
name: chain
settings:
  base_url: {}
  client_id: {}
  client_secret: { secret: true }
steps:
  - name: auth
    request:
      url: "{{settings.base_url}}/auth"
      body: { form: { grant_type: client_credentials, client_id: "{{settings.client_id}}", client_secret: "{{settings.client_secret}}" } }
    capture:
      token: { json: access_token, required: true }
  - name: validate
    request:
      url: "{{settings.base_url}}/validate"
      headers: { Authorization: "Bearer {{steps.auth.token}}" }
      body: { json: { email: "{{lead.email}}" } }
    capture:
      needs_verification: { json: needs_verification, type: bool }
  - name: verify
    when: steps.validate.needs_verification == true
    request: { url: "{{settings.base_url}}/verify" }
    capture:
      verified: { json: verified, type: bool }
    append: { verified: "{{captured.verified}}" }
`
	p := plan(t, src)
	r := run(t, p, map[string]any{"email": "a@b.co"}, map[string]any{"base_url": srv.URL, "client_id": "c", "client_secret": "s3cret"})
	wantOutcome(t, r, Success)
	if len(r.Steps) != 3 || r.Steps[2].Outcome != Success || r.Lead["verified"] != true {
		t.Fatalf("%+v", r)
	}
	// wrong secret: the token step errs (401: refused credentials are no
	// answer about the lead), the flow stops there, and the secret appears
	// nowhere in the result.
	r = run(t, p, map[string]any{"email": "a@b.co"}, map[string]any{"base_url": srv.URL, "client_id": "c", "client_secret": "wrong-secret"})
	wantOutcome(t, r, Error)
	if r.Step != "auth" || len(r.Steps) != 1 {
		t.Fatalf("%+v", r)
	}
	b, _ := json.Marshal(r)
	if strings.Contains(string(b), "wrong-secret") {
		t.Fatalf("secret leaked: %s", b)
	}
}

func TestErrorOutcomes(t *testing.T) {
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	srv := newServer(t, map[string]http.HandlerFunc{
		"/500":     reply(500, "text/plain", "boom"),
		"/422":     reply(422, "application/json", `{"error":"bad phone"}`),
		"/garbage": reply(200, "application/json", `{"score": 1`),
		"/big":     reply(200, "text/plain", strings.Repeat("x", 2048)),
		"/hang": func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		},
		"/bodyerr": reply(200, "application/json", `{"status":"ERROR","message":"upstream down"}`),
		"/missing": reply(200, "application/json", `{}`),
	})
	cases := []struct {
		path, extra string
		outcome     Outcome
		reason      string
	}{
		{"/500", "", Error, "HTTP 500 Internal Server Error: boom"},
		{"/422", "", Failure, `HTTP 422 Unprocessable Entity: {"error":"bad phone"}`},
		{"/422", "    capture: { err: { json: error } }\n    outcome: { reason: \"rejected: {{captured.err}}\" }\n", Failure, "rejected: bad phone"},
		{"/garbage", "    capture: { score: { json: score } }\n", Error, "capture score: json \"score\": response body is not valid JSON"},
		{"/big", "    response: { max_bytes: 1024 }\n", Error, "response body larger than 1024 bytes"},
		{"/hang", "    timeout: 50ms\n", Error, "timeout after 50ms"},
		{"/bodyerr", "    capture: { status: { json: status }, msg: { json: message } }\n    outcome: { error_when: 'captured.status == \"ERROR\"', reason: \"{{captured.msg}}\" }\n", Error, "upstream down"},
		{"/bodyerr", "    capture: { status: { json: status } }\n    outcome: { failure_when: 'captured.status == \"ERROR\"' }\n", Failure, `failure_when holds: captured.status == "ERROR"`},
		{"/missing", "    capture: { id: { json: id, required: true } }\n", Error, "capture id: not found in the response"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			src := fmt.Sprintf("version: 1\nname: e\nsettings: { base_url: {} }\nsteps:\n  - name: s\n    request: { url: \"{{settings.base_url}}%s\" }\n%s", c.path, c.extra)
			r := run(t, plan(t, src), nil, map[string]any{"base_url": srv.URL})
			wantOutcome(t, r, c.outcome)
			if !strings.Contains(r.Reason, c.reason) {
				t.Fatalf("reason %q, want %q", r.Reason, c.reason)
			}
		})
	}
}

func TestConnectionRefusedAndCancel(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	closedURL := srv.URL
	srv.Close()
	src := "version: 1\nname: e\nsettings: { base_url: {}, key: { secret: true } }\nsteps:\n  - name: s\n    request: { url: \"{{settings.base_url}}/x\", query: { k: \"{{settings.key}}\" } }\n"
	p := plan(t, src)
	r := run(t, p, nil, map[string]any{"base_url": closedURL, "key": "topsecret"})
	wantOutcome(t, r, Error)
	if !strings.Contains(r.Reason, "connection refused") || strings.Contains(r.Reason, "topsecret") || !strings.Contains(r.Reason, "k=****") {
		t.Fatalf("reason %q", r.Reason)
	}
	s, _ := p.Settings(map[string]any{"base_url": closedURL, "key": "k"}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r = p.Run(ctx, nil, s)
	wantOutcome(t, r, Error)
	if !strings.Contains(r.Reason, "not run: cancelled") {
		t.Fatalf("reason %q", r.Reason)
	}
}

func TestCompileErrorsHavePositions(t *testing.T) {
	src := `version: 1
name: bad
settings: { base_url: {} }
steps:
  - name: first
    when: lead.value >
    request:
      url: "{{settings.base_url}}/{{ lead.x | nosuchfunc }}"
      headers: { X-Token: "{{steps.second.token}}", "Bad Name": x }
    capture:
      a: { xpath: "//[" }
      b: { regex: "(" }
      c: { xpath: "//zz:Item" }
      d: { json: a, split: "|" }
    outcome:
      failure_when: captured.nope == 1
  - name: second
    request:
      url: "{{settings.missing}}/{{ captured.a }}"
      body: { json: { x: "{{steps.nostep.x}}", y: "{{steps.first.zzz}}" } }
    capture:
      token: { json: token }
`
	_, err := Parse("bad.yaml", []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"bad.yaml:6:22: bad condition: unexpected token EOF",
		`bad.yaml:8:12: bad template: `,
		`nosuchfunc`,
		`bad.yaml:9:27: step "second" does not run before step "first"`,
		`bad.yaml:9:53: headers: "Bad Name" is not a valid header name`,
		`bad.yaml:11:10: capture "a":`,
		`bad.yaml:12:10: capture "b":`,
		`bad.yaml:13:10: capture "c":`,
		`bad.yaml:14:10: capture "d":`,
		`bad.yaml:16:21: step "first" has no capture "nope"`,
		`bad.yaml:19:12: unknown setting "missing"`,
		`bad.yaml:19:12: captured.a read before the request is sent`,
		`bad.yaml:20:26: unknown step "nostep"`,
		`bad.yaml:20:51: step "first" has no capture "zzz"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestSettings(t *testing.T) {
	src := `version: 1
name: s
settings:
  api_key:  { required: true, secret: true, env: TEST_API_KEY }
  base_url: { default: "https://api.example.com" }
  limit:    { type: number, env: TEST_LIMIT }
  verbose:  { type: bool }
steps:
  - name: s
    request: { url: "{{settings.base_url}}/x" }
`
	p := plan(t, src)
	_, err := p.Settings(map[string]any{"nope": 1}, nil)
	if err == nil || !strings.Contains(err.Error(), `test.yaml:4:3: required setting "api_key" has no value`) || !strings.Contains(err.Error(), `unknown setting "nope"`) || !strings.Contains(err.Error(), "TEST_API_KEY") {
		t.Fatalf("err = %v", err)
	}
	env := map[string]string{"TEST_API_KEY": "from-env", "TEST_LIMIT": "25"}
	s, err := p.Settings(map[string]any{"verbose": "yes"}, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Value("api_key"); v != "from-env" {
		t.Fatalf("api_key %v", v)
	}
	if v, _ := s.Value("limit"); v != 25.0 {
		t.Fatalf("limit %#v", v)
	}
	if v, _ := s.Value("base_url"); v != "https://api.example.com" {
		t.Fatalf("base_url %v", v)
	}
	if v, _ := s.Value("verbose"); v != true {
		t.Fatalf("verbose %v", v)
	}
	if got := s.Redact("key=from-env"); got != "key=****" {
		t.Fatalf("redact %q", got)
	}
	_, err = p.Settings(map[string]any{"api_key": "k", "limit": "many"}, nil)
	if err == nil || !strings.Contains(err.Error(), `test.yaml:6:3: setting "limit"`) {
		t.Fatalf("err = %v", err)
	}
}

// TestConcurrentRuns shares one plan between many goroutines (run with -race).
// TestConcurrentRuns runs 50 leads at once on one plan. The first two
// requests wait for each other at a barrier, which proves runs overlap
// without timing anything.
func TestConcurrentRuns(t *testing.T) {
	var inflight, peak, arrived atomic.Int32
	pair := testkit.NewBarrier(2)
	srv := newServer(t, map[string]http.HandlerFunc{"/": func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		if arrived.Add(1) <= 2 {
			pair.Wait(r.Context())
		}
		var in map[string]any
		json.NewDecoder(r.Body).Decode(&in)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"echo": %q}`, in["email"])
	}})
	src := "version: 1\nname: c\nsettings: { base_url: {} }\nsteps:\n  - name: s\n    request: { url: \"{{settings.base_url}}/x\", body: { json: { email: \"{{lead.email}}\" } } }\n    capture: { echo: { json: echo } }\n    append: { echo: \"{{captured.echo}}\" }\n"
	p := plan(t, src)
	s, _ := p.Settings(map[string]any{"base_url": srv.URL}, nil)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			email := fmt.Sprintf("lead%d@example.com", i)
			r := p.Run(context.Background(), map[string]any{"email": email}, s)
			if r.Outcome != Success || r.Lead["echo"] != email {
				t.Errorf("lead %d: %s %v", i, r.Outcome, r.Lead["echo"])
			}
		}()
	}
	wg.Wait()
	if peak.Load() < 2 {
		t.Errorf("requests never overlapped (peak %d)", peak.Load())
	}
}

func TestMissingFieldIsClearError(t *testing.T) {
	srv := newServer(t, map[string]http.HandlerFunc{"/": reply(200, "", "")})
	src := "version: 1\nname: m\nsettings: { base_url: {} }\nsteps:\n  - name: s\n    request: { url: \"{{settings.base_url}}/x\", body: { json: { p: \"{{lead.phone}}\", q: \"{{ lead.alt | default \\\"none\\\" }}\" } } }\n"
	p := plan(t, src)
	r := run(t, p, map[string]any{}, map[string]any{"base_url": srv.URL})
	wantOutcome(t, r, Error)
	if !strings.Contains(r.Reason, "lead.phone is missing") {
		t.Fatalf("reason %q", r.Reason)
	}
	r = run(t, p, map[string]any{"phone": "1"}, map[string]any{"base_url": srv.URL})
	wantOutcome(t, r, Success)
	if b := srv.requests()[0].Body; b != `{"p":"1","q":"none"}` {
		t.Fatalf("body %s", b)
	}
}
