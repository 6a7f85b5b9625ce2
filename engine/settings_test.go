package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParseSettingsNeverQuotesAValue: a settings file that is not a
// mapping of names to values, or that cannot be read as YAML, is reported
// at file:line:col without a character of what it holds.
func TestParseSettingsNeverQuotesAValue(t *testing.T) {
	const secret = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
	for in, want := range map[string]string{
		secret + "\n":                          "s.yaml:1:1: a settings file is a mapping of setting names to values, not a single value",
		"'" + secret + "'\n":                   "s.yaml:1:1: a settings file is a mapping of setting names to values, not a single value",
		"- " + secret + "\n":                   "s.yaml:1:1: a settings file is a mapping of setting names to values, not a list",
		"# keys\n\n  " + secret + "\n":         "s.yaml:3:3: a settings file is a mapping",
		"key: \"" + secret + "\n":              "s.yaml:2:1: invalid YAML",
		"key: " + secret + "\n  x: y\n":        "s.yaml:2:1: invalid YAML",
		"key: [" + secret + "\n":               "s.yaml:",
		"key: {[" + secret + "]: 1}\n":         `s.yaml:1:7: setting "key": the keys of an object must be plain names`,
		"key: !secret " + secret + "\n":        `s.yaml:1:6: setting "key": custom YAML tags are not read`,
		"key: a\nkey: " + secret + "\n":        `s.yaml:2:1: settings: a name given twice`,
		secret + ": a\n" + secret + ": b\n":    `s.yaml:2:1: settings: a name given twice`,
		"key: *" + secret[:12] + "\n":          "s.yaml:1:1: invalid YAML: unknown anchor … referenced",
		"? [" + secret + "]\n: 1\n":            "s.yaml:1:3: settings: keys must be plain names",
		"key:\n  a: {<<: {x: " + secret + "}}": `s.yaml:2:7: setting "key": merge keys`,
	} {
		_, err := ParseSettings("s.yaml", []byte(in))
		var list interface{ Error() string }
		if err == nil || !errors.As(err, &list) {
			t.Errorf("%q: no error", in)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, want) || strings.Contains(msg, secret[:6]) {
			t.Errorf("%q:\n got %s\nwant %s…, without the value", in, msg, want)
		}
	}
	for in, want := range map[string]map[string]any{
		"":                                       {},
		"---\n":                                  {},
		"~\n":                                    {},
		"d: &d {x: 1}\n<<: [*d, {y: 2}]\nx: 3\n": {"d": map[string]any{"x": 1.0}, "x": 3.0, "y": 2.0},
		"a: 1\nb: x\nc: [1, {d: true}]\ne: 2026-01-01\nf:\n": {"a": 1.0, "b": "x", "c": []any{1.0, map[string]any{"d": true}}, "e": "2026-01-01", "f": nil},
		`{"a": "x", "b": 2.5}`:                               {"a": "x", "b": 2.5},
		"a: &x {k: v}\nb: *x\n":                              {"a": map[string]any{"k": "v"}, "b": map[string]any{"k": "v"}},
	} {
		sf, err := ParseSettings("s.yaml", []byte(in))
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if len(sf.Values) != len(want) || strings.Contains(strings.ReplaceAll(in, " ", ""), "a:1") && sf.Pos["a"].Line != 1 {
			t.Errorf("%q: %v at %v, want %v", in, sf.Values, sf.Pos, want)
		}
		for k, v := range want {
			if got := sf.Values[k]; !equalJSON(got, v) {
				t.Errorf("%q: %s = %#v, want %#v", in, k, got, v)
			}
		}
	}
	if _, err := ReadSettings(filepath.Join(t.TempDir(), "none.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
}

// TestSettingTypesNeverQuoteAValue: a value of the wrong kind — a map or a
// list for a string setting, text for a number — is refused, at the place
// the settings file gave it (or the env variable it came from), naming the
// setting but never the value.
func TestSettingTypesNeverQuoteAValue(t *testing.T) {
	const secret = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
	src := `version: 1
name: types
settings:
  api_key: { secret: true }
  name: {}
  count: { type: number }
  on: { type: bool, env: PLUMB_TEST_ON }
  tags: { type: list, default: [] }
steps: [ { name: s, request: { url: "http://127.0.0.1:1/" } } ]
`
	p, err := Parse("types.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	file := "api_key:\n  value: " + secret + "\nname: [" + secret + "]\ncount: " + secret + "\ntags: " + secret + "\n"
	sf, err := ParseSettings("types.settings.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Bind(Config{Values: sf.Values, ValuePos: sf.Pos,
		LookupEnv: func(string) (string, bool) { return secret, true }})
	if err == nil {
		t.Fatal("wrong kinds bound")
	}
	msg := err.Error()
	for _, want := range []string{
		`types.settings.yaml:2:3: setting "api_key": must be a string, not an object`,
		`types.settings.yaml:3:7: setting "name": must be a string, not a list`,
		`types.settings.yaml:4:8: setting "count": must be a number, not a string`,
		`types.settings.yaml:5:7: setting "tags": must be a list, not a string`,
		`types.yaml:7:3: setting "on" (from the PLUMB_TEST_ON environment variable): must be a boolean (true or false), not a string`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in\n%s", want, msg)
		}
	}
	if strings.Contains(msg, secret[:6]) {
		t.Errorf("the error quotes a value:\n%s", msg)
	}
	r, err := p.Bind(Config{Values: map[string]any{"api_key": 12345678, "name": true, "count": "2.5"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if v, _ := r.Value("api_key"); v != "12345678" {
		t.Errorf("a number for a string setting: %#v", v)
	}
	if v, _ := r.Value("count"); v != 2.5 {
		t.Errorf("text for a number setting: %#v", v)
	}
}

func equalJSON(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k := range x {
			if !equalJSON(x[k], y[k]) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return a == b
}

// TestRequiredSettingEmpty: a required setting given empty — null or ""
// in a settings file, "" in Config.Values (--set NAME=), an env variable
// set to nothing, an empty default — has no value: Bind fails naming where
// the empty value came from, instead of sending an empty credential. An
// optional setting may be empty.
func TestRequiredSettingEmpty(t *testing.T) {
	src := `version: 1
name: req
settings:
  api_key: { required: true, secret: true, env: REQ_API_KEY }
  plain: { required: true, default: "" }
  optional: {}
steps: [ { name: s, request: { url: "http://127.0.0.1:1/", headers: { X-Key: "{{settings.api_key}}" } } } ]
`
	p, err := Parse("req.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	env := func(v string) func(string) (string, bool) {
		return func(name string) (string, bool) { return v, name == "REQ_API_KEY" }
	}
	for _, c := range []struct {
		name, file string
		values     map[string]any
		env        func(string) (string, bool)
		want       string
	}{
		{name: "file null", file: "api_key:\nplain: p\noptional: \"\"\n",
			want: `req.settings.yaml:1:9: required setting "api_key" has no value: it is given empty here (`},
		{name: "file tilde", file: "api_key: ~\nplain: p\n", want: `req.settings.yaml:1:10: required setting "api_key" has no value: it is given empty here`},
		{name: "file empty string", file: "api_key: \"\"\nplain: p\n", want: `req.settings.yaml:1:10: required setting "api_key" has no value: it is given empty here`},
		{name: "file blank", file: "api_key: \"  \"\nplain: p\n", want: `req.settings.yaml:1:10: required setting "api_key" has no value`},
		{name: "values", values: map[string]any{"api_key": "", "plain": "p"},
			want: `req.yaml:4:3: required setting "api_key" has no value: it is given empty in Config.Values`},
		{name: "env", values: map[string]any{"plain": "p"}, env: env(""),
			want: `req.yaml:4:3: required setting "api_key" has no value: the REQ_API_KEY environment variable is set but empty`},
		{name: "default", values: map[string]any{"api_key": "k"},
			want: `req.yaml:5:3: required setting "plain" has no value: its default is empty`},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Values: c.values, LookupEnv: c.env}
			if c.file != "" {
				sf, err := ParseSettings("req.settings.yaml", []byte(c.file))
				if err != nil {
					t.Fatal(err)
				}
				cfg.Values, cfg.ValuePos = sf.Values, sf.Pos
			}
			r, err := p.Bind(cfg)
			if err == nil {
				r.Close(context.Background())
				t.Fatal("bound with an empty required setting")
			}
			if !strings.Contains(err.Error(), c.want) || strings.Count(err.Error(), "\n") != 0 {
				t.Errorf("err =\n%v\nwant only %q", err, c.want)
			}
		})
	}
	r, err := p.Bind(Config{Values: map[string]any{"api_key": "k", "plain": "p", "optional": ""}, LookupEnv: env("")})
	if err != nil {
		t.Fatalf("an optional empty setting: %v", err)
	}
	r.Close(context.Background())
}
