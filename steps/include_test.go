package steps

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInclude (issue 14.15): shared settings, auth, http, vars and retry
// rules come from a fragment; the integration's own keys win; problems
// inside a fragment are positioned in the fragment.
func TestInclude(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("shared/partner.yaml", `include: [base.yaml]
settings:
  api_key: { required: true, secret: true }
  base_url: { default: "https://api.partner.example" }
auth: { type: api_key, in: header, name: X-API-Key, value: "{{settings.api_key}}" }
retry:
  - { on: [503], action: retry, max_attempts: 5 }
vars:
  tier: '{{ "gold" }}'
`)
	write("shared/base.yaml", "http: { max_conns_per_host: 4 }\ndeadline: 20s\n")
	main := write("a.yaml", `version: 1
name: a
include: [shared/partner.yaml]
settings:
  base_url: { default: "https://eu.partner.example" }
steps:
  - name: s
    request: { url: "{{settings.base_url}}/x" }
`)
	in, err := Load(main)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := in.Settings.Get("base_url"); b.Default != "https://eu.partner.example" {
		t.Errorf("own setting must win: %v", b.Default)
	}
	if _, ok := in.Settings.Get("api_key"); !ok || in.Auth == nil || in.Auth.Type != "api_key" || len(in.Retry) != 1 || in.HTTP == nil || in.HTTP.MaxConnsPerHost != 4 || in.Deadline.String() != "20s" {
		t.Errorf("merged: %+v", in)
	}
	if _, ok := in.Vars.Get("tier"); !ok {
		t.Errorf("vars not merged")
	}
	write("shared/bad.yaml", "settings:\n  k: { required: true, secrt: true }\n")
	write("loop.yaml", "include: [loop2.yaml]\n")
	write("loop2.yaml", "include: [loop.yaml]\n")
	for inc, want := range map[string]string{
		"shared/bad.yaml":  filepath.Join(dir, "shared/bad.yaml") + ":2:24: unknown key \"secrt\"",
		"shared/none.yaml": "a.yaml:3:11: include: cannot read none.yaml",
		"loop.yaml":        "loop2.yaml:1:11: include: loop.yaml is included in a loop or twice",
	} {
		src := strings.Replace(string(must(os.ReadFile(main))), "shared/partner.yaml", inc, 1)
		_, err := Parse(main, []byte(src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("include %s: %v\nwant %s", inc, err, want)
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestTopLevelRetryRulesAreValidated: a bad rule at the top of the file
// (or from a fragment) is a load error like a step's.
func TestTopLevelRetryRulesAreValidated(t *testing.T) {
	src := "version: 1\nname: x\nretry: [ { on: [nope], action: retry } ]\nsteps:\n  - name: s\n    request: { url: \"http://x\" }\n"
	if _, err := Parse("f.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), `unknown trigger "nope"`) {
		t.Fatalf("%v", err)
	}
}
