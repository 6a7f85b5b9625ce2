package testcase

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/plumbhq/plumb/steps"
)

// loadErrors loads dir and returns its problems with the directory
// written DIR.
func loadErrors(t *testing.T, dir string) string {
	t.Helper()
	_, err := Load(dir)
	if err == nil {
		t.Fatal("loaded without a problem")
	}
	return strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "DIR/")
}

// TestTestFileSyntaxErrorIsPositioned: a YAML syntax error in a test file
// is at its line and column, as in an integration file, not at 1:1
// (mutant: the parser's message at 1:1).
func TestTestFileSyntaxErrorIsPositioned(t *testing.T) {
	dir := write(t, map[string]string{"x.yaml": integration, "x.test.yaml": "tests:\n  name: a\n    lead: {}\n"})
	want := "DIR/x.test.yaml:3:5: invalid YAML: mapping values are not allowed in this context (check indentation and quoting on this line or the one before)"
	if got := loadErrors(t, dir); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestTestFileIntegrationIsPositioned: an integration: that names no
// file, or a directory, is reported at the integration: value of the test
// file (mutant: the integration's load error, with no place in the test
// file).
func TestTestFileIntegrationIsPositioned(t *testing.T) {
	for path, why := range map[string]string{"nope.yaml": "no such file or directory", "sub": "not a regular file"} {
		dir := write(t, map[string]string{"sub/x.yaml": integration, "x.test.yaml": "# cases\nintegration: " + path + "\ntests:\n  - name: a\n"})
		want := "DIR/x.test.yaml:2:14: integration: cannot read " + path + ": " + why + " (the path is relative to the test file)"
		if got := loadErrors(t, dir); got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}

// TestExpectedRequestsMethodAndPath: expect.requests with a method that
// is none (steps.Methods, in any case) or a path that is not one (no
// leading /, a query) could never match: load errors at the value
// (mutants: no method check; no path check; the method compared without
// upper-casing).
func TestExpectedRequestsMethodAndPath(t *testing.T) {
	dir := write(t, map[string]string{"x.yaml": integration, "x.test.yaml": `tests:
  - name: a
    responses: { check: {} }
    expect:
      requests:
        check:
          - { method: post, path: /check }
          - { method: PSOT, path: check }
          - { path: "/check?x=1" }
`})
	want := strings.Join([]string{
		`DIR/x.test.yaml:8:23: expect.requests.check[1].method: unknown HTTP method "PSOT" (one of ` + strings.Join(steps.Methods, ", ") + `)`,
		`DIR/x.test.yaml:8:35: expect.requests.check[1].path: "check" is not a URL path (a path starts with / and holds no query: query values go under query:, a whole URL under url:)`,
		`DIR/x.test.yaml:9:21: expect.requests.check[2].path: "/check?x=1" is not a URL path (a path starts with / and holds no query: query values go under query:, a whole URL under url:)`,
	}, "\n")
	if got := loadErrors(t, dir); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestRequiredSettingMissingFromCase: a required setting without a
// default that a case does not set fails every run of it (settings come
// only from the case): a load error naming it, with a hint that the env
// variable is not read; base_url, a default or a value given is fine
// (mutants: no check; a default or base_url not exempted; a null value
// taken as given).
func TestRequiredSettingMissingFromCase(t *testing.T) {
	in := strings.Replace(integration, `  key: { secret: true, default: k1 }`,
		"  key: { secret: true, default: k1 }\n  api_key: { required: true, env: API_KEY }\n  url2: { required: true }\n  base_url2: { required: true, default: x }", 1)
	in = strings.Replace(in, `base_url: { default: "https://api.example" }`, `base_url: { required: true }`, 1)
	dir := write(t, map[string]string{"x.yaml": in, "x.test.yaml": `tests:
  - name: none
    settings: {}
  - name: nil value
    settings: { api_key: ~, url2: u }
  - name: given
    settings: { api_key: k, url2: u }
`})
	want := strings.Join([]string{
		`DIR/x.test.yaml:2:5: test "none": required setting "api_key" is not set (a test's settings come only from the case; the environment (API_KEY) is not read: add api_key under settings:)`,
		`DIR/x.test.yaml:2:5: test "none": required setting "url2" is not set (a test's settings come only from the case: add url2 under settings:)`,
		`DIR/x.test.yaml:4:5: test "nil value": required setting "api_key" is not set (a test's settings come only from the case; the environment (API_KEY) is not read: add api_key under settings:)`,
	}, "\n")
	if got := loadErrors(t, dir); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
