// Package termtext makes untrusted text safe to write on a terminal: a
// partner's answer, a lead's field, a line the standard library logs.
package termtext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape is s as a terminal may show it: readable text (any valid UTF-8,
// tabs) as it is, and what could move the cursor, clear the screen, reorder
// or forge a line escaped: C0 controls, DEL, C1 controls, bidi controls and
// line separators as \u001b, a carriage return not followed by a newline
// as \r, and bytes that are not UTF-8 as \xff. Newlines are kept when lines
// is true (a body, each of whose lines the caller prefixes), else escaped as
// \n, with the carriage return before them as \r. s is returned as it is
// when nothing needs escaping.
func Escape(s string, lines bool) string {
	var b strings.Builder
	done := 0 // s[:done] is in b or needs no escape
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		var esc string
		switch {
		case r == utf8.RuneError && n == 1:
			esc = fmt.Sprintf(`\x%02x`, s[i])
		case r == '\t', r == '\n' && lines, r == '\r' && lines && strings.HasPrefix(s[i+1:], "\n"):
		case r == '\n':
			esc = `\n`
		case r == '\r':
			esc = `\r`
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029':
			esc = fmt.Sprintf(`\u%04x`, r)
		}
		if esc != "" {
			b.WriteString(s[done:i])
			b.WriteString(esc)
			done = i + n
		}
		i += n
	}
	if done == 0 {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
}
