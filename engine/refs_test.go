package engine

import (
	"strings"
	"testing"
)

// TestVarsRefs: a template reads the integration's vars, its own step's
// and those of steps that run before it; a var of a later step, of a
// sibling in the same parallel group, or of no one is an unknown var at
// load, at its place.
func TestVarsRefs(t *testing.T) {
	src := `version: 1
name: refs
settings: { base_url: {} }
vars: { top: "1" }
steps:
  - name: first
    vars: { mine: "{{vars.top}}" }
    request: { url: "{{settings.base_url}}/{{vars.mine}}" }
  - parallel:
      - name: left
        vars: { l: "{{vars.mine}}" }
        request: { url: "{{settings.base_url}}/{{vars.r}}" }
      - name: right
        vars: { r: "{{vars.l}}" }
        request: { url: "{{settings.base_url}}/x" }
  - name: last
    vars: { z: "{{vars.l}}{{vars.r}}" }
    request: { url: "{{settings.base_url}}/{{vars.later}}{{vars.nobody}}" }
  - name: after
    vars: { later: "2" }
    request: { url: "{{settings.base_url}}/{{vars.z}}" }
`
	_, err := Parse("refs.yaml", []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		`refs.yaml:12:25: unknown var "r"`,
		`refs.yaml:14:20: unknown var "l"`,
		`refs.yaml:18:21: unknown var "later"`,
		`refs.yaml:18:21: unknown var "nobody"`,
		"declare it under vars: (the integration's, this step's or an earlier step's)",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	if n := strings.Count(msg, "unknown var"); n != 4 {
		t.Errorf("%d unknown vars, want 4 (top, mine, l and r read after the group, z are declared in time):\n%s", n, msg)
	}
}

// TestVarsReadInOrder: vars are set in the order they are written, so a
// value that reads a var set after it, or itself, is a load error at the
// reading value (the runtime would say "vars.b is missing" for every
// lead); a step's var may read the integration's or an earlier step's
// var of the same name, which is set before it.
func TestVarsReadInOrder(t *testing.T) {
	src := `version: 1
name: order
settings: { base_url: {} }
vars: { a: "{{ vars.b }}", b: "x", c: "{{ vars.c }}", d: "{{ vars.b }}" }
steps:
  - name: first
    vars: { e: "{{ vars.f }}", f: "{{ vars.a }}", g: "{{ vars.g }}", b: "{{ vars.b }}" }
    request: { url: "{{settings.base_url}}/{{vars.e}}" }
  - name: second
    vars: { h: "{{ vars.f }}", f: "{{ vars.f }}-again" }
    request: { url: "{{settings.base_url}}/x" }
`
	_, err := Parse("order.yaml", []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		`order.yaml:4:12: var "a" reads var "b", which is set after it (vars are set in the order they are written: move b above a)`,
		`order.yaml:4:39: var "c" reads itself (`,
		`order.yaml:7:16: var "e" reads var "f", which is set after it (`,
		`order.yaml:7:54: var "g" reads itself (`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	if n := strings.Count(msg, "\n") + 1; n != 4 {
		t.Errorf("%d problems, want 4 (d, f, b of first, h and f of second read vars set before them):\n%s", n, msg)
	}
}
