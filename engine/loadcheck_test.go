package engine

import (
	"strings"
	"testing"
)

// loadErrs parses src as bad.yaml and returns its load error, one problem a line.
func loadErrs(t *testing.T, src string) string {
	t.Helper()
	_, err := Parse("bad.yaml", []byte(src))
	if err == nil {
		return ""
	}
	return err.Error()
}

// wantErrs checks that got holds each line of want, and count times when
// the line is given with a count.
func wantErrs(t *testing.T, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
}

// A capture's default is converted to its type at load: one that does not
// convert is a load error at the default.
func TestCaptureDefaultFitsItsType(t *testing.T) {
	got := loadErrs(t, `version: 1
name: bad
steps:
  - name: s
    request: { url: "https://api.example.com/x" }
    capture:
      a: { json: a, type: number, default: abc }
      b: { json: b, type: bool, default: maybe }
      c: { json: c, type: int, default: 1.5 }
      d: { json: d, type: boolean }
`)
	wantErrs(t, got,
		`bad.yaml:7:44: capture "a": default: "abc" is not a number`,
		`bad.yaml:8:42: capture "b": default: "maybe" is not a boolean`,
		`bad.yaml:9:41: capture "c": default: 1.5 is not an integer`,
		`bad.yaml:10:27: capture "d": unknown type "boolean" (one of string, number, int, bool)`,
	)
	if n := strings.Count(got, `"boolean"`); n != 1 {
		t.Errorf("unknown type reported %d times:\n%s", n, got)
	}

	p, err := Parse("ok.yaml", []byte(`version: 1
name: ok
steps:
  - name: s
    request: { url: "https://api.example.com/x" }
    capture:
      a: { json: a, type: number, default: "2.5" }
      b: { json: b, type: bool, default: "yes" }
      c: { json: c, type: string, default: 3 }
      d: { json: d, default: abc }
`))
	if err != nil {
		t.Fatal(err)
	}
	var defs []any
	for _, c := range p.steps[0].captures {
		defs = append(defs, c.def)
	}
	if want := []any{2.5, true, "3", "abc"}; !equalAny(defs, want) {
		t.Errorf("defaults = %#v, want %#v", defs, want)
	}
}

func equalAny(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A gjson path with a query never closed selects nothing whatever the
// answer: a load error at the path, for captures and a batch's paths.
func TestJSONPathsChecked(t *testing.T) {
	got := loadErrs(t, `version: 1
name: bad
steps:
  - name: s
    batch: { size: 2, wait: 1s, results: "results.#(", id: "#(x" }
    request: { url: "https://api.example.com/x", body: { json: { a: 1 } } }
    capture:
      a: { json: 'items.#(id==' }
      b: { json: '@type' }
      c: { json: 'reason[' }
`)
	wantErrs(t, got,
		`bad.yaml:8:18: capture "a": json path "items.#(id==": the query #(id== is never closed`,
		`bad.yaml:5:42: batch: results: json path "results.#(": the query #( is never closed`,
		`bad.yaml:5:60: batch: id: json path "#(x": the query #(x is never closed`,
	)
	if strings.Contains(got, `"b"`) || strings.Contains(got, `"c"`) {
		t.Errorf("a path that can match is refused:\n%s", got)
	}
}

// A problem in a block scalar (| or >) is reported at the line and column
// of the file that holds it, not at the indicator's column.
func TestBlockScalarPositions(t *testing.T) {
	got := loadErrs(t, `version: 1
name: bad
settings: { base: { default: "https://api.example.com" } }
steps:
  - name: s
    request:
      url: "{{settings.base}}/x"
      body:
        json: |
          {"email": "{{lead.email}}",

            "n": {{lead.n}},, "x": 1}
      headers:
        X-A: >-
          {{settings.base}}
          and {{settings.nope}}

          then {{ lead.x }}
        X-B: |
          {{ lead.x | nosuch }}
    outcome:
      reason: |2
           {{settings.also_nope}}
  - name: t
    request:
      url: "{{settings.base}}/x"
      body:
        json: |
          [",,", 1
          ,,
          ]
`)
	wantErrs(t, got,
		`bad.yaml:12:29: bad template: the JSON text is not valid JSON whatever the data: invalid character ','`,
		`bad.yaml:16:17: unknown setting "nope"`,
		`bad.yaml:20:11: bad template: function "nosuch" not defined`,
		`bad.yaml:23:15: unknown setting "also_nope"`, // an indentation indicator: the line, at the indicator
		`bad.yaml:15:11: headers.X-A: header value contains CR, LF or NUL`,
		`bad.yaml:30:12: bad template: the JSON text is not valid JSON whatever the data: invalid character ','`,
	)
}

// Every problem of a webhook's verify: is reported, each at its field.
func TestWebhookVerifyReportsEveryProblem(t *testing.T) {
	got := loadErrs(t, `version: 1
name: wh
settings:
  hook_secret: { required: true, secret: true }
webhook:
  verify:
    preset: hmac
    secrets: ["{{settings.hook_secret}}"]
    header: X-Sig
    algorithm: md5
    encoding: b32
    signed: "{id}.{body}"
    tolerance: 5m
steps:
  - name: s
    request: { url: "https://api.example.com/x" }
`)
	wantErrs(t, got,
		`bad.yaml:10:16: webhook: verify: algorithm "md5" is not sha1, sha256 or sha512`,
		`bad.yaml:11:15: webhook: verify: encoding "b32" is not hex, base64 or base64url`,
		`bad.yaml:12:13: webhook: verify: signed uses {id} but id_header is not set`,
		`bad.yaml:13:16: webhook: verify: tolerance is set but preset hmac signs no timestamp`,
	)
	got = loadErrs(t, `version: 1
name: wh
settings:
  hook_secret: { required: true, secret: true }
webhook:
  verify:
    preset: github
    secrets: ["{{settings.hook_secret}}"]
    algorithm: sha1
    tolerance: 5m
steps:
  - name: s
    request: { url: "https://api.example.com/x" }
`)
	wantErrs(t, got,
		`bad.yaml:9:16: webhook: verify: algorithm is only for preset hmac; preset github fixes it`,
		`bad.yaml:10:16: webhook: verify: tolerance is set but preset github signs no timestamp`,
	)
}
