package template

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func slowSet() *Set {
	s := New()
	s.slow = true
	return s
}

// The segment fast path must behave exactly like text/template execution.
func TestFastPathMatchesTextTemplate(t *testing.T) {
	fast, slow := New(), slowSet()
	srcs := []string{
		"{{lead.v}}",
		"{{ .lead.v }}",
		"{{ $.lead.v }}",
		"{{ . }}",
		"x{{lead.v}}y{{lead.n}}z",
		"{{settings.base_url}}/a/{{lead.v}}?q={{lead.v}}#{{lead.v}}",
		`{"a": "{{lead.v}}", "b": {{lead.v}}, "n": {{lead.n}}, "nil": {{lead.nil}}}`,
		`<a x="{{lead.v}}">{{lead.v}}<![CDATA[{{lead.v}}]]></a>`,
		"{{lead.missing}}",
		"a {{lead.v.deeper}}",
		"{{lead.obj}}",
		"{{lead.obj.k}}",
		"{{ lead.v | digits }}",
		"{{ lead.n | digits }}",
		"{{ lead.nil | digits }}",
		"{{ lead.missing | digits }}",
		`{"p": "{{ lead.v | digits }}", "u": "{{ lead.v | upper }}", "t": {{ lead.v | lower | trim }}}`,
		"a {{ lead.v | upper }} b {{ lead.v | trim | lower }}",
		"{{ lead.n | upper }}",
		"{{ lead.nil | trim }}",
		"{{ lead.obj | lower }}",
		"{{settings.base_url}}/x/{{ lead.v | lower }}?q={{ lead.v | digits }}",
		"{{settings.base_url}}{{lead.v}}",
		"{{settings.base_url}}{{ lead.v | lower }}/{{lead.v}}",
		"https://{{settings.base_url}}/{{lead.v}}",
	}
	datas := []map[string]any{
		{"lead": map[string]any{"v": "a\"b<c>&/?#\r\n'\\]]>\x00é", "n": 1e6, "nil": nil, "obj": map[string]any{"k": 1.5}}, "settings": map[string]any{"base_url": "https://h"}},
		{"lead": map[string]any{"v": true, "n": int64(3), "nil": nil, "obj": map[string]string{"k": "v"}}, "settings": map[string]any{"base_url": "https://h"}},
		{"lead": map[string]any{"v": "plain", "n": 0.5, "nil": nil, "obj": []any{1.0}}, "settings": map[string]any{"base_url": "https://h"}},
		{"lead": map[string]any{"v": " (512) 555-0142 Ext.9 ", "n": 5125550142.0, "nil": nil, "obj": "Str"}, "settings": map[string]any{"base_url": "https://h"}},
		{},
		nil,
	}
	for _, mode := range []Mode{Plain, JSON, XML, URL, Header} {
		for _, src := range srcs {
			ft, err1 := fast.Compile("t", src, mode)
			st, err2 := slow.Compile("t", src, mode)
			if fmt.Sprint(err1) != fmt.Sprint(err2) {
				t.Fatalf("compile %v %q: %v vs %v", mode, src, err1, err2)
			}
			if err1 != nil {
				continue
			}
			if ft.fast == nil || st.fast != nil {
				t.Fatalf("%v %q: fast path not taken (%v) or not disabled", mode, src, ft.fast == nil)
			}
			for i, d := range datas {
				fr, ferr := ft.Render(d)
				sr, serr := st.Render(d)
				if fr != sr || fmt.Sprint(ferr) != fmt.Sprint(serr) {
					t.Errorf("%v %q data %d Render:\nfast %q %v\nslow %q %v", mode, src, i, fr, ferr, sr, serr)
				}
				fv, ferr := ft.Value(d)
				sv, serr := st.Value(d)
				if !reflect.DeepEqual(fv, sv) || fmt.Sprint(ferr) != fmt.Sprint(serr) {
					t.Errorf("%v %q data %d Value:\nfast %#v %v\nslow %#v %v", mode, src, i, fv, ferr, sv, serr)
				}
			}
		}
	}
}

func TestFastPathNotUsed(t *testing.T) {
	s := New()
	for _, src := range []string{"{{ lead.v | b64enc }}", "{{ lead.v | upper | b64enc }}", "{{ digits lead.v }}", "{{ if lead.v }}x{{ end }}", "{{ $x := lead.v }}{{ $x }}", "{{ now }}"} {
		tm, err := s.Compile("t", src, Plain)
		if err != nil {
			t.Fatal(err)
		}
		if tm.fast != nil {
			t.Errorf("%q: fast path used", src)
		}
	}
}

func TestJSONStringContent(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s/`, "\x00\x01\x1f\x7f", "\r\n\t", "é€𝄞", "\u2028\u2029", "bad\xffutf8", "<>&"} {
		got := `"` + jsonStringContent(s) + `"`
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("%q: invalid JSON %s: %v", s, got, err)
			continue
		}
		want := strings.ToValidUTF8(s, "\uFFFD")
		if back != want {
			t.Errorf("%q: round trip %q", s, back)
		}
	}
}

func TestXMLEscapeMatchesEncodingXML(t *testing.T) {
	for _, s := range []string{"", "plain", `a&b<c>d"e'f`, "\t\n\r", "é€𝄞", "x\x00\x01y", "bad\xffutf8", "\uFFFE\uFFFF"} {
		var b bytes.Buffer
		if err := xml.EscapeText(&b, []byte(s)); err != nil {
			t.Fatal(err)
		}
		if got := xmlEscape(s); got != b.String() {
			t.Errorf("xmlEscape(%q) = %q, encoding/xml %q", s, got, b.String())
		}
	}
	if got := cdataEscape("a]]>b\x00"); got != "a]]]]><![CDATA[>b\uFFFD" {
		t.Errorf("cdataEscape = %q", got)
	}
}

func TestToText(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{nil, ""}, {"s", "s"}, {true, "true"}, {1e6, "1000000"}, {1e21, "1000000000000000000000"},
		{0.1, "0.1"}, {-2.5, "-2.5"}, {float32(0.1), "0.1"}, {42, "42"}, {int64(-7), "-7"},
		{time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), "2024-01-02T03:04:05Z"},
		{map[string]any{"a": "<"}, `{"a":"<"}`}, {[]any{1.0, "x"}, `[1,"x"]`}, {[]int{1}, "[1]"},
	}
	for _, tt := range tests {
		if got := toText(tt.v); got != tt.want {
			t.Errorf("toText(%#v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestJSONValue(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{nil, "null"}, {true, "true"}, {"a\"b", `"a\"b"`}, {1e6, "1000000"}, {1.5, "1.5"}, {1e21, "1e+21"},
		{1e-7, "1e-7"}, {42, "42"}, {map[string]any{"k": []any{1.0}}, `{"k":[1]}`},
	}
	for _, tt := range tests {
		got, err := marshalCompact(tt.v)
		if err != nil || got != tt.want {
			t.Errorf("marshalCompact(%#v) = %q, %v; want %q", tt.v, got, err, tt.want)
		}
	}
}

func TestGoLayout(t *testing.T) {
	tests := map[string]string{
		"MM/DD/YYYY":          "01/02/2006",
		"YYYY-MM-DD HH:mm:ss": "2006-01-02 15:04:05",
		"DD.MM.YY":            "02.01.06",
		"01/02/2006":          "01/02/2006",
		"Mon Jan 2 2006 MST":  "Mon Jan 2 2006 MST",
		time.RFC3339:          time.RFC3339,
	}
	for in, want := range tests {
		if got := goLayout(in); got != want {
			t.Errorf("goLayout(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestContextTracking(t *testing.T) {
	tests := []struct {
		from state
		text string
		want state
	}{
		{stJSONOut, `{"a": "`, stJSONStr},
		{stJSONOut, `{"a": "x\"`, stJSONStr},
		{stJSONOut, `{"a": "x\\"`, stJSONOut},
		{stJSONOut, `{"a": "\`, stJSONStrEsc},
		{stURLStart, "https://h/a", stURLPath},
		{stURLStart, "/a?b=", stURLQuery},
		{stURLPath, "?a=1#", stURLFrag},
		{stURLQuery, "&b=#x?y", stURLFrag},
		{stXMLText, `<a b="`, stXMLAttrDQ},
		{stXMLText, `<a b='x' c=`, stXMLTag},
		{stXMLText, `<a b="x>y">`, stXMLText},
		{stXMLText, `<!-- <a> `, stXMLComment},
		{stXMLText, `<!-- <a> -->`, stXMLText},
		{stXMLText, `<![CDATA[ <a> `, stXMLCDATA},
		{stXMLText, `<![CDATA[ x ]]> `, stXMLText},
		{stXMLText, `<?xml version="1.0"?><r>`, stXMLText},
	}
	for _, tt := range tests {
		if got := advance(tt.from, []byte(tt.text)); got != tt.want {
			t.Errorf("advance(%v, %q) = %v, want %v", tt.from, tt.text, got, tt.want)
		}
	}
}

func TestLookup(t *testing.T) {
	data := map[string]any{"a": map[string]any{"b": map[string]any{"c": 1.0}, "s": "str", "n": nil}}
	tests := []struct {
		path string
		want any
		err  string
	}{
		{"a.b.c", 1.0, ""},
		{"a.n", nil, ""},
		{"a.x", nil, "a.x is missing"},
		{"x.y", nil, "x.y is missing"},
		{"a.n.z", nil, "a.n.z is missing"},
		{"a.s.z", nil, "a.s is not an object (reading a.s.z)"},
		{"a.b.c.d", nil, "a.b.c is not an object (reading a.b.c.d)"},
	}
	for _, tt := range tests {
		v, err := lookup(data, tt.path, false)
		if fmt.Sprint(v) != fmt.Sprint(tt.want) || (err == nil) != (tt.err == "") || (err != nil && err.Error() != tt.err) {
			t.Errorf("lookup(%q) = %v, %v; want %v, %q", tt.path, v, err, tt.want, tt.err)
		}
		if v, err := lookup(data, tt.path, true); err != nil || (tt.err != "" && v != nil) {
			t.Errorf("optional lookup(%q) = %v, %v", tt.path, v, err)
		}
	}
}

func BenchmarkRenderTextTemplate(b *testing.B) {
	tm, err := slowSet().Compile("t", "{{settings.base_url}}/v2/leads/{{lead.state}}/validate", URL)
	if err != nil {
		b.Fatal(err)
	}
	data := map[string]any{"lead": map[string]any{"state": "CA"}, "settings": map[string]any{"base_url": "https://h"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tm.Render(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderPipeline(b *testing.B) {
	tm, err := New().Compile("t", `{"phone": "{{ lead.phone | digits }}", "state": "{{ lead.state | upper }}"}`, JSON)
	if err != nil {
		b.Fatal(err)
	}
	data := map[string]any{"lead": map[string]any{"state": "ca", "phone": "(555) 123-4567"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tm.Render(data); err != nil {
			b.Fatal(err)
		}
	}
}
