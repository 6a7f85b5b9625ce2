package template_test

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/url"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/plumbhq/plumb/template"
)

// fuzzSeeds are lead values that have broken escapers elsewhere.
var fuzzSeeds = []string{
	"", "a", ".", "..", "../..", "@127.0.0.2:9932", ".evil.example", "9932@127.0.0.2:9932",
	"a/b?c#d", "%2e%2E", "%", "%zz", "\\@x", "a b&c=d", "\r\nX-Evil: 1", "\x00", "\u2028",
	`"},"x":{"`, `\`, "</t><t>", "]]>", "<![CDATA[", "&amp;", "'\"<>&", "\xff\xfe", "é", "[::1]",
}

// FuzzURL: whatever the lead value, a rendered URL keeps the scheme, host
// and port of its trusted parts and its number of path segments.
func FuzzURL(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	set := template.New()
	srcs := []string{
		"{{settings.base_url}}/a/{{lead.x}}/b?q={{lead.x}}&{{lead.x}}=1#{{lead.x}}",
		"https://api.partner.example/{{lead.x}}/{{lead.x}}{{lead.x}}",
		"{{settings.base_url}}{{lead.x}}",
		"{{settings.base_url}}{{lead.x}}/c/{{lead.x}}",
		"{{settings.path_url}}{{lead.x}}",
		"{{settings.base_url}}/{{lead.x}}",
	}
	tms := make([]*template.Template, len(srcs))
	for i, src := range srcs {
		tm, err := set.Compile("u", src, template.URL)
		if err != nil {
			f.Fatal(err)
		}
		tms[i] = tm
	}
	settings := map[string]any{"base_url": "https://api.partner.example:8443", "path_url": "https://api.partner.example/v1/"}
	render := func(t *testing.T, tm *template.Template, x string) (*url.URL, bool) {
		out, err := tm.Render(map[string]any{"settings": settings, "lead": map[string]any{"x": x}})
		if err != nil {
			if !errors.Is(err, template.ErrHost) && !errors.Is(err, template.ErrDotSegment) {
				t.Fatalf("%s with %q: %v", tm.Source(), x, err)
			}
			return nil, false
		}
		u, err := url.Parse(out)
		if err != nil {
			// Only data right after a base may make the URL invalid (a
			// percent-encoded host), which the engine refuses to send.
			if !strings.HasPrefix(tm.Source(), "{{settings.base_url}}{{") {
				t.Fatalf("%s with %q: rendered %q does not parse: %v", tm.Source(), x, out, err)
			}
			return nil, false
		}
		return u, true
	}
	f.Fuzz(func(t *testing.T, x string) {
		for _, tm := range tms {
			want, ok := render(t, tm, "")
			if !ok {
				t.Fatalf("%s does not render with a plain value", tm.Source())
			}
			got, ok := render(t, tm, x)
			if !ok {
				continue
			}
			if got.Scheme != want.Scheme || got.Host != want.Host || got.User != nil || got.Opaque != "" {
				t.Fatalf("%s with %q: %s://%s (user %v), want %s://%s", tm.Source(), x, got.Scheme, got.Host, got.User, want.Scheme, want.Host)
			}
			if g, w := strings.Count(got.EscapedPath(), "/"), strings.Count(want.EscapedPath(), "/"); g != w {
				t.Fatalf("%s with %q: path %q has %d segments, want %d", tm.Source(), x, got.EscapedPath(), g, w)
			}
			for _, seg := range lenientSegments(got.EscapedPath()) {
				if seg == "." || seg == ".." {
					t.Fatalf("%s with %q: a server that decodes sees a dot segment in %q", tm.Source(), x, got.EscapedPath())
				}
			}
			gq, gerr := url.ParseQuery(got.RawQuery)
			wq, _ := url.ParseQuery(want.RawQuery)
			if gerr != nil || countValues(gq) != countValues(wq) {
				t.Fatalf("%s with %q: query %q, want %q", tm.Source(), x, got.RawQuery, want.RawQuery)
			}
		}
	})
}

// lenientSegments is how a lenient server splits an escaped path: it
// percent-decodes (more than once), treats '\' as '/', and drops
// ";params" and trailing spaces of each segment.
func lenientSegments(escaped string) []string {
	p := escaped
	for range 4 {
		d, err := url.PathUnescape(p)
		if err != nil || d == p {
			break
		}
		p = d
	}
	segs := strings.Split(strings.ReplaceAll(p, "\\", "/"), "/")
	for i, s := range segs {
		s, _, _ = strings.Cut(s, ";")
		segs[i] = strings.TrimRight(s, " ")
	}
	return segs
}

func countValues(q url.Values) int {
	n := 0
	for _, v := range q {
		n += len(v)
	}
	return n
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// FuzzJSON: whatever the lead values, a rendered JSON body is valid JSON
// with the template's keys, and strings come back as given.
func FuzzJSON(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, 1.5, true)
	}
	tm, err := template.New().Compile("j", `{"a": "{{lead.x}}", "b": {{lead.x}}, "c": ["{{lead.x}}", {{lead.n}}, {{lead.ok}}], "d": {"k": "x{{lead.x}}y"}, "e": {{lead.obj}}}`, template.JSON)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, x string, n float64, ok bool) {
		data := map[string]any{"lead": map[string]any{"x": x, "n": n, "ok": ok, "obj": map[string]any{x: x}}}
		out, err := tm.Render(data)
		if err != nil {
			return // NaN/Inf numbers cannot be JSON
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("x=%q: rendered %s is not JSON: %v", x, out, err)
		}
		if k := strings.Join(sortedKeys(got), ","); k != "a,b,c,d,e" {
			t.Fatalf("x=%q: keys %s", x, k)
		}
		if c, _ := got["c"].([]any); len(c) != 3 {
			t.Fatalf("x=%q: c = %v", x, got["c"])
		}
		if utf8.ValidString(x) && !strings.ContainsAny(x, "\u2028\u2029") {
			if got["a"] != x || got["b"] != x || got["d"].(map[string]any)["k"] != "x"+x+"y" {
				t.Fatalf("x=%q: values %q %q changed", x, got["a"], got["b"])
			}
		}
	})
}

// FuzzXML: whatever the lead value, a rendered XML body is well-formed with
// the template's elements and attributes.
func FuzzXML(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	tm, err := template.New().Compile("x", `<r a="{{lead.x}}" b='{{lead.x}}'><t>{{lead.x}}</t><c><![CDATA[{{lead.x}}]]></c></r>`, template.XML)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, x string) {
		out, err := tm.Render(map[string]any{"lead": map[string]any{"x": x}})
		if err != nil {
			t.Fatal(err)
		}
		d := xml.NewDecoder(strings.NewReader(out))
		var elems []string
		var attrs int
		for {
			tok, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("x=%q: rendered %q is not well-formed: %v", x, out, err)
			}
			if se, ok := tok.(xml.StartElement); ok {
				elems = append(elems, se.Name.Local)
				attrs += len(se.Attr)
			}
		}
		if strings.Join(elems, ",") != "r,t,c" || attrs != 2 {
			t.Fatalf("x=%q: elements %v, %d attributes", x, elems, attrs)
		}
	})
}

// FuzzHeader: a rendered header value never contains CR, LF or NUL.
func FuzzHeader(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	tm, err := template.New().Compile("h", "Bearer {{lead.x}}; {{ lead.x | upper }}", template.Header)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, x string) {
		out, err := tm.Render(map[string]any{"lead": map[string]any{"x": x}})
		if err != nil {
			if !strings.ContainsAny(x, "\r\n\x00") {
				t.Fatalf("x=%q: %v", x, err)
			}
			return
		}
		if strings.ContainsAny(out, "\r\n\x00") {
			t.Fatalf("x=%q: header value %q", x, out)
		}
	})
}
