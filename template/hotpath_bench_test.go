package template_test

import (
	"testing"

	"github.com/plumbhq/plumb/template"
)

// The renders of the side-by-side benchmark's flow (bench/integration.yaml)
// that BenchmarkRender and friends do not cover: a SOAP envelope (XML
// escaping of every action), a header value and a form value.

func BenchmarkRenderXMLBody(b *testing.B) {
	s := template.New()
	tm := mustCompile(b, s, `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><lead:ValidateRequest xmlns:lead="http://partner.com/leads"><lead:Email>{{lead.email}}</lead:Email><lead:Phone>{{ lead.phone | digits }}</lead:Phone><lead:State>{{lead.state}}</lead:State><lead:Age>{{lead.age}}</lead:Age></lead:ValidateRequest></soap:Body></soap:Envelope>`, template.XML)
	data := testData()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tm.Render(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderHeader(b *testing.B) {
	s := template.New()
	tm := mustCompile(b, s, "{{settings.api_key}}", template.Header)
	data := testData()
	data["settings"] = map[string]any{"api_key": "demo-key"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tm.Render(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderPlainNumber(b *testing.B) {
	s := template.New()
	tm := mustCompile(b, s, "{{lead.age}}", template.Plain)
	data := testData()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tm.Render(data); err != nil {
			b.Fatal(err)
		}
	}
}
