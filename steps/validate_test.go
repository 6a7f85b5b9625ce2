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
			`f.yaml:9:14: headers.X-A: header value contains CR, LF or NUL (`},
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
			`f.yaml:3:7: auth: basic auth needs a username (`},
		{"basic auth empty username", head + "auth: { type: basic, username: \"\", password: p }\nsteps:\n  - name: a\n    request: { url: https://x.example/ }\n",
			`f.yaml:3:32: auth: basic auth needs a username (`},
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
