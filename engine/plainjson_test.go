package engine

import "testing"

// appendJSON writes a string without an encoder (appendJSONString): it must
// be the bytes marshalJSON writes, for every string.
func TestPlainJSONMatchesMarshal(t *testing.T) {
	var cases []string
	for c := 0; c < 256; c++ {
		cases = append(cases, string([]byte{byte(c)}), "a"+string([]byte{byte(c)})+"z")
	}
	cases = append(cases, "", "ann@example.com", "<b>&amp;</b>", `say "hi"`, `back\slash`, "é", "\u2028", "\u2029x", "line\nbreak", "(512) 555-0100",
		"bad \xff\xfe utf8", "\xe2\x80", "tab\there", "\x7f", "日本語", "\U0001F600")
	for _, s := range cases {
		want, err := marshalJSON(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Errorf("appendJSONString(%q) = %s, marshalJSON writes %s", s, got, want)
		}
	}
}
