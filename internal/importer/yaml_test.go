package importer

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// tricky are strings YAML would read as something else if written plainly.
var tricky = []string{
	"", "true", "no", "null", "~", "1", "0x1F", "1e3", "2024-05-17", "78701", "-", "- x", "a: b", "a #b", "#x",
	"{{lead.email}}", "{x}", "[x]", "x, y", "'q'", `"q"`, "a\nb", "a\nb\n", "a\nb\n\n", " lead", "trail ", "tab\t",
	"\x00\x7f\u0085\ufeff", "emoji 🦀", "@at", "`tick`", "!tag", "&anchor", "*alias", "|", ">", "%", "?", "x:", ":x",
	"\xff\xfe invalid", "line\r\nbreak", "  indented\nlines", "ok plain text", "https://example.com/a?b=c",
}

// Every string, as key or value, plain or block, reads back as itself.
func TestScalarsRoundTrip(t *testing.T) {
	for _, s := range tricky {
		m := &Map{}
		m.Set("k", s)
		m.Set(strings.ToValidUTF8(s, "\uFFFD")+"-key", 1)
		m.Set("flow", FlowMap("v", s))
		m.Set("list", &List{Items: []*Entry{{Value: s}}})
		out := Marshal(m)
		var got map[string]any
		if err := yaml.Unmarshal(out, &got); err != nil {
			t.Errorf("%q: %v\n%s", s, err, out)
			continue
		}
		want := strings.ToValidUTF8(s, "\uFFFD")
		if got["k"] != want || got["flow"].(map[string]any)["v"] != want || got["list"].([]any)[0] != want {
			t.Errorf("%q read back as %q / %q / %q\n%s", s, got["k"], got["flow"], got["list"], out)
		}
		if _, ok := got[want+"-key"]; !ok {
			t.Errorf("key %q read back as %v\n%s", s, got, out)
		}
	}
}

// Commented-out entries are written as comments, and a mapping whose
// entries are all commented out is commented out with its key.
func TestOffEntries(t *testing.T) {
	q := &Map{}
	q.Set("limit", "{{lead.limit}}").Off = true
	m := NewMap("query", q, "url", "x")
	m.Get("query").Head = []string{"note"}
	out := string(Marshal(m))
	if want := "# note\n# query:\n  # limit: \"{{lead.limit}}\"\nurl: x\n"; out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	var got map[string]any
	if err := yaml.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 {
		t.Errorf("%v %v", got, err)
	}
}

// Comments never break the file: control characters become U+FFFD.
func TestCommentsArePrintable(t *testing.T) {
	m := NewMap("a", 1)
	m.Get("a").Head = []string{"bad \x7f\x00 byte"}
	m.Get("a").Comment = "also \x1b here"
	var got map[string]any
	if err := yaml.Unmarshal(Marshal(m), &got); err != nil || got["a"] != 1 {
		t.Errorf("%v %v\n%s", got, err, Marshal(m))
	}
}

func TestSecretName(t *testing.T) {
	for name, want := range map[string]bool{
		"api_key": true, "X-API-Key": true, "apiKey": true, "access_token": true, "clientSecret": true,
		"password": true, "Authorization": true, "sig": true, "Ocp-Apim-Subscription-Key": true, "key": true,
		"author": false, "keyword": false, "email": false, "client_id": false, "monkey": false, "primary_key": false,
	} {
		if SecretName(name) != want {
			t.Errorf("SecretName(%q) = %v, want %v", name, !want, want)
		}
	}
}
