package engine

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// noteStep is an integration of one step with the captures given (YAML
// flow mappings), a secret setting and no retries.
func noteStep(captures string) string {
	return "version: 1\nname: n\nsettings: { base_url: {}, key: { secret: true } }\nsteps:\n  - name: s\n" +
		"    request: { url: \"{{settings.base_url}}/x\", headers: { X-Key: \"{{settings.key}}\" } }\n" +
		"    max_attempts: 1\n    capture: { " + captures + " }\n"
}

func runNote(t *testing.T, src string, h http.HandlerFunc) *Result {
	t.Helper()
	srv := newFaults(t, h)
	p := plan(t, src)
	return run(t, p, map[string]any{}, map[string]any{"base_url": srv.URL, "key": "s3cr3t-k3y-value-0042"})
}

// TestCaptureMissNotes (issue 31): a capture whose path matches nothing
// in a 2xx answer stays null, and the step says why in a note listing
// what the answer holds instead — for every kind of capture; bounded and
// masked; not for a capture with a default, nor for an error answer.
func TestCaptureMissNotes(t *testing.T) {
	secretKey := "s3cr3t-k3y-value-0042"
	many := map[string]int{secretKey: 1}
	for i := range 30 {
		many[fmt.Sprintf("k%02d", i)] = i
	}
	long := map[string]any{"a" + strings.Repeat("x", 5000): 1}
	longJSON, _ := json.Marshal(long)
	manyJSON, _ := json.Marshal(map[string]any{"data": many})
	cases := []struct {
		name, captures string
		h              http.HandlerFunc
		want           []string // substrings of the one note
		not            []string
	}{
		{"json top", `status: { json: result.status }`, ok(`{"data": {"status": "ok"}, "meta": {}}`),
			[]string{"`status`: path `result.status` not found in the response (keys: data, meta)"}, nil},
		{"json deep", `status: { json: data.result.status }`, ok(`{"data": {"id": 1, "items": []}}`),
			[]string{"path `data.result.status` not found in the response (keys of `data`: id, items)"}, nil},
		{"json array", `first: { json: data.items.x }`, ok(`{"data": {"items": [1, 2, 3]}}`),
			[]string{"(`data.items` is an array of 3 items)"}, nil},
		{"json bounded, masked", `v: { json: data.missing }`, ok(string(manyJSON)),
			[]string{"keys of `data`: ", ", …)"}, []string{secretKey, "k20"}},
		{"json long key cut", `v: { json: nothing }`, ok(string(longJSON)),
			[]string{"(keys: axxxxxxxxxxxxxxxxxxxx"}, []string{strings.Repeat("x", 100)}},
		{"xpath", `v: { xpath: //Score }`, reply(200, "text/xml", `<soap:Envelope xmlns:soap="urn:s"><soap:Body><R/></soap:Body></soap:Envelope>`),
			[]string{"xpath `//Score` matched nothing in the response (root element soap:Envelope, its children: soap:Body; the document uses namespaces"}, nil},
		{"regex", `v: { regex: 'id=(\d+)' }`, reply(200, "text/plain", "ref="+secretKey+" status=ok"),
			[]string{"regex `id=(\\d+)` matched nothing in the response (the body starts \"ref=****"}, []string{secretKey}},
		{"split", `v: { split: "|", index: 4 }`, reply(200, "text/plain", "a|b|c"),
			[]string{"split `|` has no part 4 in the response (the body has 3 parts)"}, nil},
		// an answer without a body holds nothing to find: a note, not an error
		{"json on 204", `v: { json: data.id }`, reply(204, "application/json", ""),
			[]string{"path `data.id` not found in the response (the body is empty)"}, nil},
		{"xpath on an empty 200", `v: { xpath: //Id }`, reply(200, "text/xml", ""),
			[]string{"xpath `//Id` matched nothing in the response (the body is empty)"}, nil},
		{"header", `v: { header: X-Request-Id }`, reply(200, "text/plain", "ok", "X-Trace", "1"),
			[]string{"header `X-Request-Id` not in the response (headers: Content-Length, Content-Type, Date, X-Trace)"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runNote(t, noteStep(c.captures), c.h)
			sr := r.Steps[0]
			if r.Outcome != Success || len(sr.Notes) != 1 {
				t.Fatalf("outcome %s %q, notes %q", r.Outcome, r.Reason, sr.Notes)
			}
			for k, v := range sr.Captured {
				if v != nil {
					t.Fatalf("capture %s = %v, want null", k, v)
				}
			}
			for _, w := range c.want {
				if !strings.Contains(sr.Notes[0], w) {
					t.Errorf("note %q\n  does not hold %q", sr.Notes[0], w)
				}
			}
			for _, n := range c.not {
				if strings.Contains(sr.Notes[0], n) {
					t.Errorf("note %q holds %q", sr.Notes[0], n)
				}
			}
			b, err := json.Marshal(r)
			if err != nil || !strings.Contains(string(b), `"notes":[`) || strings.Contains(string(b), secretKey) {
				t.Fatalf("JSON result: %v %s", err, b)
			}
		})
	}
	// no note: a default stands in, the path is found (even as null), the
	// answer is an error page
	quiet := []struct {
		captures string
		h        http.HandlerFunc
	}{
		{`v: { json: result.status, default: none }`, ok(`{"data": 1}`)},
		{`v: { json: status }`, ok(`{"status": null}`)},
		{`v: { json: result.status }`, reply(404, "application/json", `{"error": "no such lead"}`)},
	}
	for _, q := range quiet {
		r := runNote(t, noteStep(q.captures), q.h)
		if n := r.Steps[0].Notes; len(n) != 0 {
			t.Errorf("%s: notes %q, want none", q.captures, n)
		}
	}
}

// TestReasonKeepsCause (issue 31): a reason: template never hides a
// transport, auth or 5xx cause, nor drops the partner's own text when it
// takes nothing from the answer.
func TestReasonKeepsCause(t *testing.T) {
	step := func(reason string) string {
		return "version: 1\nname: r\nsettings: { base_url: {} }\nsteps:\n  - name: s\n" +
			"    request: { url: \"{{settings.base_url}}/x\" }\n    max_attempts: 1\n" +
			"    capture: { message: { json: message }, valid: { json: valid } }\n" +
			"    outcome: { failure_when: captured.valid == false, reason: " + reason + " }\n"
	}
	cases := []struct {
		name, reason string
		h            http.HandlerFunc
		want, not    string
	}{
		{"401 literal prefix, empty capture", `"email rejected: {{captured.message}}"`,
			reply(401, "application/json", `{"error": "token expired"}`),
			`HTTP 401 Unauthorized: {"error": "token expired"}`, "email rejected"},
		{"401 that says something", `"email rejected: {{captured.message}}"`,
			reply(401, "application/json", `{"message": "token expired"}`),
			"email rejected: token expired (HTTP 401 Unauthorized)", ""},
		{"503 literal", `"email rejected"`, reply(503, "application/json", `{"error": "down"}`),
			`HTTP 503 Service Unavailable: {"error": "down"}`, "email rejected"},
		{"422 literal keeps the partner's words", `"email rejected: "`,
			reply(422, "application/json", `{"error": "mx lookup failed"}`),
			`email rejected (HTTP 422 Unprocessable Entity: {"error": "mx lookup failed"})`, ""},
		{"422 that says something", `"email rejected: {{captured.message}}"`,
			reply(422, "application/json", `{"message": "no mx"}`), "email rejected: no mx", "HTTP 422"},
		{"failure_when literal", `"email rejected"`, ok(`{"valid": false}`), "email rejected", "failure_when"},
		{"failure_when, empty capture", `"email rejected: {{captured.message}}"`, ok(`{"valid": false}`),
			"email rejected (failure_when holds: captured.valid == false)", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runWith(t, step(c.reason), newFakeClock(), newFaults(t, c.h).URL)
			if r.Outcome == Success || !strings.Contains(r.Reason, c.want) || (c.not != "" && strings.Contains(r.Reason, c.not)) {
				t.Fatalf("%s %q\n  want it to hold %q and not %q", r.Outcome, r.Reason, c.want, c.not)
			}
		})
	}
	// a transport error is never replaced
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	r := runWith(t, step(`"email rejected"`), newFakeClock(), dead)
	if r.Class != ClassConnection || strings.Contains(r.Reason, "email rejected") {
		t.Fatalf("dead partner: %s %q", r.Class, r.Reason)
	}
}

// TestMaxAttemptsRuleAndPlural (issue 31): with max_attempts: 1 the rule
// that would retry did not decide, max_attempts did; "1 attempt".
func TestMaxAttemptsRuleAndPlural(t *testing.T) {
	r := runWith(t, oneStep("    max_attempts: 1\n"), newFakeClock(), newFaults(t, status(503)).URL)
	if rule := r.Steps[0].Rule; rule != "give up (max_attempts: 1)" {
		t.Fatalf("rule %q", rule)
	}
	r = runWith(t, oneStep("    retry: [ { on: [503], action: retry, max_attempts: 1 } ]\n"), newFakeClock(), newFaults(t, status(503)).URL)
	if !strings.Contains(r.Reason, "(gave up after 1 attempt)") {
		t.Fatalf("reason %q", r.Reason)
	}
	r = runWith(t, oneStep("    max_attempts: 2\n"), newFakeClock(), newFaults(t, status(503)).URL)
	if !strings.Contains(r.Reason, "(gave up after 2 attempts: max_attempts)") || r.Steps[0].Rule != "give up (max_attempts: 2)" {
		t.Fatalf("reason %q rule %q", r.Reason, r.Steps[0].Rule)
	}
}

// TestClosedConnectionReason (issue 31): a partner that closes or resets
// the connection gets a reason in words, not a bare EOF.
func TestClosedConnectionReason(t *testing.T) {
	closeNow := func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		conn.Close()
	}
	halfBody := func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		io.WriteString(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"score\":")
		buf.Flush()
		conn.Close()
	}
	for name, c := range map[string]struct {
		h    http.HandlerFunc
		want []string
	}{
		"closed": {closeNow, []string{"connection closed by the partner before an answer (EOF)"}},
		"reset":  {reset, []string{"by the partner before an answer (", "connection reset by peer"}},
		"cut":    {halfBody, []string{"connection closed by the partner in the middle of the answer (", "unexpected EOF)"}},
	} {
		r := runWith(t, oneStep("    max_attempts: 1\n"), newFakeClock(), newFaults(t, c.h).URL)
		for _, w := range c.want {
			if !strings.Contains(r.Reason, w) {
				t.Errorf("%s: reason %q\n  does not hold %q", name, r.Reason, w)
			}
		}
		if r.Class != ClassConnection {
			t.Errorf("%s: class %s", name, r.Class)
		}
	}
}

// TestSourcePolicy (issue 31): Policies describes the source: request
// first, marked Source, with how it pages and how fast.
func TestSourcePolicy(t *testing.T) {
	src := `version: 1
name: s
settings: { base_url: {} }
source:
  request: { url: "{{settings.base_url}}/leads" }
  timeout: 3s
  max_attempts: 2
  rate: 5/s
steps:
  - name: a
    request: { url: "{{settings.base_url}}/x" }
`
	ps := plan(t, src).Policies()
	if len(ps) != 2 || !ps[0].Source || ps[0].Pages != "pages: one (no paginate:); rate: at most 5/s" || ps[1].Pages != "" || ps[0].MaxAttempts != 2 || ps[0].Timeout.String() != "3s" || len(ps[0].Rules) == 0 || ps[1].Source || ps[1].Step != "a" {
		t.Fatalf("%+v", ps)
	}
}
