package template_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/plumbhq/plumb/template"
)

// Issue 13: JSON written by plumb keeps < > & as they are; encoding/json's
// default \u003c \u003e \u0026 changes the bytes a partner signs.
func TestJSONNoHTMLEscaping(t *testing.T) {
	s := newSet()
	const v = `<b>Tom & "Jerry"</b>`
	data := map[string]any{"lead": map[string]any{"v": v, "obj": map[string]any{"k": v, "l": []any{v}}}}
	for _, tt := range []struct {
		src  string
		mode template.Mode
	}{
		{`{"a": "{{lead.v}}", "b": {{lead.v}}, "o": {{lead.obj}}}`, template.JSON},
		{`{{ json lead.obj }}`, template.Plain},
		{`{{ toJson lead.obj }}`, template.Plain},
		{`{{ mustToJson lead.obj }}`, template.Plain},
		{`{{ toPrettyJson lead.obj }}`, template.Plain},
		{`{{ lead.obj }}`, template.Plain},
		{`x={{ lead.obj }}`, template.Header},
	} {
		out, err := mustCompile(t, s, tt.src, tt.mode).Render(data)
		if err != nil {
			t.Fatalf("Render(%s): %v", tt.src, err)
		}
		if strings.Contains(out, `\u00`) || !strings.Contains(out, "<b>Tom & ") {
			t.Errorf("Render(%s) = %s: HTML-escaped", tt.src, out)
		}
	}
	b, err := template.MarshalJSON(map[string]any{"k": v, "n": 1.5})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"k":"<b>Tom & \"Jerry\"</b>","n":1.5}`; string(b) != want {
		t.Errorf("MarshalJSON = %s, want %s", b, want)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil || back["k"] != v {
		t.Errorf("MarshalJSON output does not decode back: %v %v", back, err)
	}
	if bytes.HasSuffix(b, []byte("\n")) {
		t.Error("MarshalJSON ends with a newline")
	}
}

// A value rendered inside a JSON string or as a JSON value is escaped as
// encoding/json escapes it: invalid UTF-8 becomes U+FFFD, U+2028 and U+2029
// (line breaks to a JavaScript reader) are written \u2028, \u2029; the body
// is valid JSON holding what encoding/json reads back.
func TestJSONEscapesOddText(t *testing.T) {
	s := newSet()
	const v = "a\xffb\u2028c\u2029d\x01e\"f"
	data := map[string]any{"lead": map[string]any{"v": v, "w": "\xff\u2029"}} // w: no ASCII to escape
	out, err := mustCompile(t, s, `{"in": "x {{lead.v}} y", "as": {{lead.v}}, "w": "{{lead.w}}"}`, template.JSON).Render(data)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out, "\u2028\u2029") || strings.Contains(out, "\xff") || !strings.Contains(out, `\u2028`) || !strings.Contains(out, `\ufffd`) {
		t.Fatalf("rendered %q: odd text not escaped", out)
	}
	var back map[string]string
	if err := json.Unmarshal([]byte(out), &back); err != nil || back["in"] != "x a\ufffdb\u2028c\u2029d\x01e\"f y" || back["as"] != "a\ufffdb\u2028c\u2029d\x01e\"f" || back["w"] != "\ufffd\u2029" {
		t.Fatalf("rendered %q reads back as %q, %v", out, back, err)
	}
}

// A JSON template whose literal text is invalid JSON whatever its actions
// write is refused at compile time, at the syntax error; a template that
// some data renders valid is accepted.
func TestJSONTextCheckedAtCompile(t *testing.T) {
	s := newSet()
	for _, tt := range []struct {
		src       string
		line, col int
		msg       string
	}{
		{`{"email": "{{lead.email}}",, "x": }`, 1, 28, "invalid character ','"},
		{"{\"email\": \"{{lead.email}}\"\n", 1, 26, "unexpected end of JSON input"},
		{`{"a": 1}}`, 1, 9, "after top-level value"},
		{`{"a": {{lead.x}} {{lead.y}}}`, 1, 20, "after object key:value pair"},
		{`{"a": [{{range lead.l}}{{.}}{{end}}] "b": 1}`, 1, 38, "after object key:value pair"},
		{`{"a": {{if lead.x}}1{{else}}2{{end}},}`, 1, 38, "invalid character '}'"},
		{`{"n": 1 2}`, 1, 9, "after object key:value pair"},
		{`{{if lead.x}}[{{end}}1]]`, 1, 24, "after top-level value"}, // the rendering that gets furthest
		{`hello`, 1, 1, "invalid character 'h'"},                     // literal text is checked too
	} {
		_, err := s.Compile("t", tt.src, template.JSON, template.Document())
		var te *template.Error
		if !errors.As(err, &te) {
			t.Errorf("Compile(%q) = %v, want a template.Error", tt.src, err)
			continue
		}
		if te.Line != tt.line || te.Col != tt.col || !strings.Contains(te.Msg, tt.msg) {
			t.Errorf("Compile(%q) = %d:%d %s, want %d:%d …%s…", tt.src, te.Line, te.Col, te.Msg, tt.line, tt.col, tt.msg)
		}
	}
	for _, src := range []string{
		`{"email": "{{lead.email}}", "n": {{lead.n}}, "o": {{lead.obj}}}`,
		`{ {{lead.key}}: 1 }`, // an action writes a string key
		`{"ids": [{{range $i, $x := lead.l}}{{if $i}},{{end}}{{$x}}{{end}}]}`,
		"{\"batch\": [{{range batch.items}}{{if not .first}},{{end}}\n {\"id\": \"{{.lead.id}}\"}{{end}}\n]}",
		`{"a": {{with lead.x}}{{.}}{{else}}null{{end}}}`,
		`{{if lead.x}}{"a": 1}{{else}}{"b": 2}{{end}}`,
		`{"s": "{{if lead.x}}\"quoted\"{{end}}"}`,
		`[{{range lead.l}}{{.}}{{end}}]`, // renders valid with 0 or 1 item
		`{{lead.obj}}`,
		`{"a": 1{{if lead.x}}, "b": {{lead.x}}{{end}}}`, // valid only without the if's list
		`{"a": {{if lead.x}}1{{end}}}`,                  // valid only with it
		`{"x": "{{/* a comment */}}"}`,
		`{{$x := lead.x}}{"x": {{$x}}}`,
	} {
		if _, err := s.Compile("t", src+"x", template.JSON); err != nil {
			t.Errorf("Compile(%qx) without Document: %v", src, err)
		}
		if _, err := s.Compile("t", src, template.JSON, template.Document()); err != nil {
			t.Errorf("Compile(%q): %v", src, err)
		}
	}
}
