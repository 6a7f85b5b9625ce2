package steps

import (
	"strings"
	"testing"
)

// TestFlowSyntaxErrorsPointAtTheToken (issue 14.9): yaml.v3 reports a broken
// { } or [ ] at the line before the one it opens on; plumb points at the
// token that breaks it.
func TestFlowSyntaxErrorsPointAtTheToken(t *testing.T) {
	head := "version: 1\nname: x\nsteps:\n  - name: s\n"
	for src, want := range map[string]string{
		head + "    request: { url: \"x\",\n      headers: { A: b } c }\n":                              "f.yaml:6:25: invalid YAML: expected ',' or '}' here",
		head + "    request: { url: \"http://x\" }\n    capture: { price: { regex: price: (\\d+) } }\n": "f.yaml:6:37: invalid YAML: a second ':' in one entry",
		head + "    request: { url: x }\n    capture: { a: { json: a }\n":                               "f.yaml:6:14: invalid YAML: this { is never closed",
		head + "    request: { url: x, headers: { A: \"b } }\n":                                         "f.yaml:5:38: invalid YAML: this quoted string is never closed",
	} {
		_, err := parse("f.yaml", []byte(src))
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q:\n got %v\nwant %s", src, err, want)
		}
	}
}
