package termtext_test

import (
	"fmt"
	"testing"

	"github.com/plumbhq/plumb/internal/termtext"
)

// TestEscape: a one-line field (a header, an error, a reason) has its
// newlines escaped too; a body keeps them, and its CRLF line ends; readable
// text is returned as it is.
func TestEscape(t *testing.T) {
	for _, c := range []struct {
		in    string
		lines bool
		want  string
	}{
		{"plain héllo ✓\ttab", false, "plain héllo ✓\ttab"},
		{"a\nb\r\nc\rd", false, `a\nb\r\nc\rd`},
		{"a\nb\r\nc\rd", true, "a\nb\r\nc\\rd"},
		{"\x1b]0;t\x07\xc2\x85\xe2\x80\xa8", true, `\u001b]0;t\u0007\u0085\u2028`},
		{"\x1b[2J\x7f\xffok", false, `\u001b[2J\u007f\xffok`},
		{"abc\u202edef", false, `abc\u202edef`},
		{"", true, ""},
	} {
		if got := termtext.Escape(c.in, c.lines); got != c.want {
			t.Errorf("Escape(%q, %v) = %q, want %q", c.in, c.lines, got, c.want)
		}
	}
}

func ExampleEscape() {
	fmt.Println(termtext.Escape("\x1b[2Jrefused\r\nlead 2: ok", false))
	fmt.Println(termtext.Escape("line 1\nline 2\rforged", true))
	// Output:
	// \u001b[2Jrefused\r\nlead 2: ok
	// line 1
	// line 2\rforged
}
