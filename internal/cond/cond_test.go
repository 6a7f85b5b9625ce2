package cond

import (
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestEval(t *testing.T) {
	env := map[string]any{
		"lead":     map[string]any{"value": 150.0, "state": "TX", "email": "a@agency.gov"},
		"captured": map[string]any{"blacklisted": true},
		"steps":    map[string]any{"auth": map[string]any{"token": "t"}},
	}
	cases := []struct {
		src  string
		want bool
	}{
		{`lead.value > 100`, true},
		{`lead.value > 200`, false},
		{`lead.state in ["CA", "TX"]`, true},
		{`lead.state in ["CA", "NY"]`, false},
		{`lead.email endsWith ".gov"`, true},
		{`captured.blacklisted == true`, true},
		{`lead.missing == nil`, true},
		{`lead.phone != ""`, false},
		{`lead.phone == ""`, true},
		{`"" == lead.phone`, true},
		{`lead.email != ""`, true},
		{`lead.state == ""`, false},
		{`steps.auth.token != ""`, true},
		{`settings.x == nil`, true},
	}
	for _, c := range cases {
		p, err := Compile(c.src)
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		got, err := p.Eval(env)
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		if got != c.want {
			t.Errorf("%s = %v, want %v", c.src, got, c.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		src       string
		line, col int
		msg       string
	}{
		{`lead.value >`, 1, 12, "unexpected token"},
		{`lead.value == = 3`, 1, 15, "unexpected token"},
		{`foo.bar == 1`, 1, 1, "unknown name foo"},
		{"lead.a == 1 &&\n  (lead.b ==", 2, 0, ""},
		{`  `, 1, 1, "empty"},
	}
	for _, c := range cases {
		_, err := Compile(c.src)
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatalf("%q: err = %v, want *Error", c.src, err)
		}
		if ce.Line != c.line || (c.col != 0 && ce.Col != c.col) {
			t.Errorf("%q: at %d:%d, want %d:%d (%s)", c.src, ce.Line, ce.Col, c.line, c.col, ce.Msg)
		}
		if !strings.Contains(ce.Msg, c.msg) {
			t.Errorf("%q: msg %q does not mention %q", c.src, ce.Msg, c.msg)
		}
	}
}

func TestEvalErrorNamesCondition(t *testing.T) {
	p, err := Compile(`lead.value > 100`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Eval(map[string]any{"lead": map[string]any{"value": "abc"}})
	if err == nil || !strings.Contains(err.Error(), "lead.value > 100") {
		t.Fatalf("err = %v", err)
	}
}

func TestRefs(t *testing.T) {
	p, err := Compile(`steps.auth.token != "" && lead.state in ["CA"] && steps.score.value > lead.min`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"steps.auth.token", "lead.state", "steps.score.value", "lead.min"}
	if got := p.Refs(); !reflect.DeepEqual(sorted(got), sorted(want)) {
		t.Fatalf("refs = %v, want %v", got, want)
	}
}

func sorted(s []string) []string {
	c := append([]string(nil), s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c
}

func TestConcurrentEval(t *testing.T) {
	p, err := Compile(`lead.n % 2 == 0`)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := p.Eval(map[string]any{"lead": map[string]any{"n": i}})
			if err != nil || got != (i%2 == 0) {
				t.Errorf("n=%d: %v %v", i, got, err)
			}
		}()
	}
	wg.Wait()
}

func TestNonBoolResultIsError(t *testing.T) {
	// a number is not a condition. Its type is known only with the data,
	// so Compile accepts it and Eval must report it; should Compile start
	// rejecting it, that must be a positioned error (never a skip)
	p, err := Compile(`lead.value + 1`)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) || e.Line != 1 || !strings.Contains(e.Msg, "true or false") {
			t.Fatalf("rejected at compile time without a positioned error: %#v", err)
		}
		return
	}
	if _, err := p.Eval(map[string]any{"lead": map[string]any{"value": 1}}); err == nil {
		t.Fatal("a number result was taken as a condition")
	}
}

// BenchmarkEval evaluates a condition the way the engine does after a
// response: with some roots (response, batch) absent from the data.
func BenchmarkEval(b *testing.B) {
	p, err := Compile(`captured.valid == false && lead.email != ""`)
	if err != nil {
		b.Fatal(err)
	}
	env := map[string]any{"lead": map[string]any{"email": "a@b.example"}, "settings": map[string]any{},
		"vars": map[string]any{}, "steps": map[string]any{}, "captured": map[string]any{"valid": true}}
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := p.Eval(env); err != nil || ok {
			b.Fatal(ok, err)
		}
	}
}

// Issue 13: a condition that is a literal of another type (when: 1) is a
// compile error with a position.
func TestNonBoolLiteralIsPositionedError(t *testing.T) {
	for _, src := range []string{"1", "0.5", `"abc"`, "nil", "[1]", "lead", "  1 + 1"} {
		_, err := Compile(src)
		var e *Error
		if !errors.As(err, &e) || e.Line != 1 || e.Col == 0 || !strings.Contains(e.Msg, "true or false") {
			t.Errorf("Compile(%q) = %#v, want a positioned *Error", src, err)
		}
	}
}

// Issue 25: `when: lead.x` compiled, then failed for every lead whose x is
// a string (every CSV lead). A value whose type is only known at run time,
// where a condition needs true or false, is a compile error at the value,
// with a hint saying how to compare it.
func TestValueIsNotACondition(t *testing.T) {
	for _, c := range []struct {
		src       string
		line, col int
		what      string
	}{
		{"lead.x", 1, 1, "lead.x"},
		{"  lead.x.y", 1, 3, "lead.x.y"},
		{"captured.ok", 1, 1, "captured.ok"},
		{`lead.a == 1 && lead.x`, 1, 16, "lead.x"},
		{`lead.a == 1 or steps.s.ok`, 1, 16, "steps.s.ok"},
		{"not lead.vip", 1, 5, "lead.vip"},
		{"!vars.flag", 1, 2, "vars.flag"},
		{"lead.x ?? false", 1, 1, "(lead.x ?? false)"},
		{"lead.a ? true : false", 1, 1, "lead.a"},
		{"lead.a == 1 ?\n  lead.b : false", 2, 3, "lead.b"},
		{"all(lead.items, .ok)", 1, 17, ".ok"},
		{"len(filter(lead.items, .ok)) > 0", 1, 24, ".ok"},
		{"lead.l[0]", 1, 1, "lead.l[0]"},
		{"lead.x?.y", 1, 1, "lead.x?.y"},
		{`get(lead, "x")`, 1, 1, `get(lead, "x")`},
		{"lead.value + 1", 1, 1, "(lead.value + 1)"},
	} {
		_, err := Compile(c.src)
		var e *Error
		if !errors.As(err, &e) || e.Line != c.line || e.Col != c.col || !strings.HasPrefix(e.Msg, c.what+" is a value, not a condition") ||
			!strings.Contains(e.Hint, c.what+" == true") || !strings.Contains(e.Hint, c.what+` != ""`) {
			t.Errorf("Compile(%q) = %#v, want an error at %d:%d about %s with a hint", c.src, err, c.line, c.col, c.what)
		}
	}
	// Comparisons, operators and functions with a known boolean result are
	// conditions; so are the literals.
	for _, src := range []string{
		"lead.x == true", `lead.x != ""`, "captured.ok == false", "all(lead.items, .ok == true)", `lead.a in ["x"]`,
		`lead.email endsWith ".gov"`, "!(lead.x == 1)", "true", "false", "len(lead.l) > 0", `(lead.x ?? "") != ""`,
		`lead.a == 1 ? lead.b == 2 : false`, `lead.s matches "^a"`, "lead.n > 1 && not (lead.m < 2)",
	} {
		if _, err := Compile(src); err != nil {
			t.Errorf("Compile(%q) = %v, want nil", src, err)
		}
	}
}

// A root the caller did not give reads as an empty object, whether the
// expression names it or reaches it through $env; the roots it names are
// all Eval puts in its environment.
func TestMissingRoots(t *testing.T) {
	for _, src := range []string{
		`lead.x == nil && vars.y == nil`,
		`batch.size == nil`,
		`$env.page.next == nil`,
		`captured.ok == true || state.cursor == nil`,
	} {
		p, err := Compile(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		ok, err := p.Eval(map[string]any{"captured": map[string]any{"ok": false}})
		if err != nil || !ok {
			t.Errorf("%s: %v, %v", src, ok, err)
		}
	}
	p, _ := Compile(`captured.ok == true`)
	if got := p.roots; len(got) != 1 || got[0] != "captured" {
		t.Errorf("roots of captured.ok == true: %v", got)
	}
}
