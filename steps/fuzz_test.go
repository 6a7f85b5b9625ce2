package steps

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: any input loads or fails with an ErrorList whose every entry
// names the file; nothing panics, and alias bombs stay bounded.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte(billionLaughs()))
	f.Add([]byte(""))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte(head + "steps:\n  - name: a\n    request: { url: !x \"{{lead.a}}\", headers: { \"a\\nb\": \"c\\r\" } }\n  -\n"))
	f.Add([]byte(head + "vars:\n  loop: &l [1, *l]\nsteps: [*l]\n"))
	f.Add([]byte(head + "settings:\n  n: { type: number, default: abc }\nauth: { type: basic }\nsteps:\n  - when: 1\n    request: { url: file:///x }\n"))
	if files, err := filepath.Glob("../examples/*/*.yaml"); err == nil {
		for _, p := range files {
			if src, err := os.ReadFile(p); err == nil && len(src) < 16<<10 {
				f.Add(src)
			}
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		in, err := parse("f.yaml", src)
		if err == nil {
			if in == nil {
				t.Fatal("nil integration without error")
			}
			return
		}
		var list ErrorList
		if !errors.As(err, &list) || len(list) == 0 {
			t.Fatalf("error %T %v, want a non-empty ErrorList", err, err)
		}
		for _, e := range list {
			if e.Pos.File != "f.yaml" || !strings.HasPrefix(e.Error(), "f.yaml") {
				t.Fatalf("error without the file: %q", e.Error())
			}
		}
	})
}
