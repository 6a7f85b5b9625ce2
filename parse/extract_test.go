package parse

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

type extractCase struct {
	name  string
	spec  Spec
	ns    Namespaces
	resp  Response
	want  any
	found bool
	err   string // substring of the Extract error; "" means no error
}

func runExtractCases(t *testing.T, cases []extractCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := Compile(tc.spec, tc.ns)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			got, found, err := ex.Extract(NewDoc(tc.resp, Auto))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.err)
				}
				if found || got != nil {
					t.Fatalf("on error got (%#v, %v), want (nil, false)", got, found)
				}
				return
			}
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if found != tc.found || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got (%#v [%T], %v), want (%#v [%T], %v)", got, got, found, tc.want, tc.want, tc.found)
			}
		})
	}
}

func TestExtractJSON(t *testing.T) {
	seed, rich := jsonResp(seedJSON), jsonResp(richJSON)
	runExtractCases(t, []extractCase{
		{name: "string", spec: Spec{JSON: "status"}, resp: seed, want: "success", found: true},
		{name: "number", spec: Spec{JSON: "data.score"}, resp: seed, want: 85.0, found: true},
		{name: "number as int", spec: Spec{JSON: "data.score", Type: "int"}, resp: seed, want: int64(85), found: true},
		{name: "nested bool", spec: Spec{JSON: "data.details.email_valid"}, resp: seed, want: true, found: true},
		{name: "false", spec: Spec{JSON: "data.details.address_confirmed"}, resp: seed, want: false, found: true},
		{name: "meta", spec: Spec{JSON: "meta.request_id"}, resp: seed, want: "abc123", found: true},
		{name: "float", spec: Spec{JSON: "meta.processing_time"}, resp: seed, want: 0.234, found: true},
		{name: "object", spec: Spec{JSON: "data.details"}, resp: seed, want: map[string]any{
			"email_valid": true, "phone_valid": true, "address_confirmed": false}, found: true},
		{name: "missing", spec: Spec{JSON: "data.nope"}, resp: seed, found: false},
		{name: "missing with type", spec: Spec{JSON: "data.nope", Type: "number"}, resp: seed, found: false},
		{name: "null is found", spec: Spec{JSON: "note"}, resp: rich, want: nil, found: true},
		{name: "null stays nil when typed", spec: Spec{JSON: "note", Type: "number"}, resp: rich, want: nil, found: true},
		{name: "strings are not trimmed", spec: Spec{JSON: "padded"}, resp: rich, want: "  keep me  ", found: true},
		{name: "array query", spec: Spec{JSON: "data.items.#.id"}, resp: rich, want: []any{1.0, 2.0}, found: true},
		{name: "count", spec: Spec{JSON: "data.items.#"}, resp: rich, want: 2.0, found: true},
		{name: "first match query", spec: Spec{JSON: "friends.#(age>45).first"}, resp: rich, want: "Roger", found: true},
		{name: "all matches query", spec: Spec{JSON: "friends.#(last==\"Murphy\")#.first"}, resp: rich, want: []any{"Dale", "Jane"}, found: true},
		{name: "modifier", spec: Spec{JSON: "data.items.#.name|@reverse"}, resp: rich, want: []any{"premium", "basic"}, found: true},
		{name: "all on array", spec: Spec{JSON: "data.items.#.name", All: true}, resp: rich, want: []any{"basic", "premium"}, found: true},
		{name: "all on scalar wraps", spec: Spec{JSON: "status", All: true}, resp: seed, want: []any{"success"}, found: true},
		{name: "all on empty array is found", spec: Spec{JSON: "data.empty", All: true}, resp: rich, want: []any{}, found: true},
		{name: "all coerces each", spec: Spec{JSON: "data.items.#.id", All: true, Type: "string"}, resp: rich, want: []any{"1", "2"}, found: true},
		{name: "big id keeps precision as string", spec: Spec{JSON: "lead_id", Type: "string"}, resp: rich, want: "9007199254740993", found: true},
		{name: "big id keeps precision as int", spec: Spec{JSON: "lead_id", Type: "int"}, resp: rich, want: int64(9007199254740993), found: true},
		{name: "string price as number", spec: Spec{JSON: "price", Type: "number"}, resp: rich, want: 45.0, found: true},
		{name: "yes as bool", spec: Spec{JSON: "accepted", Type: "bool"}, resp: rich, want: true, found: true},
		{name: "coercion error", spec: Spec{JSON: "status", Type: "number"}, resp: seed, err: `json "status": "success" is not a number`},
		{name: "json despite text/plain", spec: Spec{JSON: "data.score"}, resp: textResp(seedJSON), want: 85.0, found: true},
		{name: "json with BOM", spec: Spec{JSON: "status"}, resp: jsonResp("\uFEFF" + seedJSON), want: "success", found: true},
		{name: "invalid JSON", spec: Spec{JSON: "status"}, resp: jsonResp(`{"status": "succ`), err: "response body is not valid JSON"},
		{name: "HTML error page", spec: Spec{JSON: "status"}, resp: jsonResp("<html><body>502 Bad Gateway</body></html>"), err: "response body is not valid JSON: invalid character '<'"},
		// an empty body (a 204, a 200 without one) holds nothing to find: not found, not an error
		{name: "empty body", spec: Spec{JSON: "status"}, resp: jsonResp(""), found: false},
		{name: "white-space body", spec: Spec{JSON: "status"}, resp: jsonResp(" \r\n"), found: false},
		{name: "truncated gjson-valid prefix", spec: Spec{JSON: "status"}, resp: jsonResp(`{"status":"ok"} trailing`), err: "not valid JSON"},
	})
}

func TestExtractXPath(t *testing.T) {
	seed, soap := xmlResp(seedXML), xmlResp(soapXML)
	runExtractCases(t, []extractCase{
		{name: "seed status", spec: Spec{XPath: "//Status"}, resp: seed, want: "Success", found: true},
		{name: "seed valid as bool", spec: Spec{XPath: "//Result/Valid", Type: "bool"}, resp: seed, want: true, found: true},
		{name: "seed score as number", spec: Spec{XPath: "//Result/Score", Type: "number"}, resp: seed, want: 85.0, found: true},
		{name: "seed email", spec: Spec{XPath: "//EmailStatus"}, resp: seed, want: "valid", found: true},
		{name: "element inner text is trimmed", spec: Spec{XPath: "/ValidateResponse/Status"}, resp: xmlResp("<ValidateResponse><Status>\n  Success\n</Status></ValidateResponse>"), want: "Success", found: true},
		{name: "trim false", spec: Spec{XPath: "//Status", Trim: ptr(false)}, resp: xmlResp("<r><Status> ok </Status></r>"), want: " ok ", found: true},
		{name: "missing node", spec: Spec{XPath: "//Nope"}, resp: seed, found: false},
		{name: "count", spec: Spec{XPath: "count(//Result/*)"}, resp: seed, want: 4.0, found: true},
		{name: "count as int", spec: Spec{XPath: "count(//Result/*)", Type: "int"}, resp: seed, want: int64(4), found: true},
		{name: "boolean expression", spec: Spec{XPath: "//Result/Score > 80"}, resp: seed, want: true, found: true},
		{name: "string function", spec: Spec{XPath: "concat(//Status, '-', //Score)"}, resp: seed, want: "Success-85", found: true},
		{name: "NaN is not found", spec: Spec{XPath: "number(//Missing)"}, resp: seed, found: false},
		{name: "all elements", spec: Spec{XPath: "//Result/*[contains(name(), 'Status')]", All: true}, resp: seed, want: []any{"valid", "valid"}, found: true},
		{name: "all none", spec: Spec{XPath: "//Nope", All: true}, resp: seed, found: false},

		{name: "soap valid", spec: Spec{XPath: "//soap:Body/v:ValidateResponse/v:Result/v:Valid", Type: "bool"}, ns: soapNS(), resp: soap, want: true, found: true},
		{name: "soap absolute path", spec: Spec{XPath: "/soap:Envelope/soap:Body/v:ValidateResponse/v:Result/v:Score", Type: "int"}, ns: soapNS(), resp: soap, want: int64(85), found: true},
		{name: "soap cdata", spec: Spec{XPath: "//v:Message"}, ns: soapNS(), resp: soap, want: "Lead <b>accepted</b>", found: true},
		{name: "soap cdata text()", spec: Spec{XPath: "//v:Message/text()"}, ns: soapNS(), resp: soap, want: "Lead <b>accepted</b>", found: true},
		{name: "soap attribute", spec: Spec{XPath: "//v:Flag[2]/@code"}, ns: soapNS(), resp: soap, want: "B2", found: true},
		{name: "soap all attributes", spec: Spec{XPath: "//v:Flag/@code", All: true}, ns: soapNS(), resp: soap, want: []any{"A1", "B2"}, found: true},
		{name: "soap all flags", spec: Spec{XPath: "//v:Flags/v:Flag", All: true}, ns: soapNS(), resp: soap, want: []any{"duplicate", "risky"}, found: true},
		{name: "soap count", spec: Spec{XPath: "count(//v:Flag)"}, ns: soapNS(), resp: soap, want: 2.0, found: true},
		{name: "soap predicate on attribute", spec: Spec{XPath: "//v:Flag[@code='A1']"}, ns: soapNS(), resp: soap, want: "duplicate", found: true},
		{name: "soap wrong namespace URI does not match", spec: Spec{XPath: "//v:Valid"}, ns: Namespaces{"v": "http://other.com/"}, resp: soap, found: false},
		{name: "partner prefixes differ from step prefixes", spec: Spec{XPath: "//soap:Body/v:ValidateResponse/v:Result/v:Score", Type: "number"}, ns: soapNS(), resp: xmlResp(soapOtherPrefixes), want: 12.0, found: true},
		{name: "soap fault", spec: Spec{XPath: "//soap:Fault/faultstring"}, ns: soapNS(), resp: xmlResp(soapFault), want: "Invalid API key", found: true},
		{name: "soap+xml content type", spec: Spec{XPath: "//v:Valid"}, ns: soapNS(), resp: Response{Header: http.Header{"Content-Type": {"application/soap+xml; charset=utf-8"}}, Body: []byte(soapXML)}, want: "true", found: true},

		{name: "default namespace via prefix", spec: Spec{XPath: "/d:LeadResult/d:Id", Type: "int"}, ns: defaultNS(), resp: xmlResp(defaultNSXML), want: int64(991), found: true},
		{name: "default namespace wrong URI", spec: Spec{XPath: "//d:Status"}, ns: Namespaces{"d": "http://partner.com/v1/leads"}, resp: xmlResp(defaultNSXML), found: false},
		// antchfx/xpath matches an unprefixed name test by local name when the element
		// has no prefix, so this works too (stricter XPath 1.0 engines would not match).
		{name: "default namespace unprefixed (lenient)", spec: Spec{XPath: "//Status"}, resp: xmlResp(defaultNSXML), want: "accepted", found: true},

		{name: "latin-1 declared encoding", spec: Spec{XPath: "//Name"}, resp: xmlResp("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><r><Name>Jos\xe9</Name></r>"), want: "José", found: true},
		{name: "invalid XML", spec: Spec{XPath: "//Status"}, resp: xmlResp("<ValidateResponse><Status>Success</Result>"), err: "response body is not valid XML"},
		{name: "JSON body", spec: Spec{XPath: "//Status"}, resp: xmlResp(seedJSON), err: "response body is not valid XML"},
		{name: "empty body", spec: Spec{XPath: "//Status"}, resp: xmlResp(""), found: false},
		{name: "undeclared prefix in document", spec: Spec{XPath: "//a"}, resp: xmlResp("<a><x:b/></a>"), err: "not valid XML"},
		{name: "runtime type error is an error, not a panic", spec: Spec{XPath: "starts-with(//Status, //Result)"}, resp: seed, err: "evaluating XPath: starts-with() function argument type must be string"},
	})
}

func TestExtractSplit(t *testing.T) {
	text := textResp(seedText)
	runExtractCases(t, []extractCase{
		{name: "status", spec: Spec{Split: "|", Index: 0}, resp: text, want: "SUCCESS", found: true},
		{name: "score", spec: Spec{Split: "|", Index: 1, Type: "number"}, resp: text, want: 85.0, found: true},
		{name: "validation", spec: Spec{Split: "|", Index: 2}, resp: text, want: "VALID", found: true},
		{name: "reference (trailing newline trimmed)", spec: Spec{Split: "|", Index: 3}, resp: text, want: "ABC123", found: true},
		{name: "last", spec: Spec{Split: "|", Index: -1}, resp: text, want: "ABC123", found: true},
		{name: "second to last", spec: Spec{Split: "|", Index: -2}, resp: text, want: "VALID", found: true},
		{name: "first from end", spec: Spec{Split: "|", Index: -4}, resp: text, want: "SUCCESS", found: true},
		{name: "out of range", spec: Spec{Split: "|", Index: 4}, resp: text, found: false},
		{name: "out of range negative", spec: Spec{Split: "|", Index: -5}, resp: text, found: false},
		{name: "no delimiter index 0", spec: Spec{Split: "|"}, resp: textResp("OK"), want: "OK", found: true},
		{name: "empty part", spec: Spec{Split: "|", Index: 1}, resp: textResp("A||C"), want: "", found: true},
		{name: "parts trimmed", spec: Spec{Split: ",", Index: 1}, resp: textResp("a , b , c"), want: "b", found: true},
		{name: "untrimmed", spec: Spec{Split: "|", Index: -1, Trim: ptr(false)}, resp: text, want: "ABC123\n", found: true},
		{name: "multi-byte delimiter", spec: Spec{Split: "::", Index: 1}, resp: textResp("a::b::c"), want: "b", found: true},
		{name: "all", spec: Spec{Split: "|", All: true}, resp: text, want: []any{"SUCCESS", "85", "VALID", "ABC123"}, found: true},
		{name: "coercion error", spec: Spec{Split: "|", Index: 2, Type: "int"}, resp: text, err: `split "|": "VALID" is not an integer`},
	})
}

func TestExtractRegex(t *testing.T) {
	text := textResp(seedRegex)
	runExtractCases(t, []extractCase{
		{name: "default group 1", spec: Spec{Regex: `ID: (\d+)`}, resp: text, want: "12345", found: true},
		{name: "group 1 as int", spec: Spec{Regex: `ID: (\d+)`, Group: "1", Type: "int"}, resp: text, want: int64(12345), found: true},
		{name: "no groups → whole match", spec: Spec{Regex: `ID: \d+`}, resp: text, want: "ID: 12345", found: true},
		{name: "group 0", spec: Spec{Regex: `price: \$(\d+\.\d{2})`, Group: "0"}, resp: text, want: "price: $45.00", found: true},
		{name: "group 2", spec: Spec{Regex: `ID: (\d+) and price: \$(\d+\.\d{2})`, Group: "2", Type: "number"}, resp: text, want: 45.0, found: true},
		{name: "named group", spec: Spec{Regex: `price: \$(?P<price>\d+\.\d{2})`, Group: "price", Type: "number"}, resp: text, want: 45.0, found: true},
		{name: "named group, Perl syntax", spec: Spec{Regex: `ID: (?<id>\d+)`, Group: "id"}, resp: text, want: "12345", found: true},
		{name: "price kept as string", spec: Spec{Regex: `price: \$(?P<price>\d+\.\d{2})`, Group: "price"}, resp: text, want: "45.00", found: true},
		{name: "no match", spec: Spec{Regex: `REJECTED: (\w+)`}, resp: text, found: false},
		{name: "optional group not taking part", spec: Spec{Regex: `ID: \d+( and tier: \w+)?`, Group: "1"}, resp: text, found: false},
		{name: "all", spec: Spec{Regex: `(\d+)`, All: true, Type: "int"}, resp: text, want: []any{int64(12345), int64(45), int64(0)}, found: true},
		{name: "all none", spec: Spec{Regex: `x(\d+)`, All: true}, resp: text, found: false},
		{name: "multiline body", spec: Spec{Regex: `(?m)^status=(\w+)$`}, resp: textResp("id=1\nstatus=ok\n"), want: "ok", found: true},
		{name: "case-insensitive", spec: Spec{Regex: `(?i)lead (\w+)`}, resp: text, want: "accepted", found: true},
		{name: "binary body", spec: Spec{Regex: `ID: (\d+)`}, resp: textResp("\x00\xff\xfeID: 7\x00"), want: "7", found: true},
	})
}

func TestExtractHeaderStatus(t *testing.T) {
	resp := Response{
		Status: 201,
		Header: http.Header{
			"X-Request-Id": {"req-42"},
			"Set-Cookie":   {"a=1", "b=2"},
			"X-Rate-Limit": {" 100 "},
		},
		Body: []byte(seedJSON),
	}
	handMade := Response{Status: 200, Header: http.Header{"x-request-id": {"lower"}}}
	runExtractCases(t, []extractCase{
		{name: "header", spec: Spec{Header: "X-Request-Id"}, resp: resp, want: "req-42", found: true},
		{name: "header canonicalised", spec: Spec{Header: "x-request-id"}, resp: resp, want: "req-42", found: true},
		{name: "header first value", spec: Spec{Header: "set-cookie"}, resp: resp, want: "a=1", found: true},
		{name: "header all", spec: Spec{Header: "Set-Cookie", All: true}, resp: resp, want: []any{"a=1", "b=2"}, found: true},
		{name: "header trimmed and typed", spec: Spec{Header: "X-Rate-Limit", Type: "int"}, resp: resp, want: int64(100), found: true},
		{name: "header missing", spec: Spec{Header: "X-Nope"}, resp: resp, found: false},
		{name: "header nil map", spec: Spec{Header: "X-Nope"}, resp: Response{Status: 200}, found: false},
		{name: "header non-canonical map key", spec: Spec{Header: "X-Request-ID"}, resp: handMade, want: "lower", found: true},
		{name: "status", spec: Spec{Status: true}, resp: resp, want: 201, found: true},
		{name: "status as string", spec: Spec{Status: true, Type: "string"}, resp: resp, want: "201", found: true},
		{name: "status as int64", spec: Spec{Status: true, Type: "int"}, resp: resp, want: int64(201), found: true},
		{name: "status zero", spec: Spec{Status: true}, resp: Response{}, found: false},
	})
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name string
		spec Spec
		ns   Namespaces
		want []string // substrings of the error
	}{
		{"none set", Spec{Type: "number"}, nil, []string{"needs one of json, xpath, split, regex, header, status"}},
		{"two kinds", Spec{JSON: "a", XPath: "//a"}, nil, []string{"sets both json and xpath", "exactly one of"}},
		{"three kinds", Spec{JSON: "a", Regex: "x", Status: true}, nil, []string{"sets json, regex and status"}},
		{"unknown type", Spec{JSON: "a", Type: "integer"}, nil, []string{`unknown type "integer"`, `did you mean "int"`}},
		{"unknown type no hint", Spec{JSON: "a", Type: "date"}, nil, []string{`unknown type "date"`, "use string, number, int or bool"}},
		{"bad regex", Spec{Regex: `ID: (\d+`}, nil, []string{`regex "ID: (\\d+"`, "invalid regular expression", "missing closing )", "RE2"}},
		{"lookahead regex", Spec{Regex: `(?=x)`}, nil, []string{"invalid regular expression", "no lookaround"}},
		{"unknown group name", Spec{Regex: `price: (?P<price>\d+)`, Group: "cost"}, nil, []string{`unknown group name "cost"`, "named groups: price"}},
		{"group name without named groups", Spec{Regex: `(\d+)`, Group: "id"}, nil, []string{`unknown group name "id"`, "(?P<id>...)"}},
		{"group number out of range", Spec{Regex: `ID: (\d+)`, Group: "2"}, nil, []string{"group 2 is out of range", "has 1 group(s)"}},
		{"negative group", Spec{Regex: `ID: (\d+)`, Group: "-1"}, nil, []string{"group -1 is out of range"}},
		{"group without regex", Spec{JSON: "a", Group: "1"}, nil, []string{"group only applies to regex"}},
		{"index without split", Spec{JSON: "a", Index: 2}, nil, []string{"index only applies to split"}},
		{"index with all", Spec{Split: "|", Index: 2, All: true}, nil, []string{"index and all cannot be used together"}},
		{"all with status", Spec{Status: true, All: true}, nil, []string{"all does not apply to status"}},
		{"bad xpath", Spec{XPath: "//Result["}, nil, []string{`xpath "//Result["`, "invalid XPath"}},
		{"bad xpath function", Spec{XPath: "nosuch(//a)"}, nil, []string{"invalid XPath", "nosuch"}},
		{"unclosed xpath string", Spec{XPath: "//a[@b='x]"}, nil, []string{"invalid XPath"}},
		{"xpath variable", Spec{XPath: "$x"}, nil, []string{"invalid XPath"}},
		{"unknown prefix", Spec{XPath: "//soap:Body/x:Result"}, soapNS(), []string{`namespace prefix "x" is not declared`, "declared: soap, v"}},
		{"unknown prefix no namespaces", Spec{XPath: "//v:Result"}, nil, []string{`namespace prefix "v" is not declared`, "declared: none"}},
		{"empty prefix", Spec{XPath: "//Result"}, Namespaces{"": "http://x"}, []string{"empty prefix", "no default namespace"}},
		{"empty URI", Spec{XPath: "//Result"}, Namespaces{"d": ""}, []string{`prefix "d" has an empty URI`}},
		{"bad header name", Spec{Header: "X Request"}, nil, []string{"not a valid header name"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := Compile(tc.spec, tc.ns)
			if err == nil {
				t.Fatalf("Compile succeeded (%s), want error", ex.Kind())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestKinds(t *testing.T) {
	for spec, kind := range map[Spec]string{
		{JSON: "a"}: "json", {XPath: "//a"}: "xpath", {Split: "|"}: "split",
		{Regex: "a"}: "regex", {Header: "A"}: "header", {Status: true}: "status",
	} {
		ex, err := Compile(spec, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ex.Kind() != kind {
			t.Errorf("Kind() = %q, want %q", ex.Kind(), kind)
		}
	}
}

func TestExtractNilDoc(t *testing.T) {
	for _, s := range []Spec{{JSON: "a"}, {XPath: "//a"}, {Split: "|"}, {Regex: "a"}, {Header: "A"}, {Status: true}} {
		ex, _ := Compile(s, nil)
		if _, _, err := ex.Extract(nil); err == nil {
			t.Errorf("%s: Extract(nil) returned no error", ex.Kind())
		}
	}
}

// Compile must not keep a reference to the caller's namespace map.
func TestCompileCopiesNamespaces(t *testing.T) {
	ns := Namespaces{"v": "http://partner.com/leads"}
	ex, err := Compile(Spec{XPath: "//v:Score"}, ns)
	if err != nil {
		t.Fatal(err)
	}
	ns["v"] = "http://changed/"
	v, found, err := ex.Extract(NewDoc(xmlResp(soapXML), Auto))
	if err != nil || !found || v != "85" {
		t.Fatalf("got (%v, %v, %v)", v, found, err)
	}
}
