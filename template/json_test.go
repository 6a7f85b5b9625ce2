package template_test

import (
	"bytes"
	"encoding/json"
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
