package parse_test

import (
	"fmt"
	"net/http"

	"github.com/plumbhq/plumb/parse"
)

func ExampleCompile() {
	// Compiled once, when the integration file loads.
	captures := map[string]parse.Spec{
		"score":      {JSON: "data.score", Type: "int"},
		"email":      {JSON: "data.details.email_valid"},
		"request_id": {Header: "X-Request-Id"},
		"code":       {Status: true},
	}
	names := []string{"score", "email", "request_id", "code"}
	extractors := map[string]parse.Extractor{}
	for _, name := range names {
		ex, err := parse.Compile(captures[name], nil)
		if err != nil {
			fmt.Println(name, err)
			return
		}
		extractors[name] = ex
	}

	// Run per response.
	doc := parse.NewDoc(parse.Response{
		Status: 200,
		Header: http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"req-42"}},
		Body:   []byte(`{"status":"success","data":{"score":85,"details":{"email_valid":true}}}`),
	}, parse.Auto)
	for _, name := range names {
		v, found, err := extractors[name].Extract(doc)
		fmt.Printf("%s: %v (%T) found=%v err=%v\n", name, v, v, found, err)
	}

	// Compile errors say what is wrong and how to fix it.
	_, err := parse.Compile(parse.Spec{XPath: "//soap:Body/x:Result"}, parse.Namespaces{"soap": "http://schemas.xmlsoap.org/soap/envelope/"})
	fmt.Println(err)
	// Output:
	// score: 85 (int64) found=true err=<nil>
	// email: true (bool) found=true err=<nil>
	// request_id: req-42 (string) found=true err=<nil>
	// code: 200 (int) found=true err=<nil>
	// xpath "//soap:Body/x:Result": namespace prefix "x" is not declared; add it to the step's namespaces (declared: soap)
}
