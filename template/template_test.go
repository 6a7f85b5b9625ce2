package template_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plumbhq/plumb/template"
)

var fixedNow = time.Date(2024, time.June, 15, 12, 0, 0, 0, time.UTC)

func newSet() *template.Set {
	return template.New(template.WithClock(func() time.Time { return fixedNow }))
}

func testData() map[string]any {
	return map[string]any{
		"lead": map[string]any{
			"email":       "ann@example.com",
			"email_valid": true,
			"phone":       "(555) 123-4567",
			"state":       "CA",
			"age":         42.0,
			"big":         1e6,
			"ratio":       0.25,
			"corporate":   false,
			"dob":         "1990-06-16",
			"nothing":     nil,
			"address":     map[string]any{"city": "Fresno", "geo": map[string]any{"lat": 36.7}},
			"tags":        []any{"a", "b"},
			"n":           int64(7),
			"labels":      map[string]string{"k": "v"},
		},
		"settings": map[string]any{"base_url": "https://api.example.com", "api_key": "s3cr3t"},
		"steps":    map[string]any{"auth": map[string]any{"token": "tok"}},
		"vars":     map[string]any{"source": "web"},
	}
}

func mustCompile(t testing.TB, s *template.Set, src string, mode template.Mode, opts ...template.CompileOption) *template.Template {
	t.Helper()
	tm, err := s.Compile("t", src, mode, opts...)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	return tm
}

func TestRender(t *testing.T) {
	s := newSet()
	tests := []struct {
		name, src, want string
	}{
		{"shorthand", "{{lead.email}}", "ann@example.com"},
		{"dot form", "{{ .lead.email }}", "ann@example.com"},
		{"dollar form", "{{ $.lead.email }}", "ann@example.com"},
		{"nested", "{{lead.address.geo.lat}}", "36.7"},
		{"nested dot", "{{ .lead.address.city }}", "Fresno"},
		{"map[string]string", "{{ lead.labels.k }}", "v"},
		{"steps", "Bearer {{steps.auth.token}}", "Bearer tok"},
		{"text around", "{{settings.base_url}}/v2/leads/{{lead.state}}/validate", "https://api.example.com/v2/leads/CA/validate"},
		{"bool", "{{lead.email_valid}}", "true"},
		{"float no exponent", "{{lead.big}}", "1000000"},
		{"float fraction", "{{lead.ratio}}", "0.25"},
		{"int64", "{{lead.n}}", "7"},
		{"nil", "[{{lead.nothing}}]", "[]"},
		{"map as json", "{{lead.address.geo}}", `{"lat":36.7}`},
		{"slice as json", "{{lead.tags}}", `["a","b"]`},
		{"pipe", "{{ lead.email | upper }}", "ANN@EXAMPLE.COM"},
		{"nested pipe", "{{ printf \"%s-%s\" (lead.state | lower) vars.source }}", "ca-web"},
		{"if", "{{ if lead.email_valid }}ok{{ else }}bad{{ end }}", "ok"},
		{"if missing is false", "{{ if lead.vip }}vip{{ else }}std{{ end }}", "std"},
		{"else if missing", "{{ if lead.vip }}vip{{ else if lead.gold }}gold{{ else }}std{{ end }}", "std"},
		{"with missing", "{{ with lead.vip }}{{ . }}{{ else }}none {{ .lead.state }}{{ end }}", "none CA"},
		{"with item dot", "{{ with lead.address }}{{ .city }}/{{ $.lead.state }}/{{ lead.state }}{{ end }}", "Fresno/CA/CA"},
		{"range item dot", "{{ range lead.tags }}<{{ . }}>{{ end }}", "<a><b>"},
		{"range vars", "{{ range $i, $t := lead.tags }}{{ $i }}={{ $t }};{{ end }}", "0=a;1=b;"},
		{"variable", "{{ $a := lead.address }}{{ $a.city }}", "Fresno"},
		{"whole root", "{{ json vars }}", `{"source":"web"}`},
		{"index root", `{{ index lead "state" }}`, "CA"},
		{"default missing", `{{ lead.fax | default "n/a" }}`, "n/a"},
		{"default prefix form", `{{ default "n/a" lead.fax }}`, "n/a"},
		{"default present", `{{ lead.state | default "n/a" }}`, "CA"},
		{"default nested missing", `{{ lead.x.y.z | default "n/a" }}`, "n/a"},
		{"coalesce", `{{ coalesce lead.a lead.b "x" }}`, "x"},
		{"coalesce present", `{{ coalesce lead.a lead.state "x" }}`, "CA"},
		{"empty", `{{ if empty lead.fax }}none{{ end }}`, "none"},
		{"hasKey", `{{ hasKey lead "fax" }}/{{ hasKey lead "state" }}`, "false/true"},
		{"or", `{{ or lead.nick lead.email }}`, "ann@example.com"},
		{"ternary", `{{ ternary "B2B" "B2C" lead.corporate }}`, "B2C"},
		{"ternary true", `{{ ternary "B2B" "B2C" lead.email_valid }}`, "B2B"},
		{"ternary missing", `{{ ternary "B2B" "B2C" lead.corp }}`, "B2C"},
		{"literal", "just text", "just text"},
		{"comment only", "a{{/* note */}}b", "ab"},
		{"trim", "  {{- lead.state -}}  ", "CA"},
		{"decl writes nothing", "{{ $x := lead.state }}[{{ $x }}]", "[CA]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mustCompile(t, s, tt.src, template.Plain).Render(testData())
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if got != tt.want {
				t.Errorf("Render(%q) = %q, want %q", tt.src, got, tt.want)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	s := newSet()
	tests := []struct {
		name, src, want string
		missing         bool
	}{
		{"missing", "{{lead.fax}}", "template t: lead.fax is missing", true},
		{"missing dot form", "x {{ .lead.fax }}", "template t: lead.fax is missing", true},
		{"missing nested", "{{lead.address.zip}}", "template t: lead.address.zip is missing", true},
		{"missing root", "{{batch.size}}", "template t: batch.size is missing", true},
		{"missing in pipe", "{{lead.fax | upper}}", "template t: lead.fax is missing", true},
		{"missing in range", "{{ range lead.list }}{{ end }}", "template t: lead.list is missing", true},
		{"missing inside if body", "{{ if lead.email_valid }}{{ lead.fax }}{{ end }}", "template t: lead.fax is missing", true},
		{"not an object", "{{lead.email.valid}}", "template t: lead.email is not an object (reading lead.email.valid)", false},
		{"required", `{{ required "fax is needed" lead.fax }}`, "template t:1:4: fax is needed", false},
		{"sprig error redacted", `{{ mustToDate "2006-01-02" settings.api_key }}`, "template t:1:4: mustToDate: parsing time \"***\"", false},
		{"bad date", `{{ dateFormat "MM/DD/YYYY" settings.api_key }}`, "template t:1:4: dateFormat: value is not a date (a string of 6 bytes;", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mustCompile(t, s, tt.src, template.Plain).Render(testData())
			if err == nil {
				t.Fatal("Render succeeded, want error")
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %q, want prefix %q", err, tt.want)
			}
			if errors.Is(err, template.ErrMissing) != tt.missing {
				t.Errorf("errors.Is(ErrMissing) = %v, want %v", !tt.missing, tt.missing)
			}
			for _, noise := range []string{"__", "executing", "error calling", "s3cr3t"} {
				if strings.Contains(err.Error(), noise) {
					t.Errorf("error %q contains %q", err, noise)
				}
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	s := newSet()
	tests := []struct {
		name, src       string
		line, col       int
		msgContains     string
		wantErrorPrefix string
	}{
		{"unknown function", "{{ nope lead.x }}", 1, 0, `function "nope" not defined`, "template t:1: "},
		{"parse error line", "a\nb\n{{ if }}", 3, 0, "missing value for if", "template t:3: "},
		{"unclosed", "{{ lead.x ", 1, 0, "unclosed action", ""},
		{"unknown root", "x\n  {{ .lead.x }}{{ .leed.x }}", 2, 19, `unknown data root "leed"`, "template t:2:19: "},
		{"unknown root dollar", "{{ $.foo }}", 1, 4, `unknown data root "foo"`, ""},
		{"internal func", `{{ __get $ "lead.x" }}`, 1, 4, "internal", ""},
		{"root with args", `{{ lead "x" }}`, 1, 4, "lead is data, not a function", ""},
		{"removed env", `{{ env "HOME" }}`, 1, 0, `function "env" not defined`, ""},
		{"removed set", `{{ set lead "x" 1 }}`, 1, 0, `function "set" not defined`, ""},
		{"define", "ok\n{{ define \"x\" }}y{{ end }}", 2, 1, "not supported", ""},
		{"template", `{{ template "x" }}`, 1, 1, "not supported", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Compile("t", tt.src, template.Plain)
			var e *template.Error
			if !errors.As(err, &e) {
				t.Fatalf("Compile error = %v (%T), want *template.Error", err, err)
			}
			if e.Line != tt.line || e.Col != tt.col {
				t.Errorf("position = %d:%d, want %d:%d (%v)", e.Line, e.Col, tt.line, tt.col, e)
			}
			if !strings.Contains(e.Msg, tt.msgContains) {
				t.Errorf("Msg = %q, want it to contain %q", e.Msg, tt.msgContains)
			}
			if strings.HasPrefix(e.Msg, "template:") {
				t.Errorf("Msg %q keeps the text/template prefix", e.Msg)
			}
			if tt.wantErrorPrefix != "" && !strings.HasPrefix(e.Error(), tt.wantErrorPrefix) {
				t.Errorf("Error() = %q, want prefix %q", e.Error(), tt.wantErrorPrefix)
			}
		})
	}
}

func TestHelpers(t *testing.T) {
	s := newSet()
	mac := hmac.New(sha256.New, []byte("s3cr3t"))
	mac.Write([]byte("ann@example.com"))
	sum := mac.Sum(nil)
	data := testData()
	data["lead"].(map[string]any)["born"] = time.Date(1980, 1, 2, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name, src, want string
	}{
		{"digits", "{{ lead.phone | digits }}", "5551234567"},
		{"digits number", "{{ digits lead.big }}", "1000000"},
		{"dateFormat tokens", `{{ lead.dob | dateFormat "MM/DD/YYYY" }}`, "06/16/1990"},
		{"dateFormat tokens time", `{{ dateFormat "YYYY-MM-DD HH:mm:ss" lead.born }}`, "1980-01-02 00:00:00"},
		{"dateFormat go layout", `{{ dateFormat "01/02/2006" lead.dob }}`, "06/16/1990"},
		{"dateFormat go layout words", `{{ dateFormat "Jan 2, 2006" lead.dob }}`, "Jun 16, 1990"},
		{"dateFormat from US date", `{{ dateFormat "YYYY-MM-DD" "7/4/1976" }}`, "1976-07-04"},
		{"dateFormat from RFC3339", `{{ dateFormat "DD.MM.YY HH:mm" "2021-03-04T05:06:07Z" }}`, "04.03.21 05:06"},
		{"dateFormat nil", `[{{ dateFormat "MM/DD/YYYY" lead.nothing }}]`, "[]"},
		{"dateFormat missing default", `{{ lead.none | dateFormat "MM/DD/YYYY" | default "?" }}`, "?"},
		{"age day before birthday", "{{ age lead.dob }}", "33"},
		{"age after birthday", `{{ age "1990-06-15" }}`, "34"},
		{"age time", "{{ age lead.born }}", "44"},
		{"now uses clock", `{{ now | date "2006-01-02" }}`, "2024-06-15"},
		{"ago uses clock", `{{ ago (now) }}`, "0s"},
		{"ternary", `{{ ternary "B2B" "B2C" lead.corporate }}`, "B2C"},
		{"coalesce", `{{ coalesce lead.nothing "" lead.state }}`, "CA"},
		{"b64enc", `{{ b64enc lead.email }}`, base64.StdEncoding.EncodeToString([]byte("ann@example.com"))},
		{"hmacSHA256", `{{ hmacSHA256 settings.api_key lead.email }}`, hex.EncodeToString(sum)},
		{"hmacSHA256b64", `{{ hmacSHA256b64 settings.api_key lead.email }}`, base64.StdEncoding.EncodeToString(sum)},
		{"json", `{{ json lead.address }}`, `{"city":"Fresno","geo":{"lat":36.7}}`},
		{"json string", `{{ json "<a&b>" }}`, `"<a&b>"`},
		{"lower upper trim", `{{ trim "  Ab " | lower }}{{ upper "x" }}`, "abX"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mustCompile(t, s, tt.src, template.Plain).Render(data)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if got != tt.want {
				t.Errorf("Render(%q) = %q, want %q", tt.src, got, tt.want)
			}
		})
	}
}

func TestValue(t *testing.T) {
	s := newSet()
	tests := []struct {
		name, src string
		want      any
	}{
		{"bool", "{{lead.email_valid}}", true},
		{"bool dot form", "{{ .lead.email_valid }}", true},
		{"number", "{{lead.age}}", 42.0},
		{"int via sprig", "{{ lead.age | int }}", 42},
		{"nil", "{{lead.nothing}}", nil},
		{"missing default nil", "{{ lead.fax | default nil }}", nil},
		{"map", "{{lead.address.geo}}", map[string]any{"lat": 36.7}},
		{"slice", "{{lead.tags}}", []any{"a", "b"}},
		{"string unescaped", "{{lead.email}}", "ann@example.com"},
		{"trimmed single action", "  {{- lead.email_valid -}}\n", true},
		{"text makes a string", "x{{lead.email_valid}}", "xtrue"},
		{"space makes a string", " {{lead.email_valid}}", " true"},
		{"two actions", "{{lead.age}}{{lead.age}}", "4242"},
		{"literal", "hello", "hello"},
		{"if is not single", "{{ if lead.email_valid }}{{ lead.age }}{{ end }}", "42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, mode := range []template.Mode{template.Plain, template.JSON} {
				got, err := mustCompile(t, s, tt.src, mode).Value(testData())
				if err != nil {
					t.Fatalf("Value: %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("%v: Value(%q) = %#v, want %#v", mode, tt.src, got, tt.want)
				}
			}
		})
	}

	// Value in JSON mode is unescaped; Render is escaped.
	tm := mustCompile(t, s, "{{lead.q}}", template.JSON)
	data := map[string]any{"lead": map[string]any{"q": `a"b`}}
	if v, _ := tm.Value(data); v != `a"b` {
		t.Errorf("Value = %#v, want unescaped", v)
	}
	if r, _ := tm.Render(data); r != `"a\"b"` {
		t.Errorf("Render = %#v, want JSON string", r)
	}
	if _, err := mustCompile(t, s, "{{lead.fax}}", template.Plain).Value(testData()); err == nil || err.Error() != "template t: lead.fax is missing" {
		t.Errorf("Value missing error = %v", err)
	}
}

func TestIntrospection(t *testing.T) {
	s := newSet()
	tests := []struct {
		src     string
		refs    []string
		literal bool
	}{
		{"plain text", []string{}, true},
		{"{{/* c */}}", []string{}, true},
		{"{{settings.base_url}}/v2/leads/{{lead.state}}/validate", []string{"settings.base_url", "lead.state"}, false},
		{"{{ .lead.email }} {{ $.lead.email }} {{ lead.email }}", []string{"lead.email"}, false},
		{"{{ if lead.vip }}{{ steps.auth.token }}{{ else }}{{ vars.x | default captured.y }}{{ end }}",
			[]string{"lead.vip", "steps.auth.token", "vars.x", "captured.y"}, false},
		{"{{ range response.items }}{{ .id }}{{ end }}{{ batch.n }}", []string{"response.items", "batch.n"}, false},
		{"{{ with lead.a }}{{ .b }}{{ $.lead.c }}{{ end }}", []string{"lead.a", "lead.c"}, false},
		{`{{ hmacSHA256 settings.key (printf "%s" lead.id) }}`, []string{"settings.key", "lead.id"}, false},
		{"{{ now }}", []string{}, false},
	}
	for _, tt := range tests {
		tm := mustCompile(t, s, tt.src, template.Plain)
		if got := tm.Refs(); !reflect.DeepEqual(got, tt.refs) {
			t.Errorf("Refs(%q) = %q, want %q", tt.src, got, tt.refs)
		}
		if tm.IsLiteral() != tt.literal {
			t.Errorf("IsLiteral(%q) = %v", tt.src, tm.IsLiteral())
		}
		if tm.Source() != tt.src {
			t.Errorf("Source() = %q", tm.Source())
		}
	}
}

// hostile contains every character that could change the shape of a request.
const hostile = "a\"b<c>d&e/f?g#h\r\ni'j\\k]]>l%m =n;o,p+q\tr\u2028s"

func hostileData() map[string]any {
	return map[string]any{
		"lead": map[string]any{
			"v":  hostile,
			"ok": true,
			"n":  12.5,
			"m":  map[string]any{"k": hostile},
			"l":  []any{hostile, hostile},
		},
		"settings": map[string]any{"base_url": "https://api.example.com/base"},
	}
}

func TestJSONEscaping(t *testing.T) {
	s := newSet()
	src := `{"email": "{{lead.v}}", "raw": {{lead.v}}, "n": {{lead.n}}, "ok": {{lead.ok}}, ` +
		`"null": {{lead.none | default nil}}, "obj": {{lead.m}}, "mixed": "pre \"{{lead.v}}\" {{lead.n}}", ` +
		`"arr": [{{lead.v}}, "{{lead.v}}"], "cond": {{ if lead.ok }}"{{lead.v}}"{{ else }}null{{ end }}, ` +
		`"list": [{{ range $i, $x := lead.l }}{{ if $i }},{{ end }}"{{ $x }}"{{ end }}], {{lead.v}}: 1}`
	out, err := mustCompile(t, s, src, template.JSON).Render(hostileData())
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	want := map[string]any{
		"email": hostile, "raw": hostile, "n": 12.5, "ok": true, "null": nil,
		"obj": map[string]any{"k": hostile}, "mixed": `pre "` + hostile + `" 12.5`,
		"arr": []any{hostile, hostile}, "cond": hostile, "list": []any{hostile, hostile}, hostile: 1.0,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded = %#v\nwant      %#v\nraw: %s", got, want, out)
	}
}

func TestXMLEscaping(t *testing.T) {
	s := newSet()
	src := `<?xml version="1.0"?><!-- {not an action} --><req id="{{lead.v}}" alt='{{lead.v}}'>` +
		`<email>{{lead.v}}</email><c><![CDATA[{{lead.v}}]]></c><n>{{lead.n}}</n></req>`
	out, err := mustCompile(t, s, src, template.XML).Render(hostileData())
	if err != nil {
		t.Fatal(err)
	}
	type req struct {
		XMLName xml.Name `xml:"req"`
		ID      string   `xml:"id,attr"`
		Alt     string   `xml:"alt,attr"`
		Email   string   `xml:"email"`
		C       string   `xml:"c"`
		N       string   `xml:"n"`
	}
	var r req
	if err := xml.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("output is not XML: %v\n%s", err, out)
	}
	// CDATA is raw text, so the XML parser normalises its CR LF to LF.
	cdata := strings.ReplaceAll(hostile, "\r\n", "\n")
	if r.ID != hostile || r.Alt != hostile || r.Email != hostile || r.C != cdata || r.N != "12.5" {
		t.Errorf("decoded %#v\nraw: %s", r, out)
	}
	if got, want := elements(t, out), []string{"req", "email", "c", "n"}; !reflect.DeepEqual(got, want) {
		t.Errorf("elements = %v, want %v", got, want)
	}

	// Characters not allowed in XML 1.0 are replaced.
	out, err = mustCompile(t, s, "<a>{{lead.v}}</a>", template.XML).Render(map[string]any{"lead": map[string]any{"v": "x\x00y\x1bz\xff"}})
	if err != nil {
		t.Fatal(err)
	}
	var a struct {
		V string `xml:",chardata"`
	}
	if err := xml.Unmarshal([]byte(out), &a); err != nil || a.V != "x\uFFFDy\uFFFDz\uFFFD" {
		t.Errorf("illegal chars: %q -> %q, %v", out, a.V, err)
	}
}

func elements(t *testing.T, doc string) []string {
	t.Helper()
	var names []string
	d := xml.NewDecoder(strings.NewReader(doc))
	for {
		tok, err := d.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("token: %v", err)
			}
			return names
		}
		if se, ok := tok.(xml.StartElement); ok {
			names = append(names, se.Name.Local)
		}
	}
}

func TestURLEscaping(t *testing.T) {
	s := newSet()
	src := "{{settings.base_url}}/v2/leads/{{lead.v}}/validate?x={{lead.v}}&{{lead.v}}=k&n={{lead.n}}#frag-{{lead.v}}"
	out, err := mustCompile(t, s, src, template.URL).Render(hostileData())
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(out)
	if err != nil {
		t.Fatalf("url.Parse(%q): %v", out, err)
	}
	if u.Scheme != "https" || u.Host != "api.example.com" {
		t.Errorf("scheme/host = %q %q", u.Scheme, u.Host)
	}
	segs := strings.Split(u.EscapedPath(), "/")
	if want := []string{"", "base", "v2", "leads", "*", "validate"}; len(segs) != len(want) {
		t.Fatalf("path segments = %q, want %d", segs, len(want))
	}
	if seg, _ := url.PathUnescape(segs[4]); seg != hostile {
		t.Errorf("segment = %q", seg)
	}
	q := u.Query()
	if len(q) != 3 || q.Get("x") != hostile || q.Get(hostile) != "k" || q.Get("n") != "12.5" {
		t.Errorf("query = %#v", q)
	}
	if u.Fragment != "frag-"+hostile {
		t.Errorf("fragment = %q", u.Fragment)
	}

	tests := []struct{ src, v, want string }{
		{"{{settings.base_url}}/x/{{lead.v}}", "a/b?c", "https://api.example.com/base/x/a%2Fb%3Fc"},
		{"{{settings.base_url}}/x?q={{lead.v}}", "a b&c=d", "https://api.example.com/base/x?q=a+b%26c%3Dd"},
		{"https://h/{{lead.v}}", "a/../x", ""}, // a dot segment to a server that decodes: refused
		{"{{settings.base_url}}{{lead.v}}", "/x", "https://api.example.com/base%2Fx"},
	}
	for _, tt := range tests {
		d := hostileData()
		d["lead"].(map[string]any)["v"] = tt.v
		got, err := mustCompile(t, s, tt.src, template.URL).Render(d)
		if tt.want == "" && errors.Is(err, template.ErrDotSegment) {
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Render(%q) = %q, %v; want %q", tt.src, got, err, tt.want)
		}
	}
}

func TestHeaderEscaping(t *testing.T) {
	s := newSet()
	tm := mustCompile(t, s, "Bearer {{lead.v}}", template.Header)
	for _, v := range []string{"x\r\nX-Evil: 1", "x\ny", "x\ry", "x\x00y", hostile} {
		out, err := tm.Render(map[string]any{"lead": map[string]any{"v": v}})
		if err == nil {
			t.Errorf("Render(%q) = %q, want error", v, out)
			continue
		}
		if !strings.Contains(err.Error(), "header value contains") || strings.Contains(err.Error(), "Evil") {
			t.Errorf("error = %q", err)
		}
	}
	out, err := tm.Render(map[string]any{"lead": map[string]any{"v": `tok"<>&/?#'`}})
	if err != nil || out != `Bearer tok"<>&/?#'` {
		t.Errorf("Render = %q, %v", out, err)
	}
}

func TestPlainNoEscaping(t *testing.T) {
	out, err := mustCompile(t, newSet(), "{{lead.v}}", template.Plain).Render(hostileData())
	if err != nil || out != hostile {
		t.Errorf("Render = %q, %v", out, err)
	}
}

func TestContextErrors(t *testing.T) {
	s := newSet()
	tests := []struct {
		name, src string
		mode      template.Mode
		want      string
	}{
		{"json branches differ", `{"a": "{{ if lead.ok }}x"{{ end }}}`, template.JSON, "branches end in different contexts"},
		{"json range", `[{{ range lead.l }}"{{ . }}{{ end }}"]`, template.JSON, "{{range}} body"},
		{"json after backslash", `{"a": "\{{lead.v}}"}`, template.JSON, "backslash"},
		{"xml comment", `<!-- {{lead.v}} -->`, template.XML, "XML comment"},
		{"url range at start", `{{ range lead.l }}{{ . }}{{ end }}`, template.URL, "cannot repeat text"},
		{"url range body", `{{settings.b}}/{{ range lead.l }}?{{ end }}`, template.URL, "{{range}} body"},
		{"url branches differ", `{{settings.b}}/a{{ if lead.ok }}?x=1{{ end }}&y={{lead.v}}`, template.URL, "branches"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Compile("t", tt.src, tt.mode)
			var e *template.Error
			if !errors.As(err, &e) || !strings.Contains(e.Msg, tt.want) || e.Line != 1 || e.Col == 0 {
				t.Errorf("Compile error = %#v, want *Error containing %q with a position", err, tt.want)
			}
		})
	}
}

func TestDataNotMutated(t *testing.T) {
	s := newSet()
	data := testData()
	before := fmt.Sprintf("%#v", data)
	srcs := []string{
		`{{ $d := lead.address }}{{ $_ := dict "x" 1 }}{{ json $d }}`,
		`{{ lead.tags | sortAlpha | reverse | json }}`,
		`{{ append lead.tags "c" | json }}`,
		`{{ pick lead.address "city" | json }}{{ omit lead.address "city" | json }}`,
		`{{ lead.email }}`,
	}
	for _, src := range srcs {
		tm := mustCompile(t, s, src, template.JSON)
		if _, err := tm.Render(data); err != nil {
			t.Fatalf("Render(%q): %v", src, err)
		}
		if _, err := tm.Value(data); err != nil {
			t.Fatalf("Value(%q): %v", src, err)
		}
	}
	if after := fmt.Sprintf("%#v", data); after != before {
		t.Errorf("data mutated:\n%s\n%s", before, after)
	}
}

func TestConcurrentRender(t *testing.T) {
	s := newSet()
	tm := mustCompile(t, s, `{"id": "{{lead.id}}", "n": {{lead.n}}, "ok": {{ if lead.ok }}true{{ else }}false{{ end }}}`, template.JSON)
	single := mustCompile(t, s, "{{lead.n}}", template.JSON)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := map[string]any{"lead": map[string]any{"id": fmt.Sprintf("id-%d\"", i), "n": float64(i), "ok": i%2 == 0}}
			want := fmt.Sprintf(`{"id": "id-%d\"", "n": %d, "ok": %v}`, i, i, i%2 == 0)
			for range 100 {
				got, err := tm.Render(data)
				if err != nil || got != want {
					errs <- fmt.Errorf("goroutine %d: got %q, %v; want %q", i, got, err, want)
					return
				}
				v, err := single.Value(data)
				if err != nil || v != float64(i) {
					errs <- fmt.Errorf("goroutine %d: Value = %v, %v", i, v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkRender(b *testing.B) {
	s := template.New()
	tm := mustCompile(b, s, "{{settings.base_url}}/v2/leads/{{lead.state}}/validate", template.URL)
	data := testData()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tm.Render(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValueTyped(b *testing.B) {
	s := template.New()
	tm := mustCompile(b, s, "{{lead.email_valid}}", template.JSON)
	data := testData()
	b.ReportAllocs()
	for b.Loop() {
		if v, err := tm.Value(data); err != nil || v != true {
			b.Fatal(v, err)
		}
	}
}

// BenchmarkRenderJSONBody renders a whole JSON body as text, with typed
// values written as JSON (numbers, booleans) and strings escaped in place:
// a `body: json: |` text body.
func BenchmarkRenderJSONBody(b *testing.B) {
	s := template.New()
	tm := mustCompile(b, s, `{"email": "{{lead.email}}", "phone": "{{ lead.phone | digits }}", "state": "{{ lead.state | upper }}", "age": {{lead.age}}, "valid": {{lead.email_valid}}, "tags": {{lead.tags}}}`, template.JSON)
	data := testData()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tm.Render(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValueJSONBody evaluates the leaves of a structured JSON body
// (`body: json: {email: "{{lead.email}}", …}`) to typed values, as the
// engine does before marshalling them.
func BenchmarkValueJSONBody(b *testing.B) {
	s := template.New()
	leaves := []*template.Template{
		mustCompile(b, s, "{{lead.email}}", template.JSON),
		mustCompile(b, s, "{{ lead.phone | digits }}", template.JSON),
		mustCompile(b, s, "{{ lead.state | upper }}", template.JSON),
		mustCompile(b, s, "{{lead.age}}", template.JSON),
		mustCompile(b, s, "{{lead.email_valid}}", template.JSON),
	}
	data := testData()
	b.ReportAllocs()
	for b.Loop() {
		for _, tm := range leaves {
			if _, err := tm.Value(data); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	s := template.New()
	b.ReportAllocs()
	for b.Loop() {
		mustCompile(b, s, `{"email": "{{lead.email}}", "phone": "{{ lead.phone | digits }}"}`, template.JSON)
	}
}
