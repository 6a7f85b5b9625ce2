package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateChecksInlineTests: validate (a file or its directory)
// reports the problems of an integration's inline tests: exactly as plumb
// test does, and exits 2 (mutant: validate loads the integration only and
// says ok).
func TestValidateChecksInlineTests(t *testing.T) {
	const head = "version: 1\nname: x\nsteps:\n  - name: check\n    request: { url: \"http://x/\" }\n"
	for name, c := range map[string]struct{ tests, want string }{
		"not a list": {"tests: 5\n", ":6:8: tests must be a list"},
		"bad case": {"tests:\n  - name: a\n    responses: { chek: { status: 200 } }\n    expect: { outcome: sucess }\n",
			":8:18: responses: no step named \"chek\""},
	} {
		dir := t.TempDir()
		file := filepath.Join(dir, "x.yaml")
		if err := os.WriteFile(file, []byte(head+c.tests), 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, testErr := mainOut("test", file)
		if code != ExitUsage || !strings.Contains(testErr, file+c.want) {
			t.Fatalf("%s: plumb test: exit %d\n%s", name, code, testErr)
		}
		problems := strings.TrimSuffix(testErr, "0 passed, 0 failed\n")
		for _, arg := range []string{file, dir} {
			code, out, errs := mainOut("validate", arg)
			if code != ExitUsage || errs != problems || strings.Contains(out, "ok") {
				t.Errorf("%s: plumb validate %s: exit %d, stdout %q, stderr:\n%s\nwant (as plumb test):\n%s", name, arg, code, out, errs, problems)
			}
		}
	}
	// a good inline suite stays ok
	dir := t.TempDir()
	file := filepath.Join(dir, "x.yaml")
	os.WriteFile(file, []byte(head+"tests:\n  - name: a\n    responses: { check: { status: 200 } }\n    expect: { outcome: success }\n"), 0o644)
	if code, out, errs := mainOut("validate", file); code != ExitOK || out != file+": ok\n" {
		t.Errorf("good inline tests: exit %d, %q %q", code, out, errs)
	}
}

// TestFragmentReportsEveryProblem: a fragment with a key error and a type
// error still has its retry rules, auth and vars checked and compiled, so
// one run reports all five problems at their places in the fragment, as
// the same content in the main file does (mutant: a fragment that does not
// decode cleanly is not merged, and only the first two are reported).
func TestFragmentReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	frag := filepath.Join(dir, "f.yaml")
	os.WriteFile(frag, []byte(`retry:
  - { on: [503], action: retyr }
auth: { type: bearr, token: x }
vars:
  v: "{{ nope }}"
http: { idle_timeot: 5s }
deadline: abc
`), 0o644)
	main := filepath.Join(dir, "main.yaml")
	os.WriteFile(main, []byte("version: 1\nname: x\ninclude: [f.yaml]\nsteps:\n  - name: s\n    request: { url: \"http://x/\" }\n"), 0o644)
	code, _, errs := mainOut("validate", main)
	for _, want := range []string{
		frag + `:2:26: retry rule: unknown action "retyr"`,
		frag + `:3:7: auth: unknown type "bearr"`,
		frag + `:5:6: bad template: function "nope" not defined`,
		frag + `:6:9: unknown key "idle_timeot" in fragment.http`,
		frag + `:7:11: fragment.deadline: invalid duration "abc"`,
	} {
		if !strings.Contains(errs, want+" ") {
			t.Errorf("missing %s", want)
		}
	}
	if code != ExitUsage || strings.Count(errs, "\n") != 5 {
		t.Errorf("exit %d, stderr:\n%s", code, errs)
	}
}
