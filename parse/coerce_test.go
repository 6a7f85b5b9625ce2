package parse

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestCoerce(t *testing.T) {
	cases := []struct {
		in   any
		typ  string
		want any
		err  string
	}{
		{"abc", "", "abc", ""},
		{nil, "number", nil, ""},
		{nil, "int", nil, ""},
		{nil, "bool", nil, ""},
		{nil, "string", nil, ""},

		{85.0, "number", 85.0, ""},
		{"45.00", "number", 45.0, ""},
		{" 85 \n", "number", 85.0, ""},
		{"-1.5e3", "number", -1500.0, ""},
		{int64(7), "number", 7.0, ""},
		{201, "number", 201.0, ""},
		{uint64(3), "number", 3.0, ""},
		{json.Number("2.5"), "number", 2.5, ""},
		{"abc", "number", nil, `"abc" is not a number`},
		{"", "number", nil, `"" is not a number`},
		{"NaN", "number", nil, `"NaN" is not a number`},
		{"Inf", "number", nil, `"Inf" is not a number`},
		{"0x1F", "number", nil, `"0x1F" is not a number`},
		{"1_000", "number", nil, `"1_000" is not a number`},
		{"$45.00", "number", nil, `"$45.00" is not a number`},
		{"1e400", "number", nil, `"1e400" is out of range for a number`},
		{true, "number", nil, "true is not a number"},
		{map[string]any{}, "number", nil, "an object is not a number"},
		{[]any{1.0}, "number", nil, "an array is not a number"},
		{math.NaN(), "number", nil, "NaN is not a number"},

		{85.0, "int", int64(85), ""},
		{"12345", "int", int64(12345), ""},
		{" -7 ", "int", int64(-7), ""},
		{"45.0", "int", int64(45), ""},
		{"9007199254740993", "int", int64(9007199254740993), ""},
		{201, "int", int64(201), ""},
		{uint64(math.MaxUint64), "int", nil, "out of range for an int"},
		{"45.50", "int", nil, `"45.50" is not an integer`},
		{45.5, "int", nil, "45.5 is not an integer"},
		{1e19, "int", nil, "out of range for an int"},
		{"99999999999999999999", "int", nil, `"99999999999999999999" is out of range for an int`},
		{"twelve", "int", nil, `"twelve" is not an integer`},
		{false, "int", nil, "false is not an integer"},

		{true, "bool", true, ""},
		{"TRUE", "bool", true, ""},
		{" yes ", "bool", true, ""},
		{"Y", "bool", true, ""},
		{"1", "bool", true, ""},
		{"false", "bool", false, ""},
		{"No", "bool", false, ""},
		{"n", "bool", false, ""},
		{"0", "bool", false, ""},
		{1.0, "bool", true, ""},
		{0.0, "bool", false, ""},
		{int64(1), "bool", true, ""},
		{2.0, "bool", nil, "2 is not a boolean"},
		{"maybe", "bool", nil, `"maybe" is not a boolean (use true/false, yes/no, y/n or 1/0)`},
		{"", "bool", nil, `"" is not a boolean`},

		{"x", "string", "x", ""},
		{85.0, "string", "85", ""},
		{0.234, "string", "0.234", ""},
		{1e21, "string", "1000000000000000000000", ""},
		{1e-7, "string", "0.0000001", ""},
		{int64(-3), "string", "-3", ""},
		{201, "string", "201", ""},
		{true, "string", "true", ""},
		{map[string]any{"a": 1.0}, "string", `{"a":1}`, ""},
		{[]any{"a", 2.0}, "string", `["a",2]`, ""},

		{"x", "integer", nil, `unknown type "integer" (did you mean "int"?)`},
		{nil, "float", nil, `unknown type "float" (did you mean "number"?)`},
		{"x", "Boolean", nil, `did you mean "bool"?`},
	}
	for _, tc := range cases {
		got, err := Coerce(tc.in, tc.typ)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Coerce(%#v, %q) error = %v, want %q", tc.in, tc.typ, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Coerce(%#v, %q) = %#v (%T), %v; want %#v (%T)", tc.in, tc.typ, got, got, err, tc.want, tc.want)
		}
	}
}

func TestCoerceErrorQuotesAtMost64Bytes(t *testing.T) {
	long := strings.Repeat("x", 10_000)
	_, err := Coerce(long, "number")
	if err == nil {
		t.Fatal("want error")
	}
	want := `"` + strings.Repeat("x", 64) + `"... (10000 bytes) is not a number`
	if err.Error() != want {
		t.Fatalf("error = %q, want %q", err, want)
	}
	// Multi-byte: the cut must stay on a rune boundary.
	_, err = Coerce(strings.Repeat("€", 40), "int")
	if err == nil || strings.Contains(err.Error(), `\x`) {
		t.Fatalf("error = %v", err)
	}
}

// Issue 13: an object coerced to a string keeps < > & as they are.
func TestCoerceStringNoHTMLEscaping(t *testing.T) {
	v, err := Coerce(map[string]any{"a": "<b>&</b>", "l": []any{"<"}}, TypeString)
	if err != nil || v != `{"a":"<b>&</b>","l":["<"]}` {
		t.Errorf("Coerce = %v, %v", v, err)
	}
}
