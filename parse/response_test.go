package parse

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestFormatDetection(t *testing.T) {
	cases := []struct {
		contentType string
		body        string
		want        Format
	}{
		{"application/json", "", JSON},
		{"application/json; charset=utf-8", "x", JSON},
		{"APPLICATION/JSON", "x", JSON},
		{"application/problem+json", `{"title":"bad"}`, JSON},
		{"application/vnd.api+json", "{}", JSON},
		{"text/json", "{}", JSON},
		{"application/xml", "<a/>", XML},
		{"text/xml; charset=ISO-8859-1", "<a/>", XML},
		{"application/soap+xml; charset=utf-8", soapXML, XML},
		{"application/atom+xml", "<feed/>", XML},
		{"text/plain", seedJSON, Text},
		{"text/html", "<html/>", Text},
		{"application/octet-stream", "{}", Text},
		{"application/json;;bad params=", "{}", JSON}, // unparsable parameters: media type still used
		{"", seedJSON, JSON},
		{"", "  \n [1,2]", JSON},
		{"", "\uFEFF{}", JSON},
		{"", soapXML, XML},
		{"", "\t<r/>", XML},
		{"", seedText, Text},
		{"", "", Text},
		{"", "   ", Text},
	}
	for _, tc := range cases {
		h := http.Header{}
		if tc.contentType != "" {
			h.Set("Content-Type", tc.contentType)
		}
		d := NewDoc(Response{Status: 200, Header: h, Body: []byte(tc.body)}, Auto)
		if got := d.Format(); got != tc.want {
			t.Errorf("Content-Type %q, body %.10q: Format() = %q, want %q", tc.contentType, tc.body, got, tc.want)
		}
	}
	// An explicit format wins over Content-Type; an unknown one falls back to detection.
	if f := NewDoc(xmlResp(seedJSON), JSON).Format(); f != JSON {
		t.Errorf("explicit JSON: got %q", f)
	}
	if f := NewDoc(jsonResp(seedJSON), Format("yaml")).Format(); f != JSON {
		t.Errorf("unknown format: got %q", f)
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"": Auto, "auto": Auto, "JSON": JSON, " xml ": XML, "text": Text} {
		got, err := ParseFormat(in)
		if err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseFormat("yaml"); err == nil || !strings.Contains(err.Error(), `unknown response format "yaml"`) {
		t.Errorf("ParseFormat(yaml) error = %v", err)
	}
}

func TestXMLParsedOnce(t *testing.T) {
	d := NewDoc(xmlResp(soapXML), Auto)
	if d.xmlParses != 0 {
		t.Fatal("NewDoc parsed eagerly")
	}
	specs := []Spec{
		{XPath: "//v:Valid", Type: "bool"},
		{XPath: "//v:Score", Type: "int"},
		{XPath: "count(//v:Flag)"},
		{XPath: "//v:Flag/@code", All: true},
	}
	for _, s := range specs {
		ex, err := Compile(s, soapNS())
		if err != nil {
			t.Fatal(err)
		}
		if _, found, err := ex.Extract(d); err != nil || !found {
			t.Fatalf("%s: found=%v err=%v", s.XPath, found, err)
		}
	}
	r1, err1 := d.XMLRoot()
	r2, err2 := d.XMLRoot()
	if err1 != nil || err2 != nil || r1 != r2 {
		t.Fatalf("XMLRoot not cached: %p %p %v %v", r1, r2, err1, err2)
	}
	if d.xmlParses != 1 {
		t.Fatalf("body parsed %d times, want 1", d.xmlParses)
	}

	// A failed parse is cached too.
	bad := NewDoc(xmlResp("<a>"), Auto)
	for range 3 {
		if _, err := bad.XMLRoot(); err == nil {
			t.Fatal("want error")
		}
	}
	if bad.xmlParses != 1 {
		t.Fatalf("invalid body parsed %d times, want 1", bad.xmlParses)
	}
}

func TestJSONValidError(t *testing.T) {
	if err := NewDoc(jsonResp(seedJSON), Auto).JSONValid(); err != nil {
		t.Fatal(err)
	}
	long := "<html><head><title>502 Bad Gateway</title></head><body>" + strings.Repeat("lorem ipsum ", 1000) + "</body></html>"
	err := NewDoc(jsonResp(long), Auto).JSONValid()
	if err == nil {
		t.Fatal("want error")
	}
	msg := err.Error()
	for _, want := range []string{"response body is not valid JSON: ", "invalid character '<'", "offset 1", `body starts "` + long[:64] + `"... (12069 bytes)`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if len(msg) > 250 {
		t.Errorf("error is %d bytes long; must not include the whole body: %s", len(msg), msg)
	}
	// The quoted prefix must not cut a UTF-8 sequence in half.
	err = NewDoc(jsonResp(strings.Repeat("é", 100)), Auto).JSONValid()
	if err == nil || strings.Contains(err.Error(), `\xc3`) {
		t.Errorf("bad quoting of multi-byte body: %v", err)
	}
}

func TestXMLRootError(t *testing.T) {
	_, err := NewDoc(xmlResp("<ValidateResponse><Status>Success</Result>"), Auto).XMLRoot()
	if err == nil || !strings.Contains(err.Error(), "response body is not valid XML: XML syntax error on line 1: element <Status> closed by </Result>") {
		t.Fatalf("err = %v", err)
	}
	for _, body := range []string{"", "OK", seedJSON, "<a>", "<<<"} {
		if _, err := NewDoc(xmlResp(body), Auto).XMLRoot(); err == nil || !strings.HasPrefix(err.Error(), "response body is not valid XML: ") {
			t.Errorf("body %q: err = %v", body, err)
		}
	}
}

func TestValue(t *testing.T) {
	cases := []struct {
		name string
		resp Response
		f    Format
		want any
		err  string
	}{
		{"json object", jsonResp(`{"a":1,"b":[true,null,"x"]}`), Auto, map[string]any{"a": 1.0, "b": []any{true, nil, "x"}}, ""},
		{"json scalar", jsonResp(`"hi"`), Auto, "hi", ""},
		{"json null", jsonResp(`null`), Auto, nil, ""},
		{"invalid json", jsonResp(`{"a":`), Auto, nil, "response body is not valid JSON"},
		{"forced json on text", textResp(`[1,2]`), JSON, []any{1.0, 2.0}, ""},
		{"xml is the body string", xmlResp(seedXML), Auto, seedXML, ""},
		{"text trailing newline trimmed", textResp(seedText), Auto, "SUCCESS|85|VALID|ABC123", ""},
		{"text CRLF trimmed", textResp("OK\r\n"), Auto, "OK", ""},
		{"text leading space kept", textResp("  OK"), Auto, "  OK", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDoc(tc.resp, tc.f)
			got, err := d.Value()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Value() = %#v, %v; want %#v", got, err, tc.want)
			}
		})
	}
}

func TestDocResponse(t *testing.T) {
	r := jsonResp("\uFEFF{}")
	got := NewDoc(r, Auto).Response()
	if got.Status != 200 || string(got.Body) != "\uFEFF{}" || got.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("Response() = %+v", got)
	}
}

// The readers XMLRoot borrows carry nothing from one answer to the next: a
// long answer, then a short one, then a truncated one each parse as
// themselves.
func TestXMLReadersCarryNothing(t *testing.T) {
	long := "<r>" + strings.Repeat("<x>long</x>", 2000) + "</r>" // more than the reader's 4 KiB
	for i, c := range []struct{ body, want string }{
		{long, strings.Repeat("long", 2000)},
		{"<r><x>short</x></r>", "short"},
		{"<r><x>cut", ""},
		{"<r><x>again</x></r>", "again"},
	} {
		root, err := NewDoc(xmlResp(c.body), XML).XMLRoot()
		if c.want == "" {
			if err == nil {
				t.Errorf("%d: a truncated answer parsed", i)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if got := root.InnerText(); got != c.want {
			t.Errorf("%d: text %.40q…, want %.40q…", i, got, c.want)
		}
	}
}
