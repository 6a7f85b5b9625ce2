package template_test

import (
	"errors"
	"testing"

	"github.com/plumbhq/plumb/template"
)

// A misspelt data root gets the same message with or without the leading
// dot, at the name; an unknown function stays an unknown function.
func TestMisspeltRootSaysSo(t *testing.T) {
	s := newSet()
	const root = `unknown data root "laed" (want one of lead, settings, vars, steps, captured, response, batch, state, page)`
	for _, tt := range []struct {
		src, msg  string
		line, col int
	}{
		{`{{laed.email}}`, root, 1, 3},
		{`{{ .laed.email }}`, root, 1, 4},
		{"x\n  {{ lower laed.email }}", root, 2, 12},
		{`{{ lead.laed.x | laed.y }}`, root, 1, 18}, // the root, not a field of that name
		{`{{ laed }}`, `function "laed" not defined`, 1, 0},
		{`{{ lead.x | nosuch }}`, `function "nosuch" not defined`, 1, 0},
		{`{{ nosuch lead.x }}`, `function "nosuch" not defined`, 1, 0},
	} {
		_, err := s.Compile("t", tt.src, template.Plain)
		var te *template.Error
		if !errors.As(err, &te) {
			t.Fatalf("Compile(%q) = %v", tt.src, err)
		}
		if te.Msg != tt.msg || te.Line != tt.line || te.Col != tt.col {
			t.Errorf("Compile(%q) = %d:%d %s, want %d:%d %s", tt.src, te.Line, te.Col, te.Msg, tt.line, tt.col, tt.msg)
		}
	}
}
