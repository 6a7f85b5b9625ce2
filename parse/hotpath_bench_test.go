package parse

import (
	"net/http"
	"testing"
)

// BenchmarkFlowAnswers reads the three answers of the side-by-side
// benchmark's flow (bench/integration.yaml) the way a step does: one Doc per
// answer, every capture of the step extracted from it.
func BenchmarkFlowAnswers(b *testing.B) {
	type capture struct {
		spec Spec
		ns   Namespaces
	}
	cases := []struct {
		name     string
		resp     Response
		format   Format
		captures []capture
	}{
		{"json", Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"req-7ddfb9846b5a"}},
			Body: []byte(`{"is_blacklisted":false,"reason":"","risk_score":31}` + "\n")}, Auto,
			[]capture{{Spec{JSON: "is_blacklisted", Type: "bool"}, nil}, {Spec{JSON: "risk_score", Type: "number"}, nil}, {Spec{Header: "X-Request-Id"}, nil}}},
		{"soap", xmlResp(soapXML), XML,
			[]capture{{Spec{XPath: "//v:Result/v:Valid", Type: "bool"}, soapNS()}, {Spec{XPath: "//v:Result/v:Score", Type: "number"}, soapNS()}, {Spec{XPath: "//v:Message"}, soapNS()}}},
		{"regex", textResp(seedRegex + "\n"), Text,
			[]capture{{Spec{Regex: `ID: (\d+)`, Group: "1"}, nil}, {Spec{Regex: `price: \$(\d+\.\d{2})`, Group: "1", Type: "number"}, nil}}},
	}
	for _, c := range cases {
		exs := make([]Extractor, len(c.captures))
		for i, cp := range c.captures {
			ex, err := Compile(cp.spec, cp.ns)
			if err != nil {
				b.Fatal(err)
			}
			exs[i] = ex
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d := NewDoc(c.resp, c.format)
				for _, ex := range exs {
					if _, found, err := ex.Extract(d); err != nil || !found {
						b.Fatalf("found=%v err=%v", found, err)
					}
				}
			}
		})
	}
}
