package parse

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func TestCheckJSONPath(t *testing.T) {
	const doc = `{"items":[{"id":1,"name":"a)b","tags":["x"]}],"a":{"b":[1,2]},"@type":"T","reason[":"r","#":1}`
	for _, bad := range []string{
		"items.#(id==",
		"items.#(id==1",
		"#(id==1",
		"items.#[id==1",
		`items.#(name=="a)b"`,
		"items.#(tags.#(==\"x\")",
		"a|#(x>1",
	} {
		err := CheckJSONPath(bad)
		if err == nil || !strings.Contains(err.Error(), "never closed") {
			t.Errorf("CheckJSONPath(%q) = %v, want never closed", bad, err)
		}
		if gjson.Get(doc, bad).Exists() {
			t.Errorf("%q matches %s: refused a path that matches", bad, doc)
		}
	}
	for _, ok := range []string{
		"", "id", "data.score", "items.#.id", "items.#", "items.0.id", "items.#(id==1)", "items.#(id==1)#",
		"items.#(id==1).name", `items.#(name=="a)b").id`, `items.#(name=="a\")b")`, "items.#(tags.#(==\"x\"))",
		"items.#(id>0)#.name", `items.#(name%"a*")`, "a.b.#(>1)", "a\\.b", `a.\#(x`, "@this", "@type", "@nope",
		"reason[", "[a,items]", "{a,b:items}", "@dig:#(x", "items|@reverse", "!true", "results", "c?ildren", "a.b.1",
		"items.#(id==1)|name", "items.#[id==1]", "items.#(id==1)#.tags.#(==1", "items.#.tags.#(==1",
		`a\.#(x`, `items.#(name=="\"(")`,
	} {
		if err := CheckJSONPath(ok); err != nil {
			t.Errorf("CheckJSONPath(%q) = %v", ok, err)
		}
	}
	// Subselectors, modifiers and static values are not looked into: their
	// arguments hold text that is not a path, and these match.
	for _, ok := range []string{`{"x.#(":a}`, `[a,!"x.#("]`, `@dig:"x.#("`, `!"x.#("`} {
		if err := CheckJSONPath(ok); err != nil {
			t.Errorf("CheckJSONPath(%q) = %v", ok, err)
		}
		if !gjson.Get(doc, ok).Exists() {
			t.Errorf("%q matches nothing in %s", ok, doc)
		}
	}
}
