package engine

import "testing"

// appendJSON writes a plain string without an encoder: it must be the
// bytes marshalJSON writes, for every string plainJSON lets through.
func TestPlainJSONMatchesMarshal(t *testing.T) {
	var cases []string
	for c := 0; c < 256; c++ {
		cases = append(cases, string([]byte{byte(c)}), "a"+string([]byte{byte(c)})+"z")
	}
	cases = append(cases, "", "ann@example.com", "<b>&amp;</b>", `say "hi"`, `back\slash`, "é", "\u2028", "line\nbreak", "(512) 555-0100")
	for _, s := range cases {
		want, err := marshalJSON(s)
		if err != nil {
			t.Fatal(err)
		}
		if plainJSON(s) && `"`+s+`"` != string(want) {
			t.Errorf("plainJSON(%q) but marshalJSON writes %s", s, want)
		}
	}
}
