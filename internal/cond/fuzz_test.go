package cond

import (
	"errors"
	"testing"
)

// FuzzCond: any source compiles or fails with a positioned *Error; a
// compiled condition evaluates to a bool or an error on any data, without
// panicking.
func FuzzCond(f *testing.F) {
	for _, s := range []string{
		`lead.email != ""`, "lead.value > 100", `lead.state in ["CA", "TX"]`, `lead.email endsWith ".gov"`,
		`captured.status == "ERROR" && response.status == 200`, "1", "nil", "lead", "lead.x ?? true",
		"steps.a.b.c == 1", "len(lead.l) > 2", "lead.n / 0 > 1", `lead.s matches "(a+)+$"`, "(", "lead.", "foo",
		`all(lead.l, # > 1)`, "true ? lead.a : lead.b", `lead["a b"] == nil`, "\n\nlead.x ==",
	} {
		f.Add(s, "x", 2.5)
	}
	envs := func(s string, n float64) []map[string]any {
		return []map[string]any{
			nil,
			{},
			{"lead": map[string]any{"email": s, "value": n, "state": s, "l": []any{n, s}, "s": s, "n": n, "x": nil}},
			{"lead": s, "captured": n, "response": []any{s}, "steps": map[string]any{"a": map[string]any{"b": s}}},
		}
	}
	f.Fuzz(func(t *testing.T, src, s string, n float64) {
		p, err := Compile(src)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Line < 1 || e.Msg == "" {
				t.Fatalf("Compile(%q) = %#v, want *Error with a line", src, err)
			}
			return
		}
		for _, env := range envs(s, n) {
			_, _ = p.Eval(env)
		}
		_ = p.Refs()
	})
}
