package parse

import (
	"net/http"
	"testing"
)

// FuzzExtract runs random bodies, with random Content-Types, through every extractor
// kind and every Doc accessor; nothing may panic, and a value is never returned with
// an error.
func FuzzExtract(f *testing.F) {
	specs := []Spec{
		{JSON: "status"},
		{JSON: "data.score", Type: "number"},
		{JSON: "data.items.#.id", All: true, Type: "int"},
		{JSON: "friends.#(age>40)#.first", Type: "string"},
		{JSON: "@this", Type: "bool"},
		{JSON: "..0"},
		{XPath: "//soap:Body/v:ValidateResponse/v:Result/v:Valid", Type: "bool"},
		{XPath: "count(//*)", Type: "int"},
		{XPath: "//@*", All: true},
		{XPath: "//text()", All: true, Type: "number"},
		{XPath: "sum(//v:Score) div count(//v:Flag)"},
		{XPath: "starts-with(//Status, //Result)"},
		{Split: "|", Index: 1, Type: "number"},
		{Split: "|", Index: -1},
		{Split: "\n", All: true, Type: "bool"},
		{Regex: `ID: (\d+)`, Type: "int"},
		{Regex: `price: \$(?P<price>\d+\.\d{2})`, Group: "price", Type: "number"},
		{Regex: `(a*)(b)?`, Group: "2", All: true},
		{Regex: `(?s).*`, Type: "string"},
		{Header: "X-Request-Id", Type: "int"},
		{Status: true, Type: "bool"},
	}
	var exs []Extractor
	for _, s := range specs {
		ex, err := Compile(s, soapNS())
		if err != nil {
			f.Fatalf("Compile(%+v): %v", s, err)
		}
		exs = append(exs, ex)
	}
	for _, seed := range []string{seedJSON, richJSON, seedXML, soapXML, soapFault, defaultNSXML, seedText, seedRegex, "", "{", "<", "\uFEFF<a>", `{"a":[1,2,{"b":null}]}`, "<a b='1'><![CDATA[x]]><!-- c --><?pi x?></a>"} {
		f.Add([]byte(seed), "", 200)
		f.Add([]byte(seed), "application/json", 500)
		f.Add([]byte(seed), "application/soap+xml; charset=utf-8", 0)
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string, status int) {
		resp := Response{Status: status, Header: http.Header{"Content-Type": {contentType}, "X-Request-Id": {string(body)}}, Body: body}
		for _, format := range []Format{Auto, JSON, XML, Text} {
			d := NewDoc(resp, format)
			_ = d.Format()
			_ = d.JSONValid()
			_, _ = d.XMLRoot()
			_, _ = d.Value()
			for _, ex := range exs {
				v, found, err := ex.Extract(d)
				if err != nil && (v != nil || found) {
					t.Fatalf("%s: value %#v (found=%v) returned with error %v", ex.Kind(), v, found, err)
				}
				if !found && v != nil {
					t.Fatalf("%s: value %#v returned with found=false", ex.Kind(), v)
				}
				for _, typ := range []string{"string", "number", "int", "bool"} {
					_, _ = Coerce(v, typ)
				}
			}
		}
	})
}
