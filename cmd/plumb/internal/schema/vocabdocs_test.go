package schema

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/plumbhq/plumb/steps"
)

// docs/format.md holds one table per enum of the vocabulary, between
// <!-- vocab:NAME --> and <!-- /vocab -->, generated from its declaration
// (-update rewrites them), or a hand-written table between
// <!-- vocab-check:NAME --> and <!-- /vocab --> whose first column must
// list exactly the declared values, in order.
var vocabBlockRE = regexp.MustCompile(`(?s)<!-- vocab(-check)?:([a-z0-9-]+) -->\n(.*?)<!-- /vocab -->`)

// TestVocabDocs fails when a table of docs/format.md is stale, missing,
// or names an enum the vocabulary does not declare.
func TestVocabDocs(t *testing.T) {
	path := filepath.Join(root, "docs", "format.md")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	vocab := map[string]steps.Vocab{}
	for _, v := range steps.Vocabulary() {
		vocab[v.Name] = v
	}
	seen := map[string]bool{}
	stale := false
	out := vocabBlockRE.ReplaceAllStringFunc(string(src), func(block string) string {
		m := vocabBlockRE.FindStringSubmatch(block)
		check, name, body := m[1] != "", m[2], m[3]
		v, ok := vocab[name]
		if !ok {
			t.Errorf("docs/format.md: table %q is not an enum of steps.Vocabulary", name)
			return block
		}
		if seen[name] {
			t.Errorf("docs/format.md: enum %s has two tables", name)
		}
		seen[name] = true
		if check {
			if got := firstColumn(body); !slices.Equal(got, docValues(v)) {
				t.Errorf("docs/format.md: the %s table lists %v, the vocabulary declares %v", name, got, docValues(v))
			}
			return block
		}
		want := vocabTable(v)
		if body != want {
			stale = true
		}
		return "<!-- vocab:" + name + " -->\n" + want + "<!-- /vocab -->"
	})
	for name := range vocab {
		if !seen[name] {
			t.Errorf("docs/format.md has no table for enum %s: add <!-- vocab:%s --><!-- /vocab --> where it is explained and run go test ./cmd/plumb/internal/schema -run TestVocabDocs -update", name, name)
		}
	}
	switch {
	case stale && *update:
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	case stale:
		t.Errorf("docs/format.md's vocabulary tables are stale: run go test ./cmd/plumb/internal/schema -run TestVocabDocs -update")
	}
}

// vocabTable is the generated table of v.
func vocabTable(v steps.Vocab) string {
	var b strings.Builder
	b.WriteString("| value | meaning |\n|---|---|\n")
	for _, c := range v.Choices {
		doc := c.Doc
		if c.Value == v.Default {
			doc = "(default) " + doc
		}
		b.WriteString("| `" + string(c.Value) + "` | " + strings.ReplaceAll(doc, "|", `\|`) + " |\n")
	}
	if v.Unset != "" {
		b.WriteString("| *(not set)* | " + v.Unset + " |\n")
	}
	if v.Extension != "" {
		name, doc, _ := strings.Cut(v.ExtensionDoc, ": ")
		b.WriteString("| `" + name + "` | " + doc + " |\n")
	}
	return b.String()
}

// docValues are the values a table of v lists: the declared ones and the
// extension's name (x-NAME).
func docValues(v steps.Vocab) []string {
	out := v.Values()
	if v.Extension != "" {
		name, _, _ := strings.Cut(v.ExtensionDoc, ": ")
		out = append(out, name)
	}
	return out
}

// firstColumn lists the first backquoted word of each row of a Markdown
// table (header and rule excluded).
func firstColumn(table string) []string {
	var out []string
	for i, line := range strings.Split(strings.TrimSpace(table), "\n") {
		if i < 2 {
			continue
		}
		cell, _, _ := strings.Cut(strings.TrimPrefix(line, "|"), "|")
		if _, rest, ok := strings.Cut(cell, "`"); ok {
			word, _, _ := strings.Cut(rest, "`")
			out = append(out, word)
		}
	}
	return out
}
