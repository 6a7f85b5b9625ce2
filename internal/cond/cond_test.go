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
