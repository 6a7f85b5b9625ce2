package parse

import "testing"

// Each benchmark reports two cases: "response" builds a fresh Doc per iteration, as the
// engine does per HTTP response (so it includes parsing the body once); "extract"
// reuses one Doc, measuring only the extraction.
func benchExtract(b *testing.B, spec Spec, ns Namespaces, resp Response) {
	ex, err := Compile(spec, ns)
	if err != nil {
		b.Fatal(err)
	}
	if _, found, err := ex.Extract(NewDoc(resp, Auto)); err != nil || !found {
		b.Fatalf("found=%v err=%v", found, err)
	}
	b.Run("response", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := ex.Extract(NewDoc(resp, Auto)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("extract", func(b *testing.B) {
		d := NewDoc(resp, Auto)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := ex.Extract(d); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkJSON(b *testing.B) {
	benchExtract(b, Spec{JSON: "data.score", Type: "number"}, nil, jsonResp(seedJSON))
}

func BenchmarkXPathSOAP(b *testing.B) {
	benchExtract(b, Spec{XPath: "//soap:Body/v:ValidateResponse/v:Result/v:Valid", Type: "bool"}, soapNS(), xmlResp(soapXML))
}

func BenchmarkSplit(b *testing.B) {
	benchExtract(b, Spec{Split: "|", Index: 1, Type: "number"}, nil, textResp(seedText))
}

func BenchmarkRegex(b *testing.B) {
	benchExtract(b, Spec{Regex: `price: \$(?P<price>\d+\.\d{2})`, Group: "price", Type: "number"}, nil, textResp(seedRegex))
}
