package steps

import (
	"runtime"
	"strings"
	"testing"
)

// billionLaughs is a json body of nine levels of nine aliases: 9^9 (387
// million) nodes once expanded, from about 500 bytes.
func billionLaughs() string {
	var b strings.Builder
	b.WriteString("version: 1\nname: bomb\nsteps:\n  - name: s\n    request:\n      url: https://x.example/\n      body:\n        json:\n")
	b.WriteString(`          a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]` + "\n")
	prev := "a"
	for _, c := range "bcdefghi" {
		name := string(c)
		b.WriteString("          " + name + ": &" + name + " [" + strings.TrimSuffix(strings.Repeat("*"+prev+",", 9), ",") + "]\n")
		prev = name
	}
	return b.String()
}

// Issue 13: a YAML alias bomb in a structured value (body: json) must be a
// positioned load error, found without expanding it.
func TestAliasBombIsLoadError(t *testing.T) {
	src := billionLaughs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := parse("bomb.yaml", []byte(src))
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("Parse accepted an alias bomb")
	}
	if !strings.Contains(err.Error(), "bomb.yaml:") || !strings.Contains(err.Error(), "YAML aliases expand to more than 100000 nodes") {
		t.Errorf("error = %v", err)
	}
	el := err.(ErrorList)
	if len(el) != 1 || el[0].Pos.Line < 9 || el[0].Pos.Col == 0 || el[0].Hint == "" {
		t.Errorf("error %#v: want one positioned error on an alias line with a hint", el)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 16<<20 {
		t.Errorf("Parse allocated %d MiB", n>>20)
	}
}

func TestAliasesWithinBoundAreFine(t *testing.T) {
	src := good + `
vars:
  shared: &h { a: "{{lead.a}}", b: [1, 2, 3] }
  again: *h
  more: [*h, *h, *h]
`
	if _, err := parse("ok.yaml", []byte(src)); err != nil {
		t.Fatal(err)
	}
}

func TestSelfReferringAlias(t *testing.T) {
	src := good + "vars:\n  loop: &l [1, *l]\n"
	_, err := parse("loop.yaml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "loop.yaml:") {
		t.Fatalf("err = %v, want a positioned error", err)
	}
}

func TestBombSize(t *testing.T) {
	body := billionLaughs()[strings.Index(billionLaughs(), "a: &a"):]
	if len(body) > 600 {
		t.Errorf("bomb is %d bytes", len(body))
	}
}
