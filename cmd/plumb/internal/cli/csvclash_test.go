package cli

import (
	"strings"
	"testing"
)

// A CSV column inside another column is refused by the rule appends follow
// (steps.FieldClashes).
func TestCSVColumnClash(t *testing.T) {
	for src, want := range map[string]string{
		"a.b,a\n1,2\n":       `line 1: column 1: "a.b" clashes with column "a"`,
		"x,a,a.b.c\n1,2,3\n": `line 1: column 3: "a.b.c" clashes with column "a"`,
	} {
		_, err := newCSVSource(strings.NewReader(src))
		if err == nil || err.Error() != want {
			t.Errorf("newCSVSource(%q) = %v, want %s", src, err, want)
		}
	}
	if _, err := newCSVSource(strings.NewReader("a.b,ab,a.c\n1,2,3\n")); err != nil {
		t.Errorf("no clash: %v", err)
	}
}
