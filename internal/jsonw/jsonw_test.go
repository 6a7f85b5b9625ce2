package jsonw

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// stringCases are every byte alone and inside text, and the strings whose
// escaping differs between encoders: quotes, backslashes, HTML, control
// characters, U+2028/U+2029, invalid and multi-byte UTF-8.
func stringCases() []string {
	var cases []string
	for c := 0; c < 256; c++ {
		cases = append(cases, string([]byte{byte(c)}), "a"+string([]byte{byte(c)})+"z")
	}
	return append(cases, "", "ann@example.com", "<b>&amp;</b>", `say "hi"`, `back\slash`, "é", "\u2028", "\u2029x", "line\nbreak", "(512) 555-0100",
		"bad \xff\xfe utf8", "\xe2\x80", "tab\there", "\x7f", "日本語", "\U0001F600", "\b\f")
}

// AppendString writes the bytes Marshal (encoding/json) writes, for every
// string.
func TestAppendStringMatchesMarshal(t *testing.T) {
	for _, s := range stringCases() {
		want, err := Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Errorf("AppendString(%q) = %s, Marshal writes %s", s, got, want)
		}
	}
}

// Marshal is encoding/json without HTML escaping and without a newline.
func TestMarshalKeepsHTML(t *testing.T) {
	got, err := Marshal(map[string]string{"a": "<b>&</b>"})
	if err != nil || string(got) != `{"a":"<b>&</b>"}` {
		t.Fatalf("Marshal = %s, %v", got, err)
	}
}

// AppendValue writes what Marshal writes for decoded JSON values, nested,
// and fails as Marshal fails.
func TestAppendValueMatchesMarshal(t *testing.T) {
	values := []any{nil, true, false, 0.0, math.Copysign(0, -1), 1.5, 1e21, 1e-7, 123456789.0, -2.5e-300, math.MaxFloat64,
		json.Number("12.50"), json.Number(""), json.Number("-0.1e+5"), 7, int64(-8),
		[]any{}, []any(nil), map[string]any{}, map[string]any(nil),
		map[string]any{"z": 1.0, "a": []any{"x", nil, map[string]any{"<k>": "v\u2028"}}, "m": json.Number("3")},
		struct {
			A string `json:"a"`
		}{"<&>"}, []string{"a"}, time.Duration(5)}
	for _, s := range stringCases() {
		values = append(values, s, map[string]any{s: s})
	}
	for _, v := range values {
		want, wantErr := Marshal(v)
		got, err := AppendValue([]byte("p"), v)
		if wantErr != nil || err != nil {
			t.Fatalf("%#v: AppendValue error %v, Marshal error %v", v, err, wantErr)
		}
		if string(got) != "p"+string(want) {
			t.Errorf("AppendValue(%#v) = %s, Marshal writes p%s", v, got, want)
		}
	}
	for _, bad := range []any{math.NaN(), math.Inf(-1), json.Number("1."), json.Number("x"), []any{math.Inf(1)},
		map[string]any{"a": json.Number("01")}, func() {}} {
		_, wantErr := Marshal(bad)
		got, err := AppendValue([]byte("p"), bad)
		if wantErr == nil || err == nil || err.Error() != wantErr.Error() || got != nil {
			t.Errorf("AppendValue(%#v) = %q, %v; Marshal fails with %v", bad, got, err, wantErr)
		}
	}
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	if _, err := AppendValue(nil, cyclic); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("a map holding itself: %v, want encoding/json's cycle error", err)
	}
}

// AppendStrings, AppendMillis and AppendTime write what encoding/json
// writes for a []string, a float of milliseconds with three decimals and a
// time.Time.
func TestAppendListsTimesAndMillis(t *testing.T) {
	for _, list := range [][]string{nil, {}, {"a", "<b>", "\xff"}} {
		want, _ := Marshal(list)
		if got := AppendStrings(nil, list); string(got) != string(want) {
			t.Errorf("AppendStrings(%q) = %s, want %s", list, got, want)
		}
	}
	for d, want := range map[time.Duration]string{0: "0.000", 1500 * time.Microsecond: "1.500", 1: "0.000", 2*time.Hour + 7: "7200000.000", -3 * time.Millisecond: "-3.000"} {
		if got := AppendMillis(nil, d); string(got) != want {
			t.Errorf("AppendMillis(%v) = %s, want %s", d, got, want)
		}
	}
	zones := []*time.Location{time.UTC, time.FixedZone("x", -(5*3600 + 30*60)), time.FixedZone("y", 14*3600)}
	for _, tm := range []time.Time{{}, time.Date(2026, 12, 7, 19, 30, 0, 123456789, zones[1]), time.Date(1, 1, 1, 0, 0, 0, 1, zones[2]),
		time.Date(9999, 12, 31, 23, 59, 59, 0, zones[0]), time.Unix(1<<33, 0).In(zones[1])} {
		want, _ := json.Marshal(tm)
		if got, err := AppendTime([]byte("p"), tm); err != nil || string(got) != "p"+string(want) {
			t.Errorf("AppendTime(%v) = %s, %v; want p%s", tm, got, err, want)
		}
	}
	for _, tm := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("z", 24*3600))} {
		_, wantErr := tm.MarshalJSON()
		if got, err := AppendTime([]byte("p"), tm); wantErr == nil || err == nil || err.Error() != wantErr.Error() || got != nil {
			t.Errorf("AppendTime(%v) = %q, %v; MarshalJSON fails with %v", tm, got, err, wantErr)
		}
	}
}

// AppendMillis writes what strconv writes for d/1e6 with three decimals,
// for every duration: ties, negatives and durations beyond 2^53 ns too.
func TestAppendMillisMatchesStrconv(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	check := func(d time.Duration) {
		want := strconv.AppendFloat(nil, float64(d)/1e6, 'f', 3, 64)
		if got := AppendMillis(nil, d); string(got) != string(want) {
			t.Fatalf("AppendMillis(%d) = %s, strconv writes %s", int64(d), got, want)
		}
	}
	for _, d := range []time.Duration{0, 1, 499, 500, 501, 999, 1000, 1499, 1500, 1501, 999_499, 999_500, 999_999, 1_000_000,
		1<<50 - 1, 1<<50 - 501, 1 << 50, 1<<53 - 1, 1 << 53, 1<<53 + 1, math.MaxInt64, -1, -500, -1500, math.MinInt64} {
		check(d)
	}
	for range 200_000 {
		check(time.Duration(r.Int64N(int64(10 * time.Hour))))
		check(time.Duration(r.Int64N(1 << 50)))
		check(time.Duration(r.Int64N(1000))*1000 + 500) // a tie
		check(time.Duration(r.Int64()))
	}
}

// FuzzAppendString: any string is written as Marshal writes it.
func FuzzAppendString(f *testing.F) {
	for _, s := range stringCases() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Fatalf("AppendString(%q) = %s, Marshal writes %s", s, got, want)
		}
	})
}
