package testcase

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plumbhq/plumb/steps"
)

// TestCheckErrorsOfEverySection pins the load errors of each section a
// case is checked in (lead, now, settings, responses, expect), their text
// and their order, so that the check can be reorganised safely.
func TestCheckErrorsOfEverySection(t *testing.T) {
	dir := write(t, map[string]string{"x.yaml": integration, "lead.json": "[1]", "x.test.yaml": `tests:
  - name: both
    lead: {}
    lead_file: lead.json
  - name: missing
    lead_file: nowhere.json
  - name: notobject
    lead_file: lead.json
    now: yesterday
    settings: { nope: 1 }
    responses:
      "FETCH /x": { status: 200 }
    expect:
      outcome: success
      step: chek
      reason_matches: "("
      steps: { chek: maybe }
      captured: { chek: { ok: true }, check: { ko: true } }
      lead: [1]
      requests:
        chek: []
        check: [{ url_matches: "[" }]
      attempts: { chek: 1 }
`})
	_, err := Load(dir)
	var list steps.ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("want an ErrorList, got %v", err)
	}
	file := filepath.Join(dir, "x.test.yaml")
	var got []string
	for _, e := range list {
		got = append(got, strings.ReplaceAll(e.Error(), file, "FILE"))
	}
	want := []string{
		`FILE:2:5: test "both": give lead or lead_file, not both`,
		`FILE:5:5: test "missing": lead_file: no such file or directory (lead_file is relative to FILE)`,
		`FILE:7:5: test "notobject": lead_file lead.json must hold a JSON object`,
		`FILE:7:5: test "notobject": now must be an RFC 3339 time, got "yesterday" (e.g. now: 2024-06-01T12:00:00Z)`,
		`FILE:10:17: unknown setting "nope" (declared settings: base_url, key)`,
		`FILE:12:7: unknown HTTP method "FETCH" in route "FETCH /x" (a route is "METHOD /path" or "/path")`,
		`FILE:14:7: expect.step: no step named "chek" (steps: check)`,
		"FILE:14:7: expect.reason_matches: error parsing regexp: missing closing ): `(`",
		`FILE:17:16: expect.steps: no step named "chek" (steps: check)`,
		`FILE:17:16: expect.steps.chek: unknown outcome "maybe" (` + steps.Outcomes.Hint() + `)`,
		`FILE:18:19: expect.captured: no step named "chek" (steps: check)`,
		`FILE:18:48: expect.captured.check: step check captures no "ko" (captures of check: ok)`,
		`FILE:19:13: expect.lead must be a mapping`,
		`FILE:21:9: expect.requests: no step named "chek" (steps: check; or a route)`,
		"FILE:22:17: url_matches: error parsing regexp: missing closing ]: `[`",
		`FILE:23:19: expect.attempts: no step named "chek" (steps: check)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
