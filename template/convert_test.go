package template

import "testing"

func TestConversions(t *testing.T) {
	for in, want := range map[any]bool{"true": true, " YES ": true, "y": true, "On": true, "1": true, "false": false, "No": false, "off": false, "0": false, true: true, 0.0: false, 2.0: true} {
		if got, err := ToBool(in); err != nil || got != want {
			t.Errorf("ToBool(%#v) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []any{"", "maybe", nil, []any{}} {
		if _, err := ToBool(bad); err == nil {
			t.Errorf("ToBool(%#v) accepted", bad)
		}
	}
	for in, want := range map[any]int64{"42": 42, " -7 ": -7, "42.0": 42, 3.0: 3, "+3": 3} {
		if got, err := ToInt(in); err != nil || got != want {
			t.Errorf("ToInt(%#v) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []any{"4.5", "x", "", nil, 1e300} {
		if _, err := ToInt(bad); err == nil {
			t.Errorf("ToInt(%#v) accepted", bad)
		}
	}
	if f, err := ToFloat(" 1e3 "); err != nil || f != 1000 {
		t.Errorf("ToFloat: %v %v", f, err)
	}
	s := New()
	tm, err := s.Compile("t", `{{ toBool lead.v }}`, Plain)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := tm.Value(map[string]any{"lead": map[string]any{"v": "yes"}}); err != nil || v != true {
		t.Errorf("template toBool: %#v %v", v, err)
	}
}
