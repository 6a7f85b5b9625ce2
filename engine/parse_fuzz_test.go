package engine

import (
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/plumbhq/plumb/steps"
)

// FuzzParse: compiling is the only pass after decoding, so any input either
// compiles or fails with an ErrorList whose every problem names the file
// and is reported once; a half-decoded model never panics the compiler
// (Parse has no recover).
func FuzzParse(f *testing.F) {
	const head = "version: 1\nname: f\n"
	for _, s := range []string{
		"", "---\n---\n", head,
		head + "steps:\n  - name: a\n    request: { url: \"{{lead.a\" }\n",
		head + "steps:\n  - name: a\n    request: { url: 7 }\n    capture: { x: { path: \"[\", type: nope } }\n",
		head + "steps:\n  - name: a\n    when: \"lead.a ==\"\n    request: { url: \"https://x\", method: FETCH }\n",
		head + "steps:\n  - name: a\n    request: { url: \"https://x\" }\n    retry: { max_attempts: -1, on: [{ status: 9999, action: nope }] }\n",
		head + "steps:\n  - name: a\n    request: { url: \"https://x\" }\n    fallback: [b]\n  - name: a\n    request: 3\n",
		head + "settings:\n  n: { type: number, default: abc }\nauth: { type: oauth2 }\nsteps:\n  - when: 1\n    request: { url: file:///x }\n",
		head + "source:\n  request: { url: \"https://x\" }\n  paginate: { type: cursor }\nsteps: []\n",
		head + "webhook:\n  path: /run\n  verify: { preset: nope }\nsteps: [{ name: a, request: { url: \"https://x\" } }]\n",
		head + "steps:\n  - name: a\n    request: { url: \"https://x\" }\n    outcome: { success: \"{{\", reason: \"{{.x\" }\n",
		head + "steps:\n  - name: a\n    request: { url: \"https://x\", xml: \"<a>{{lead.x}}\" }\n    capture: { x: { xpath: \"//[\" } }\n",
		head + "steps:\n  -\n  - name: b\n    request:\n",
	} {
		f.Add([]byte(s))
	}
	files, _ := filepath.Glob("../examples/*/*.yaml")
	for _, p := range files {
		if src, err := os.ReadFile(p); err == nil && len(src) < 16<<10 {
			f.Add(src)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		plan, err := Parse("f.yaml", src)
		if err == nil {
			if plan == nil {
				t.Fatal("nil plan without error")
			}
			return
		}
		var list steps.ErrorList
		if !errors.As(err, &list) || len(list) == 0 {
			t.Fatalf("error %T %v, want a non-empty ErrorList", err, err)
		}
		seen := map[string]bool{}
		for _, e := range list {
			msg := e.Error()
			if e.Pos.File != "f.yaml" || !strings.HasPrefix(msg, "f.yaml") {
				t.Fatalf("problem without the file: %q", msg)
			}
			if seen[msg] {
				t.Fatalf("problem reported twice: %q\nall: %v", msg, list)
			}
			seen[msg] = true
		}
	})
}

// TestParseBrokenModels breaks every example file one value at a time
// (null, a number, an empty list or an empty mapping in place of a value)
// and parses the result: the compiler takes the half-decoded model without
// panicking and no problem is reported twice.
func TestParseBrokenModels(t *testing.T) {
	files, _ := filepath.Glob("../examples/*/*.yaml")
	if len(files) == 0 {
		t.Fatal("no example files")
	}
	replacements := []*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"},
		{Kind: yaml.ScalarNode, Tag: "!!int", Value: "7"},
		{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle},
		{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle},
	}
	variants := 0
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var doc yaml.Node
		if yaml.Unmarshal(src, &doc) != nil || doc.Kind != yaml.DocumentNode {
			continue // not an integration file (or a fragment of one)
		}
		for i, slot := range valueSlots(doc.Content[0]) {
			// one replacement per value, in turn (all four for every value
			// cost a minute under -race for little more)
			orig := *slot
			*slot = *replacements[(i+variants)%len(replacements)]
			out, err := yaml.Marshal(&doc)
			if err != nil {
				t.Fatal(err)
			}
			variants++
			checkParse(t, path, out)
			*slot = orig
		}
	}
	t.Logf("%d broken variants of %d files", variants, len(files))
}

// valueSlots lists every value node under n (mapping values and list items).
func valueSlots(n *yaml.Node) []*yaml.Node {
	var out []*yaml.Node
	switch n.Kind {
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			out = append(out, n.Content[i])
			out = append(out, valueSlots(n.Content[i])...)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			out = append(out, c)
			out = append(out, valueSlots(c)...)
		}
	}
	return out
}

// checkParse parses src and fails on a panic or a problem reported twice.
func checkParse(t *testing.T, path string, src []byte) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("%s: Parse panicked: %v\n%s\n%s", path, p, debug.Stack(), src)
		}
	}()
	_, err := Parse("f.yaml", src, WithRoot(filepath.Dir(path)))
	var list steps.ErrorList
	if err == nil || !errors.As(err, &list) {
		return
	}
	seen := map[string]bool{}
	for _, e := range list {
		if seen[e.Error()] {
			t.Errorf("%s: problem reported twice: %q", path, e.Error())
		}
		seen[e.Error()] = true
	}
}

// TestOneProblemPerRoot: a template that reads several fields of a root it
// may not read (batch outside a batch step, the sync state outside the
// source, a lead field in auth) gets one problem, not one per field.
func TestOneProblemPerRoot(t *testing.T) {
	for name, src := range map[string]string{
		"batch": "name: f\nsteps:\n  - name: a\n    request: { url: \"https://x/{{batch.size}}/{{batch.id}}\" }\n",
		"state": "name: f\nsteps:\n  - name: a\n    request: { url: \"https://x/{{state.a}}/{{page.b}}/{{state.c}}\" }\n",
		"auth":  "name: f\nauth: { type: bearer, token: \"{{lead.a}}{{lead.b}}\" }\nsteps:\n  - name: a\n    request: { url: \"https://x\" }\n",
		"steps": "name: f\nsteps:\n  - name: a\n    request: { url: \"https://x/{{steps.find.a}}/{{steps.find.b}}\" }\n",
	} {
		_, err := Parse("f.yaml", []byte(src))
		var list steps.ErrorList
		if !errors.As(err, &list) {
			t.Fatalf("%s: err = %v, want problems", name, err)
		}
		roots := map[string]int{}
		for _, e := range list {
			if strings.Contains(e.Msg, "version") {
				roots["version"]++ // missing: said once, not also "unsupported version 0"
			}
			for _, r := range []string{"batch", "state", "page", "lead", "find"} {
				if strings.Contains(e.Msg, r+" is not") || strings.Contains(e.Msg, "not "+r) || strings.Contains(e.Msg, `"`+r+`"`) {
					roots[r]++
				}
			}
		}
		for r, n := range roots {
			if n != 1 {
				t.Errorf("%s: %d problems about %s, want 1: %v", name, n, r, list)
			}
		}
		if len(roots) == 0 {
			t.Errorf("%s: no problem about the root: %v", name, list)
		}
	}
}
