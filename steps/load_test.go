package steps

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const good = `version: 1
name: internal-blacklist
description: Check a lead
settings:
  api_key:  { required: true, secret: true, env: BLACKLIST_API_KEY }
  base_url: { default: "https://api.internal.com" }
steps:
  - name: check
    when: lead.email != ""
    request:
      method: POST
      url: "{{settings.base_url}}/blacklist/check"
      query: { source: "{{lead.source.id}}", type: auto }
      headers: { X-API-Key: "{{settings.api_key}}" }
      body:
        json:
          email: "{{lead.email}}"
          nested: { list: [1, "{{lead.x}}"] }
    timeout: 2s
    capture:
      blacklisted: { json: is_blacklisted, type: bool }
      code: { status: true }
    outcome:
      failure_when: captured.blacklisted == true
      reason: "{{captured.reason}}"
    append:
      blacklisted: "{{captured.blacklisted}}"
`

func TestParseGood(t *testing.T) {
	in, err := parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if in.Name.Value != "internal-blacklist" || len(in.Steps) != 1 {
		t.Fatalf("bad model: %+v", in)
	}
	s := in.Steps[0]
	if s.Timeout.String() != "2s" || s.Request.Method.Value != "POST" {
		t.Fatalf("step: %+v", s)
	}
	if got := []string{in.Settings[0].Key, in.Settings[1].Key}; got[0] != "api_key" || got[1] != "base_url" {
		t.Fatalf("settings order %v", got)
	}
	if !in.Settings[0].Value.Secret || in.Settings[0].Value.Env != "BLACKLIST_API_KEY" {
		t.Fatalf("setting: %+v", in.Settings[0].Value)
	}
	if q := s.Request.Query; len(q) != 2 || q[0].Key != "source" || q[1].Value.Value != "auto" {
		t.Fatalf("query %+v", q)
	}
	if p := s.Request.URL.Pos; p.Line != 12 || p.Col != 12 || p.File != "good.yaml" {
		t.Fatalf("url pos %v", p)
	}
	if c, ok := s.Capture.Get("blacklisted"); !ok || c.JSON != "is_blacklisted" || c.Type != "bool" {
		t.Fatalf("capture %+v", c)
	}
	if s.Request.Body.JSON == nil || s.Request.Body.JSON.Pos.Line != 17 {
		t.Fatalf("body %+v", s.Request.Body)
	}
}

// TestLoadErrors checks each kind of structural problem is reported at its
// position, and that all problems of a file are reported together.
func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string
	}{
		{"unknown key with suggestion", "version: 1\nname: x\nsteps:\n  - name: a\n    request: { methd: GET, url: \"http://x\" }\n",
			[]string{`f.yaml:5:16: unknown key "methd" in integration.steps[0].request (did you mean "method"?)`}},
		{"wrong type", "version: one\nname: x\nsteps:\n  - name: a\n    request: { url: \"http://x\" }\n",
			[]string{`f.yaml:1:10: integration.version must be a whole number, got "one"`}},
		{"bad duration", "version: 1\nname: x\nsteps:\n  - name: a\n    timeout: 2 sec\n    request: { url: \"http://x\" }\n",
			[]string{`f.yaml:5:14: integration.steps[0].timeout: invalid duration "2 sec" (use a Go duration`}},
		{"missing required", "version: 1\nname: x\nsteps:\n  - name: a\n",
			[]string{`f.yaml:4:5: step "a": missing required key "request"`}},
		{"mapping expected", "version: 1\nname: x\nsettings: [a]\nsteps:\n  - name: a\n    request: { url: \"http://x\" }\n",
			[]string{`f.yaml:3:11: integration.settings must be a mapping, got a list`}},
		{"duration expected", "version: 1\nname: x\nsteps:\n  - name: a\n    timeout: [2s]\n    request: { url: \"http://x\", headers: { X-A: [1] } }\n",
			[]string{`f.yaml:5:14: integration.steps[0].timeout must be a duration, got a list`, `f.yaml:6:49: integration.steps[0].request.headers.X-A must be a string, got a list`}},
		{"list expected", "version: 1\nname: x\nsteps: {a: 1}\n",
			[]string{`f.yaml:3:8: integration.steps must be a list, got a mapping`}},
		{"duplicate step", "version: 1\nname: x\nsteps:\n  - name: a\n    request: { url: \"http://x\" }\n  - name: a\n    request: { url: \"http://x\" }\n",
			[]string{`f.yaml:6:11: duplicate step name "a" (first defined at f.yaml:4:11)`}},
		{"bad step name", "version: 1\nname: x\nsteps:\n  - name: my-step\n    request: { url: \"http://x\" }\n",
			[]string{`f.yaml:4:11: step name "my-step" is not a valid name`}},
		{"bad method and two bodies", "version: 1\nname: x\nsteps:\n  - name: a\n    request:\n      method: FETCH\n      url: \"http://x\"\n      body: { text: a, xml: b }\n",
			[]string{`f.yaml:6:15: unknown HTTP method "FETCH"`, `f.yaml:8:13: body has 2 kinds set`}},
		{"duplicate key", "version: 1\nname: x\nname: y\nsteps: []\n",
			[]string{`f.yaml:3:1: duplicate key "name" in integration`}},
		{"bad version", "version: 2\nname: x\nsteps:\n  - name: a\n    request: { url: \"http://x\" }\n",
			[]string{`f.yaml:1:1: unsupported version 2`}},
		{"unknown capture type", "version: 1\nname: x\nsteps:\n  - name: a\n    request: { url: \"http://x\" }\n    capture:\n      s: { json: a, type: float }\n",
			[]string{`f.yaml:7:27: capture "s": unknown type "float"`}},
		{"conflicting keys", `version: 1
name: x
steps:
  - name: a
    request:
      url: "http://x"
      headers: { X-API-Key: "{{settings.k}}", x-api-key: b, Accept: a, Content-Type: a, content-TYPE: b }
    capture: { score: { json: s }, ok: { json: ok } }
    append: { blacklist.reason: a, blacklist: b, r: c, r2.x.y: d, r2.x: e, rr.x: f, q: 1, q.w.e: 2, q.w: 3 }
    fallback: [ { defaults: { scor: 50, ok: true, zzzzzz: 1 } } ]
  - name: b
    request: { url: "http://x" }
    fallback: [ { defaults: { score: 1 } } ]
`, []string{
			`f.yaml:7:47: headers: "X-API-Key" and "x-api-key" are the same header`,
			`f.yaml:9:15: append: "blacklist.reason" clashes with "blacklist"`,
			`headers: "Content-Type" and "content-TYPE" are the same header`,
			`append: "q.w.e" clashes with "q"`,
			`f.yaml:9:56: append: "r2.x.y" clashes with "r2.x"`,
			`f.yaml:10:31: fallback defaults: step "a" has no capture "scor" (did you mean "score"?)`,
			`f.yaml:10:51: fallback defaults: step "a" has no capture "zzzzzz" (defaults name the step's captures)`,
			`f.yaml:13:31: fallback defaults: step "b" has no capture "score" (the step has no captures`,
		}},
		{"enums at their values", `version: 1
name: x
steps:
  - name: a
    request: { url: "http://x" }
    follow_redirects: sameorigin
    on_error: continu
    retry: [ { on: [429], action: stpo, retry_after: honour } ]
`, []string{
			`f.yaml:6:23: step "a": unknown follow_redirects "sameorigin"`,
			`f.yaml:7:15: step "a": unknown on_error "continu"`,
			`f.yaml:8:35: retry rule: unknown action "stpo"`,
			`f.yaml:8:54: retry rule: unknown retry_after "honour"`,
		}},
		{"callback without secret", "version: 1\nname: x\ncallback: { events: results }\nsteps:\n  - name: a\n    request: { url: \"http://x\" }\n",
			[]string{`f.yaml:3:11: integration.callback: missing required key "secret"`, `f.yaml:3:21: callback: unknown events "results"`}},
		{"undefined alias", "version: 1\nname: x\n# *nope in a comment\nsteps:\n  - name: a\n    request: { url: \"*nope\", method: *nope }\n",
			[]string{`f.yaml:6:38: invalid YAML: unknown anchor "nope" referenced (an alias *nope repeats`}},
		{"syntax error", "version: 1\nname: x\nsteps:\n  - name: a\n   request: {\n",
			[]string{`f.yaml:3:1: invalid YAML: did not find expected '-' indicator`}},
		{"empty", "", []string{`f.yaml:1:1: the file is empty`}},
		{"several at once", "version: 1\nnam: x\nsteps:\n  - name: a\n    request: { url: \"http://x\", foo: 1 }\n    capture:\n      s: { json: a, type: float }\n",
			[]string{`f.yaml:2:1: unknown key "nam" in integration (did you mean "name"?)`, `f.yaml:1:1: integration: missing required key "name"`, `f.yaml:5:33: unknown key "foo"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse("f.yaml", []byte(c.src))
			for _, l := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(l, "f.yaml:") {
					t.Errorf("a line without a position: %q", l)
				}
			}
			if c.name == "conflicting keys" {
				if n := strings.Count(err.Error(), `"q.w.e" clashes`); n != 1 {
					t.Errorf("q.w.e reported %d times:\n%v", n, err)
				}
				for _, ok := range []string{`"rr.x"`, `"r" `, `"ok"`, `"Accept"`} {
					if strings.Contains(err.Error(), ok) {
						t.Errorf("%s refused:\n%v", ok, err)
					}
				}
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("err = %v, want ErrorList", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("errors:\n%v\nmissing %q", err, w)
				}
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.yaml")
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	in, err := load(path)
	if err != nil || in.File != path {
		t.Fatalf("Load: %v %v", in, err)
	}
	_, err = load(filepath.Join(dir, "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "missing.yaml: cannot read integration: no such file") {
		t.Fatalf("missing file err = %v", err)
	}
}

func TestBlockScalarPosition(t *testing.T) {
	src := "version: 1\nname: x\nsteps:\n  - name: a\n    request:\n      url: \"http://x\"\n      body:\n        xml: |\n          <a>{{lead.x}}</a>\n"
	in, err := parse("f.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if p := in.Steps[0].Request.Body.XML.Pos; p.Line != 9 {
		t.Fatalf("block scalar content line = %d, want 9", p.Line)
	}
}
