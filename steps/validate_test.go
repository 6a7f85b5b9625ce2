package steps

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

const head = "version: 1\nname: x\n"

func oneStep(req string) string {
	return head + "steps:\n  - name: a\n    request:\n" + req
}

// Issue 13: each gap is a load error with file:line:col and a hint.
func TestValidationGaps(t *testing.T) {
	cases := []struct {
		name, src string
		want      string // the error line, position included, up to the hint
	}{
		{"LF in header value", oneStep("      url: https://x.example/\n      headers: { X-A: \"a\\nX-Evil: 1\" }\n"),
			`f.yaml:7:23: headers.X-A: header value contains CR, LF or NUL (`},
		{"CR in header value", oneStep("      url: https://x.example/\n      headers:\n        X-A: \"a\\rb\"\n"),
			`f.yaml:8:14: headers.X-A: header value contains CR, LF or NUL (`},
		{"block scalar header value", oneStep("      url: https://x.example/\n      headers:\n        X-A: |\n          a\n          b\n"),
			`f.yaml:9:11: headers.X-A: header value contains CR, LF or NUL (`},
		{"LF in header name", oneStep("      url: https://x.example/\n      headers: { \"X-A\\nX-Evil\": v }\n"),
			`f.yaml:7:18: headers: "X-A\nX-Evil" is not a valid header name (`},
		{"colon in header name", oneStep("      url: https://x.example/\n      headers: { \"X-A: b\": v }\n"),
			`f.yaml:7:18: headers: "X-A: b" is not a valid header name (`},
		{"variant header", head + "steps:\n  - name: a\n    request: { url: https://x.example/ }\n    variants:\n      - url: https://y.example/\n        headers: { X-A: \"a\\r\\nb\" }\n",
			`f.yaml:8:25: variant headers.X-A: header value contains CR, LF or NUL (`},
		{"file url", oneStep("      url: file:///etc/passwd\n"),
			`f.yaml:6:12: url: scheme "file" is not allowed, only http and https (`},
		{"relative url", oneStep("      url: /v1/leads/{{lead.id}}\n"),
			`f.yaml:6:12: url is not an absolute http(s) URL (`},
		{"relative url no slash", oneStep("      url: api.example.com/v1\n"),
			`f.yaml:6:12: url is not an absolute http(s) URL (`},
		{"scheme without host", oneStep("      url: \"https://\"\n"),
			`f.yaml:6:12: url is not an absolute http(s) URL (`},
		{"fallback url", head + "steps:\n  - name: a\n    request: { url: https://x.example/ }\n    fallback:\n      - request: { url: \"ftp://y.example/\" }\n",
			`f.yaml:7:25: fallback url: scheme "ftp" is not allowed, only http and https (`},
		{"basic auth without username", head + "auth: { type: basic, password: p }\nsteps:\n  - name: a\n    request: { url: https://x.example/ }\n",
			`f.yaml:3:7: auth: basic needs username (`},
		{"basic auth empty username", head + "auth: { type: basic, username: \"\", password: p }\nsteps:\n  - name: a\n    request: { url: https://x.example/ }\n",
			`f.yaml:3:32: auth: basic needs username (`},
		{"token_url not http", head + "auth: { type: oauth2, token_url: \"file:///tmp/t\", client_id: c }\nsteps:\n  - name: a\n    request: { url: https://x.example/ }\n",
			`f.yaml:3:34: auth.token_url: scheme "file" is not allowed, only http and https (`},
		{"number default", head + "settings:\n  limit: { type: number, default: abc }\nsteps:\n  - name: a\n    request: { url: https://x.example/ }\n",
			`f.yaml:4:35: setting "limit": default "abc" is not a number (`},
		{"bool default", head + "settings:\n  on:\n    type: bool\n    default: maybe\nsteps:\n  - name: a\n    request: { url: https://x.example/ }\n",
			`f.yaml:6:14: setting "on": default "maybe" is not a boolean (true or false) (`},
		{"bool default number", head + "settings:\n  on: { type: bool, default: 1 }\nsteps:\n  - name: a\n    request: { url: https://x.example/ }\n",
			`f.yaml:4:30: setting "on": default 1 is not a boolean (true or false) (`},
		{"non-bool when", head + "steps:\n  - name: a\n    when: 1\n    request: { url: https://x.example/ }\n",
			`f.yaml:5:11: when must be a condition, got the number 1 (`},
		{"non-bool failure_when", head + "steps:\n  - name: a\n    request: { url: https://x.example/ }\n    outcome: { failure_when: 0.5 }\n",
			`f.yaml:6:30: outcome.failure_when must be a condition, got the number 0.5 (`},
		{"unknown tag", head + "steps:\n  - name: a\n    request: { url: !file https://x.example/ }\n",
			`f.yaml:5:21: unknown YAML tag "!file" (`},
		{"python tag", head + "settings:\n  a: { default: !!python/object:os.system [ls] }\nsteps:\n  - name: a\n    request: { url: https://x.example/ }\n",
			`f.yaml:4:17: unknown YAML tag "!!python/object:os.system" (`},
		{"extra document", head + "steps:\n  - name: a\n    request: { url: https://x.example/ }\n---\nversion: 1\nname: y\n",
			`f.yaml:7:1: extra YAML document (`},
		{"step without name", head + "steps:\n  - request: { url: https://x.example/ }\n",
			`f.yaml:4:5: step: missing required key "name" (`},
		{"empty step", head + "steps:\n  - name: a\n    request: { url: https://x.example/ }\n  -\n",
			`f.yaml:6:4: integration.steps[1] is empty (`},
	}
	posRE := regexp.MustCompile(`^f\.yaml:\d+:\d+: `)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse("f.yaml", []byte(c.src))
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("err = %v, want ErrorList", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("errors:\n%v\nmissing %q", err, c.want)
			}
			for _, e := range list {
				if !posRE.MatchString(e.Error()) {
					t.Errorf("error without a position: %q", e.Error())
				}
			}
		})
	}
}

func TestValidationAccepts(t *testing.T) {
	for _, src := range []string{
		oneStep("      url: \"{{settings.base}}/x\"\n      headers: { X-A: \"{{lead.a}} b\", \"X-Custom_1\": v }\n") + "settings:\n  base: {}\n",
		oneStep("      url: \"HTTPS://{{settings.host}}/x\"\n") + "settings:\n  host: {}\n",
		oneStep("      url: http://x.example/{{lead.id}}\n"),
		head + "settings:\n  n: { type: number, default: 10 }\n  f: { type: number, default: \"1.5\" }\n  b: { type: bool, default: false }\n  s: { type: bool, default: \"true\" }\n  l: { type: list, default: [1] }\n  o: { type: object, default: { a: 1 } }\n  t: { default: !!str 10 }\nsteps:\n  - name: a\n    when: true\n    request: { url: https://x.example/ }\n",
		"---\n" + head + "steps:\n  - name: a\n    request: { url: https://x.example/ }\n...\n",
		head + "auth: { type: basic, username: \"{{settings.u}}\", password: p }\nsteps:\n  - name: a\n    request: { url: https://x.example/ }\n",
	} {
		if _, err := parse("f.yaml", []byte(src)); err != nil {
			t.Errorf("parse(\n%s): %v", src, err)
		}
	}
}

// An auth section's problems that no setting can fix are load errors at the
// offending value, the enum's values in the hint: validate reports what
// run, try, sync and test would have refused at bind.
func TestAuthLoadErrors(t *testing.T) {
	file := func(auth string) string {
		return head + "auth: " + auth + "\nsteps:\n  - name: a\n    request: { url: https://x.example/ }\n"
	}
	cases := []struct{ name, auth, want string }{
		{"api_key in", `{ type: api_key, in: heder, value: "{{settings.k}}" }`,
			`f.yaml:3:28: auth: api_key in "heder" is not a known value (one of header, query)`},
		{"api_key without value", `{ type: api_key }`, `f.yaml:3:7: auth: api_key needs value (`},
		{"api_key empty value", `{ type: api_key, value: "" }`, `f.yaml:3:31: auth: api_key needs value (`},
		{"bearer without token", `{ type: bearer }`, `f.yaml:3:7: auth: bearer needs token (`},
		{"grant", `{ type: oauth2, grant: password, token_url: "https://x/t", client_id: a, client_secret: b }`,
			`f.yaml:3:30: auth: oauth2 grant "password" is not a known value (one of client_credentials, authorization_code)`},
		{"auth_style", `{ type: oauth2, auth_style: hdr, token_url: "https://x/t", client_id: a, client_secret: b }`,
			`f.yaml:3:35: auth: oauth2 auth_style "hdr" is not a known value (one of header, body; leave it out to auto-detect)`},
		{"oauth2 without token_url", `{ type: oauth2, client_id: a, client_secret: b }`, `f.yaml:3:7: auth: oauth2 needs token_url (`},
		{"oauth2 without client_id", `{ type: oauth2, token_url: "https://x/t", client_secret: b }`, `f.yaml:3:7: auth: oauth2 needs client_id (`},
		{"authorization_code without auth_url", `{ type: oauth2, grant: authorization_code, token_url: "https://x/t", client_id: a }`, `f.yaml:3:7: auth: oauth2 needs auth_url (`},
		{"client_credentials without secret", `{ type: oauth2, token_url: "https://x/t", client_id: a }`, `f.yaml:3:7: auth: oauth2 needs client_secret (`},
		{"hmac algorithm", `{ type: hmac, secret: s, algorithm: sha1 }`,
			`f.yaml:3:43: auth: hmac algorithm "sha1" is not a known value (one of sha256, sha512)`},
		{"hmac algorithm case", `{ type: hmac, secret: s, algorithm: SHA256 }`,
			`f.yaml:3:43: auth: hmac algorithm "SHA256" is not a known value (one of sha256, sha512)`},
		{"hmac encoding", `{ type: hmac, secret: s, encoding: b64 }`,
			`f.yaml:3:42: auth: hmac encoding "b64" is not a known value (one of hex, base64, base64url)`},
		{"hmac timestamp_format", `{ type: hmac, secret: s, timestamp_format: iso }`,
			`f.yaml:3:50: auth: hmac timestamp_format "iso" is not a known value (one of unix, unix_ms, rfc3339)`},
		{"hmac message syntax", `{ type: hmac, secret: s, message: "{{.Method" }`, `f.yaml:3:41: auth: hmac message: unclosed action (`},
		{"hmac message field", `{ type: hmac, secret: s, message: "{{.Metod}}" }`,
			`f.yaml:3:41: auth: hmac message: at <.Metod>: can't evaluate field Metod (`},
		{"hmac message header", `{ type: hmac, secret: s, message: "{{.Headers.Host}}" }`,
			`f.yaml:3:41: auth: hmac message: at <.Headers.Host>: map has no entry for key "Host" (headers must be listed in signed_headers) (`},
		{"hmac without secret", `{ type: hmac }`, `f.yaml:3:7: auth: hmac needs secret (`},
		{"rotate no tokens", `{ type: rotate, tokens: [] }`, `f.yaml:3:31: auth: rotate needs tokens (`},
		{"rotate empty token", `{ type: rotate, tokens: [a, ""] }`, `f.yaml:3:31: auth: rotate tokens[1] is empty (`},
		{"key of another type", `{ type: api_key, value: v, token: x, username: u }`,
			`f.yaml:3:41: auth: token is not a key of type api_key (an auth of type api_key takes in, name, value)`},
		{"second key of another type", `{ type: api_key, value: v, token: x, username: u }`,
			`f.yaml:3:54: auth: username is not a key of type api_key (`},
		{"none with a key", `{ type: none, token: x }`,
			`f.yaml:3:28: auth: token is not a key of type none (an auth of type none takes no keys)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse("f.yaml", []byte(file(c.auth)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("errors:\n%v\nmissing %q", err, c.want)
			}
		})
	}
	t.Run("a value that did not decode is reported once", func(t *testing.T) {
		_, err := parse("f.yaml", []byte(file(`{ type: rotate, tokens: abc }`)))
		if err == nil || strings.Count(err.Error(), "f.yaml:3:31:") != 1 {
			t.Errorf("errors:\n%v\nwant one at f.yaml:3:31", err)
		}
	})
	t.Run("step auth", func(t *testing.T) {
		src := head + "steps:\n  - name: a\n    request: { url: https://x.example/ }\n    auth: { type: api_key, in: heder, value: v }\n"
		_, err := parse("f.yaml", []byte(src))
		if want := `f.yaml:6:32: auth: api_key in "heder" is not a known value`; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors:\n%v\nmissing %q", err, want)
		}
	})
	for _, ok := range []string{
		`{ type: api_key, in: query, name: k, value: "{{settings.k}}" }`,
		`{ type: oauth2, grant: authorization_code, token_url: "{{settings.base}}/t", auth_url: "{{settings.base}}/a", client_id: a, auth_style: body, header: X-T }`,
		`{ type: hmac, secret: s, algorithm: sha512, encoding: base64url, timestamp_format: unix_ms, signed_headers: [host], message: "{{.Method}}{{.Headers.Host}}" }`,
		`{ type: rotate, tokens: ["{{settings.a}}"], header: X-T, prefix: "Bearer " }`,
		`{ type: none }`,
		`{ type: x-mine, token: t, secret: s }`,
	} {
		if _, err := parse("f.yaml", []byte(file(ok))); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}
