package leadjson

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// leadSeeds are leads and near-leads for the comparison with encoding/json.
var leadSeeds = []string{
	`{"a": 1}`, `{}`, ` {"a":[1,2,{"b":null}],"c":{"d":[]},"e":true,"f":false} `,
	`{"big": 12345678901234567890, "f": -1.5e-300, "z": -0, "e": 1E+2}`,
	`{"a": 1, "a": "twice"}`, `{"a": {"x": 1}, "a": {"y": 2}}`,
	`{"s": "\u00e9\ud83d\ude00\n\t\"\\\/\b\f\r"}`, `{"lone": "\ud800", "low": "\udc00x", "pair": "\ud800\u0041"}`,
	"{\"bad\": \"\xff\xfe\", \"k\xc3\": 1}", "{\"mixed\": \"a\xe2\x82\\n\"}",
	`{"a": 1} }`, `{"a": 1} ]`, `{"a": 1} {"b": 2}`, `{"a": 1} x`, `null`, `"s"`, `12`, `[1]`, `true`,
	``, `   `, `{"a": }`, `{"a": 01}`, `{"a": 1.}`, `{"a": .5}`, `{"a": +1}`, `{'a': 1}`, `{"a": 1,}`,
	`{"a": [1,]}`, "{\"a\": \"x\ty\"}", `{"a": "\x"}`, `{"a": "\u12"}`, `{"a": tru}`, `{"a": nul}`,
	`{"a"  :  1  ,  "b"  :  2}`, "\xef\xbb\xbf{\"a\": 1}", "\xef\xbb\xbf\xef\xbb\xbf{}",
	`{"a": 1}` + "\n\n", `{"a":"` + strings.Repeat("x", 300) + `"}`,
	`{"a": "]]]]", "b": "\"[[[["}`, "{\"a\": 1}\x00", `{"a":1}/**/`,
}

// Decode gives what encoding/json's Decoder with UseNumber gives,
// value for value and error for error.
func TestDecodeAsEncodingJSON(t *testing.T) {
	deep := func(n int) string { return `{"a": ` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}` }
	// nesting: encoding/json refuses more than 10,000 levels (not in the
	// fuzz seeds: large inputs slow every mutation of them)
	for _, s := range append(leadSeeds, deep(9999), deep(10000), deep(10001), `{"a": `+strings.Repeat(`{"b":`, 10001),
		`{"x": "\\\"]]]", "a": `+strings.Repeat("[", 10001)+strings.Repeat("]", 10001)+`}`) {
		checkDecode(t, []byte(s))
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range leadSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecode(t, b) })
}

func checkDecode(t *testing.T, b []byte) {
	t.Helper()
	got, err := Decode(b)
	want, werr := decodeStd(bytes.TrimPrefix(b, bom))
	if (err == nil) != (werr == nil) {
		t.Fatalf("%q: error %v, encoding/json's %v", b, err, werr)
	}
	if err != nil {
		if err.Error() != werr.Error() {
			t.Fatalf("%q: error %v, encoding/json's %v", b, err, werr)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got %#v\nwant %#v", b, got, want)
	}
}
