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
	in, err := load(main)
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
		_, err := parse(main, []byte(src))
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
	if _, err := parse("f.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), `unknown trigger "nope"`) {
		t.Fatalf("%v", err)
	}
}

// TestIncludeWithRoot: a file loaded WithRoot includes only YAML
// fragments under the root (no absolute path, no way out through .. or a
// symlink, no hidden or settings file), and a file that is not a fragment
// is reported by position only, its text never quoted. Without the option
// the same file loads as its author wrote it.
func TestIncludeWithRoot(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "dir")
	outside := filepath.Join(base, "outside")
	write := func(p, src string) string {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const canary = "CANARY_7f3a"
	fragment := "settings:\n  shared: { default: " + canary + "_ok }\n"
	write(filepath.Join(outside, "frag.yaml"), fragment)
	write(filepath.Join(outside, "passwd"), "root:x:0:0:"+canary+":/root:/bin/bash\n")
	write(filepath.Join(root, "shared", "frag.yaml"), fragment)
	write(filepath.Join(root, "shared", ".hidden.yaml"), fragment)
	write(filepath.Join(root, "shared", "a.settings.yaml"), fragment)
	write(filepath.Join(root, "settings.yml"), fragment)
	write(filepath.Join(root, "shared", "frag.txt"), fragment)
	write(filepath.Join(root, "creds.yaml"), canary+"_key: "+canary+"_value\n")
	write(filepath.Join(root, "scalar.yaml"), "root:x:0:0:"+canary+":/root:/bin/bash\n")
	write(filepath.Join(root, "broken.yaml"), "a: [\""+canary+"\"\n")
	if err := os.Symlink(filepath.Join(outside, "frag.yaml"), filepath.Join(root, "out.yaml")); err != nil {
		t.Skip("no symlinks here:", err)
	}
	os.Symlink(outside, filepath.Join(root, "outdir"))
	os.Symlink(filepath.Join("shared", "frag.yaml"), filepath.Join(root, "in.yaml")) // relative: os.Root follows it
	main := write(filepath.Join(root, "sub", "a.yaml"), "version: 1\nname: a\ninclude: [INC]\nsteps:\n  - name: s\n    request: { url: \"https://x.example/{{settings.shared}}\" }\n")
	src := string(must(os.ReadFile(main)))
	loadInc := func(inc string, opts ...Option) (*Integration, error) {
		return parse(main, []byte(strings.Replace(src, "INC", inc, 1)), opts...)
	}
	for inc, want := range map[string]string{
		filepath.Join(outside, "frag.yaml"): "an absolute path",
		"../../outside/frag.yaml":           "leads out of the directory",
		"../../../../../../etc/passwd":      "leads out of the directory",
		"../out.yaml":                       "leads out of the directory",
		"../outdir/frag.yaml":               "leads out of the directory",
		"../shared/.hidden.yaml":            "a hidden file",
		"../shared/a.settings.yaml":         "a settings file",
		"../settings.yml":                   "a settings file",
		"../shared/frag.txt":                "not a .yaml",
		"../creds.yaml":                     "does not read as a fragment",
		"../scalar.yaml":                    "does not read as a fragment",
		"../broken.yaml":                    "does not read as a fragment",
		"../none.yaml":                      "cannot read none.yaml",
	} {
		_, err := loadInc(inc, WithRoot(root))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("include %s: %v\nwant %q", inc, err, want)
			continue
		}
		if strings.Contains(err.Error(), canary) {
			t.Errorf("include %s quotes what it read: %v", inc, err)
		}
	}
	// fragments under the root load, through .. that stays inside and a
	// symlink that stays inside
	for _, inc := range []string{"../shared/frag.yaml", "../in.yaml", "../sub/../shared/frag.yaml"} {
		in, err := loadInc(inc, WithRoot(root))
		if err != nil {
			t.Fatalf("include %s: %v", inc, err)
		}
		if s, ok := in.Settings.Get("shared"); !ok || s.Default != canary+"_ok" {
			t.Fatalf("include %s not merged: %+v", inc, in.Settings)
		}
	}
	// a file outside the root includes nothing, and Load refuses it
	other := write(filepath.Join(outside, "b.yaml"), strings.Replace(src, "INC", "frag.yaml", 1))
	if _, err := load(other, WithRoot(root)); err == nil {
		t.Fatal("Load WithRoot read a file outside the root")
	}
	if _, err := parse(other, []byte(strings.Replace(src, "INC", "frag.yaml", 1)), WithRoot(root)); err == nil || !strings.Contains(err.Error(), "not under the directory") {
		t.Fatalf("a file outside the root included: %v", err)
	}
	// the CLI trusts its author: the same includes load without the option,
	// and a file that is not a fragment is quoted to help its author
	for _, inc := range []string{filepath.Join(outside, "frag.yaml"), "../../outside/frag.yaml", "../out.yaml"} {
		if _, err := loadInc(inc); err != nil {
			t.Errorf("include %s without a root: %v", inc, err)
		}
	}
	if _, err := loadInc("../creds.yaml"); err == nil || !strings.Contains(err.Error(), canary) {
		t.Errorf("without a root the author sees the unknown key: %v", err)
	}
	if _, err := load(main, WithRoot(root)); err == nil || !strings.Contains(err.Error(), "INC") {
		t.Errorf("Load WithRoot of a file under the root: %v", err)
	}
}

// An included file that is not YAML mappings (a passwd file, a key) is not
// printed whole in the error: its start only.
func TestIncludeNotAMappingQuotesItsStart(t *testing.T) {
	dir := t.TempDir()
	long := "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
	for name, src := range map[string]string{"passwd": long, "key.pem": "é" + strings.Repeat("A", 60) + "\n", "short": "plain text\n", "block": "|\n  one\n  two\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	main := filepath.Join(dir, "a.yaml")
	_, err := parse(main, []byte("version: 1\nname: a\ninclude: [passwd, key.pem, short, block]\nsteps:\n  - name: s\n    request: { url: \"http://x\" }\n"))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`fragment must be a mapping, got "root:x:0:0:root:/root:/bin/bash "…`,
		`fragment must be a mapping, got "é` + strings.Repeat("A", 31) + `"…`,
		`fragment must be a mapping, got "plain text"` + "\n",
		`fragment must be a mapping, got "one"…`,
	} {
		if !strings.Contains(err.Error()+"\n", want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "daemon") {
		t.Errorf("the file is quoted whole:\n%v", err)
	}
}
