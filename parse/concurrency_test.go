package parse

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
)

// One compiled Extractor per kind, used from 50 goroutines at once (run with -race).
// Each goroutine gets its own Doc, except for the shared-Doc variant.
func TestConcurrentExtract(t *testing.T) {
	type job struct {
		spec Spec
		resp Response
		want any
	}
	jobs := []job{
		{Spec{JSON: "data.score", Type: "int"}, jsonResp(seedJSON), int64(85)},
		{Spec{JSON: "friends.#(age>45)#.first", All: true}, jsonResp(richJSON), []any{"Roger", "Jane"}},
		{Spec{XPath: "//soap:Body/v:ValidateResponse/v:Result/v:Valid", Type: "bool"}, xmlResp(soapXML), true},
		{Spec{XPath: "count(//v:Flag)", Type: "int"}, xmlResp(soapXML), int64(2)},
		{Spec{XPath: "//v:Flag/@code", All: true}, xmlResp(soapXML), []any{"A1", "B2"}},
		{Spec{XPath: "//Result[Score > 80]/Valid"}, xmlResp(seedXML), "true"},
		{Spec{Split: "|", Index: -1}, textResp(seedText), "ABC123"},
		{Spec{Regex: `price: \$(?P<price>\d+\.\d{2})`, Group: "price", Type: "number"}, textResp(seedRegex), 45.0},
		{Spec{Header: "content-type"}, jsonResp("{}"), "application/json"},
		{Spec{Status: true}, jsonResp("{}"), 200},
	}
	for _, j := range jobs {
		ex, err := Compile(j.spec, soapNS())
		if err != nil {
			t.Fatal(err)
		}
		shared := NewDoc(j.resp, Auto)
		for _, sharedDoc := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/%+v/shared=%v", ex.Kind(), j.spec, sharedDoc), func(t *testing.T) {
				var wg sync.WaitGroup
				errs := make(chan error, 50)
				for range 50 {
					wg.Go(func() {
						for range 20 {
							d := shared
							if !sharedDoc {
								d = NewDoc(j.resp, Auto)
							}
							v, found, err := ex.Extract(d)
							if err != nil || !found || !reflect.DeepEqual(v, j.want) {
								errs <- fmt.Errorf("got (%#v, %v, %v), want %#v", v, found, err, j.want)
								return
							}
						}
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Fatal(err)
				}
			})
		}
	}
}
