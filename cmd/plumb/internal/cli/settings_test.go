package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSettingsFileErrorsNeverQuoteValues: run, try and validate read a
// settings file with the library's reader, so a file that is a single
// value (a pasted key) or that gives a map for a string setting is
// reported at file:line:col, naming the setting, without a character of
// the value.
func TestSettingsFileErrorsNeverQuoteValues(t *testing.T) {
	const secret = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
	dir := t.TempDir()
	integration := filepath.Join(dir, "int.yaml")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(integration, []byte("version: 1\nname: int\nsettings:\n  api_key: { secret: true }\n"+
		"steps: [ { name: s, request: { url: \"http://127.0.0.1:1/{{settings.api_key}}\" } } ]\n"), 0o600))
	scalar := filepath.Join(dir, "scalar.settings.yaml")
	must(os.WriteFile(scalar, []byte(secret+"\n"), 0o600))
	mapped := filepath.Join(dir, "map.settings.yaml")
	must(os.WriteFile(mapped, []byte("# the key\napi_key:\n  live: "+secret+"\n"), 0o600))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--lead", "-", "--settings", scalar, integration}, scalar + ":1:1: a settings file is a mapping of setting names to values, not a single value"},
		{[]string{"validate", "--integration", integration, scalar}, scalar + ":1:1: a settings file is a mapping"},
		{[]string{"run", "--lead", "-", "--settings", mapped, integration}, mapped + `:3:3: setting "api_key": must be a string, not an object`},
		{[]string{"validate", "--integration", integration, mapped}, mapped + `:3:3: setting "api_key": must be a string, not an object`},
	} {
		var stdout, stderr bytes.Buffer
		code := Main(tc.args, strings.NewReader("{}\n"), &stdout, &stderr, func(string) (string, bool) { return "", false })
		out := stdout.String() + stderr.String()
		if code == 0 || !strings.Contains(out, tc.want) || strings.Contains(out, secret[:8]) {
			t.Errorf("plumb %s: exit %d\n%s\nwant %q, without the value", strings.Join(tc.args, " "), code, out, tc.want)
		}
	}
}

// TestValidateDirPairsSettings: in a directory, an integration is ok only
// if it loads and binds with the settings file beside it; an auth section
// wrong whatever the settings fails to load with validate as with run and
// try, and the settings file's line refers to the integration's problems
// instead of printing them again.
func TestValidateDirPairsSettings(t *testing.T) {
	const base = "version: 1\nname: int\nsettings:\n  api_key: { required: true, secret: true }\n  empty: { default: \"\" }\n" +
		"steps: [ { name: s, request: { url: \"http://127.0.0.1:1/\" } } ]\n"
	for _, tc := range []struct {
		name, auth string
		want       []string
	}{
		{"load", `auth: { type: api_key, in: heder, value: "{{settings.api_key}}" }`, []string{
			`integration.yaml:1:28: auth: api_key in "heder" is not a known value (one of header, query)`,
			"settings.yaml: not checked: ", "integration.yaml does not load"}},
		{"bind", `auth: { type: api_key, value: "{{settings.empty}}" }`, []string{
			"integration.yaml:1:7: auth: api_key needs value",
			"integration.yaml: does not run with",
			"settings.yaml: does not fit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "integration.yaml"), []byte(tc.auth+"\n"+base), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "settings.yaml"), []byte("api_key: k\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			code := Main([]string{"validate", dir}, strings.NewReader(""), &stdout, &stderr, func(string) (string, bool) { return "", false })
			if code != ExitUsage || strings.Contains(stdout.String(), "ok") {
				t.Errorf("exit %d, stdout %q", code, stdout.String())
			}
			for _, w := range tc.want {
				if strings.Count(stderr.String(), w) != 1 {
					t.Errorf("stderr:\n%s\nwant %q once", stderr.String(), w)
				}
			}
		})
	}
}

// TestRequiredSettingGivenEmpty: run refuses a required setting given
// empty, by --set, in the settings file or by its env variable, before any
// lead (exit 2), saying where the empty value came from.
func TestRequiredSettingGivenEmpty(t *testing.T) {
	dir := t.TempDir()
	integration := filepath.Join(dir, "int.yaml")
	if err := os.WriteFile(integration, []byte("version: 1\nname: int\nsettings:\n  api_key: { required: true, secret: true, env: INT_API_KEY }\n"+
		"steps: [ { name: s, request: { url: \"http://127.0.0.1:1/\", headers: { X-Key: \"{{settings.api_key}}\" } } } ]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "empty.settings.yaml")
	if err := os.WriteFile(file, []byte("api_key:\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--settings=", "--set", "api_key="}, "", `int.yaml:4:3: required setting "api_key" has no value: it is given empty with --set`},
		{[]string{"--settings", file}, "", file + `:1:9: required setting "api_key" has no value: it is given empty here`},
		{[]string{"--settings="}, "set", `int.yaml:4:3: required setting "api_key" has no value: the INT_API_KEY environment variable is set but empty`},
	} {
		args := append(append([]string{"run", "--lead", "-"}, tc.args...), integration)
		var stdout, stderr bytes.Buffer
		code := Main(args, strings.NewReader("{}\n"), &stdout, &stderr, func(k string) (string, bool) { return "", tc.env != "" && k == "INT_API_KEY" })
		if code != ExitUsage || !strings.Contains(stderr.String(), tc.want) || stdout.Len() != 0 {
			t.Errorf("plumb %s: exit %d\nstdout %q\nstderr %s\nwant %q", strings.Join(args, " "), code, stdout.String(), stderr.String(), tc.want)
		}
	}
}
