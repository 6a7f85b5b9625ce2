package testcase

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plumbhq/plumb/steps"
)

const integration = `version: 1
name: t
settings:
  base_url: { default: "https://api.example" }
  key: { secret: true, default: k1 }
steps:
  - name: check
    request:
      method: POST
      url: "{{settings.base_url}}/check"
      headers: { X-Key: "{{settings.key}}" }
      body: { json: { email: "{{lead.email}}" } }
    capture:
      ok: { json: ok, type: bool }
    outcome: { failure_when: captured.ok == false }
    append: { checked.ok: "{{captured.ok}}" }
`

func write(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runOne(t *testing.T, tests string) *CaseResult {
	t.Helper()
	dir := write(t, map[string]string{"x.yaml": integration, "x.test.yaml": tests})
	l, err := Load(filepath.Join(dir, "x.yaml"))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if len(l.Suites) != 1 || len(l.Suites[0].Cases) != 1 {
		t.Fatalf("want one suite of one case, got %+v", l.Suites)
	}
	s := l.Suites[0]
	return s.RunCase(context.Background(), s.Cases[0], Options{})
}

func failures(r *CaseResult) string {
	var lines []string
	for _, f := range r.Failures {
		lines = append(lines, f.String())
	}
	return strings.Join(lines, "\n")
}

func TestPassingCase(t *testing.T) {
	r := runOne(t, `tests:
  - name: ok
    lead: { email: a@b.example }
    settings: { base_url: "https://api.example" }
    responses:
      check:
        - { status: 500 }
        - { body: { ok: true } }
    expect:
      outcome: success
      attempts: { check: 2 }
      captured: { check: { ok: true } }
      lead: { checked.ok: true, email: a@b.example }
      requests:
        check:
          - { method: post, url: "https://api.example/check", headers: { x-key: k1 }, body: { email: a@b.example } }
          - { path: /check, body_contains: a@b.example }
`)
	if !r.Passed {
		t.Fatalf("case failed:\n%s", failures(r))
	}
	if len(r.Requests) != 2 || r.Requests[0].Status != 500 || r.Requests[1].Status != 200 {
		t.Errorf("requests: %+v", r.Requests)
	}
	if _, ok := r.Requests[0].Header["X-Plumb-Step"]; ok {
		t.Error("the routing header is recorded")
	}
}

func TestFailingCaseReportsEveryMismatch(t *testing.T) {
	r := runOne(t, `tests:
  - name: wrong
    lead: { email: a@b.example }
    responses: { check: { body: { ok: true } } }
    expect:
      outcome: failure
      reason: nope
      captured: { check: { ok: false } }
      lead: { checked: { ok: false }, missing: 1 }
      requests: { check: [{ method: GET }, {}] }
`)
	if r.Passed {
		t.Fatal("case passed")
	}
	got := failures(r)
	for _, want := range []string{
		"outcome: want failure, got success",
		`reason: want text containing "nope", got nothing`,
		"captured.check.ok: want false, got true",
		"lead.checked.ok: want false, got true",
		"lead.missing: want 1, got nothing",
		"requests.check: want 2 requests, got 1 request (POST http://127.0.0.1:",
		"requests.check[0].method: want GET, got POST",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("failures lack %q:\n%s", want, got)
		}
	}
	var diff string
	for _, f := range r.Failures {
		if f.Path == "lead" {
			diff = f.Diff
		}
	}
	want := "--- want\n+++ got\n {\n   \"checked\": {\n-    \"ok\": false\n-  },\n-  \"missing\": 1\n+    \"ok\": true\n+  }\n }"
	if diff != want {
		t.Errorf("lead diff:\n%s\nwant:\n%s", diff, want)
	}
}

func TestUnrecordedStep(t *testing.T) {
	r := runOne(t, `tests:
  - name: none
    lead: { email: a@b.example }
`)
	if r.Passed || !strings.Contains(failures(r), "step check sent a request but the test recorded no response for it") {
		t.Errorf("failures:\n%s", failures(r))
	}
}

func TestLoadErrorsArePositioned(t *testing.T) {
	dir := write(t, map[string]string{"x.yaml": integration, "x.test.yaml": `tests:
  - name: a
    lead: [1]
    respones: {}
    responses:
      chek: { status: 700, error: boom }
    expect:
      outcome: maybe
      attempts: { check: many }
  - name: a
`})
	_, err := Load(dir)
	var list steps.ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("want an ErrorList, got %v", err)
	}
	file := filepath.Join(dir, "x.test.yaml")
	got := err.Error()
	for _, want := range []string{
		file + `:3:11: lead must be a mapping`,
		file + `:4:5: unknown key "respones" in tests[0] (did you mean "responses"?)`,
		file + `:6:7: responses: no step named "chek"`,
		file + `:6:13: status 700 is not an HTTP status`,
		file + `:6:13: unknown error "boom"`,
		file + `:8:7: expect.outcome: unknown outcome "maybe"`,
		file + `:9:26: tests[0].expect.attempts.check must be a whole number, got "many"`,
		file + `:10:5: duplicate test name "a"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q:\n%s", want, got)
		}
	}
}

func TestDiscovery(t *testing.T) {
	dir := write(t, map[string]string{
		"a/x.yaml":          integration + "tests:\n  - name: inline\n    lead: { email: '' }\n    responses: { check: { body: { ok: true } } }\n",
		"a/x.test.yaml":     "tests:\n  - name: sibling\n    responses: { check: { body: { ok: true } } }\n",
		"a/b/y.yaml":        integration,
		"a/b/settings.yaml": "key: v\n",
		"a/testdata/z.yaml": integration + "tests: 3\n",
		"c/t.test.yaml":     "integration: ../a/x.yaml\ntests:\n  - name: elsewhere\n",
	})
	l, err := Load(filepath.Join(dir, "a") + "/...")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range l.Suites {
		for _, c := range s.Cases {
			names = append(names, filepath.Base(s.File)+":"+c.Name)
		}
	}
	if got, want := strings.Join(names, " "), "x.test.yaml:sibling x.yaml:inline"; got != want {
		t.Errorf("cases %q, want %q", got, want)
	}
	if len(l.Untested) != 1 || filepath.Base(l.Untested[0]) != "y.yaml" {
		t.Errorf("untested: %v", l.Untested)
	}
	l, err = Load(filepath.Join(dir, "c", "t.test.yaml"))
	if err != nil || len(l.Suites) != 1 || l.Suites[0].Integration != filepath.Join(dir, "a", "x.yaml") {
		t.Errorf("integration: key: %v %+v", err, l)
	}
}

// TestTimestampsStayText checks that unquoted dates and times in test
// YAML (lead, settings, bodies, expectations) keep their text, as they
// would be in a JSON lead, instead of becoming "1985-09-09 00:00:00 +0000
// UTC"; anchors and aliases of them too.
func TestTimestampsStayText(t *testing.T) {
	r := runOne(t, `tests:
  - name: dates
    lead:
      email: a@b.example
      birth_date: &bd 1985-09-09
      seen_at: 2024-06-01T12:30:00Z
      history: [2001-12-14, { at: 2001-12-14 21:59:43.10 -5 }]
      copy: *bd
    responses:
      check: { body: { ok: true, since: 2020-01-02 } }
    expect:
      outcome: success
      lead:
        birth_date: "1985-09-09"
        seen_at: "2024-06-01T12:30:00Z"
        history: ["2001-12-14", { at: "2001-12-14 21:59:43.10 -5" }]
        copy: 1985-09-09
      requests:
        check:
          - body: { email: a@b.example }
`)
	if !r.Passed {
		t.Fatalf("case failed:\n%s", failures(r))
	}
	for k, want := range map[string]any{"birth_date": "1985-09-09", "seen_at": "2024-06-01T12:30:00Z", "copy": "1985-09-09"} {
		if got := r.Result.Lead[k]; got != want {
			t.Errorf("lead.%s = %#v, want %#v", k, got, want)
		}
	}
	h, _ := r.Result.Lead["history"].([]any)
	if len(h) != 2 || h[0] != "2001-12-14" {
		t.Errorf("lead.history = %#v", r.Result.Lead["history"])
	}
	if m, _ := h[1].(map[string]any); m["at"] != "2001-12-14 21:59:43.10 -5" {
		t.Errorf("lead.history[1] = %#v", h[1])
	}

	// a mismatch shows the date as written
	r = runOne(t, `tests:
  - name: wrong date
    lead: { email: a@b.example, birth_date: 1985-09-09 }
    responses:
      check: { body: { ok: true } }
    expect:
      lead: { birth_date: 1990-01-01 }
`)
	if r.Passed {
		t.Fatal("a wrong date passed")
	}
	if got := failures(r); !strings.Contains(got, `lead.birth_date: want "1990-01-01", got "1985-09-09"`) {
		t.Errorf("failures:\n%s", got)
	}
}

func TestEmptyTestFile(t *testing.T) {
	dir := write(t, map[string]string{"x.yaml": integration, "x.test.yaml": "# nothing yet\n"})
	_, err := Load(filepath.Join(dir, "x.test.yaml"))
	if want := filepath.Join(dir, "x.test.yaml") + ":1:1: the file is empty"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want %q", err, want)
	}
}

// TestFailedCaseShowsCaptureNotes (issue 31): a capture whose path finds
// nothing is null; the failed case's report says why, with the keys the
// answer had instead.
func TestFailedCaseShowsCaptureNotes(t *testing.T) {
	r := runOne(t, `tests:
  - name: renamed field
    lead: { email: a@b.example }
    responses: { check: { body: { data: { ok: true }, meta: {} } } }
    expect:
      captured: { check: { ok: true } }
`)
	if r.Passed {
		t.Fatal("case passed")
	}
	out := FormatCase(r)
	want := "    note: step check: `ok`: path `ok` not found in the response (keys: data, meta)\n"
	if !strings.Contains(out, want) || !strings.Contains(out, "captured.check.ok: want true, got null") {
		t.Fatalf("report:\n%s\nwant a line %q", out, want)
	}
}
