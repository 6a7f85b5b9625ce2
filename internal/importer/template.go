package importer

import (
	"sort"
	"strings"
)

// refOpen and refClose delimit a reference to a variable (a curl line's
// $VAR, a Postman {{var}}) inside recorded text; they are private-use
// characters, and inputs holding them are refused (see CheckText).
const (
	refOpen  = '\uE000'
	refClose = '\uE001'
)

// Ref marks a reference to the variable name inside recorded text.
func Ref(name string) string { return string(refOpen) + name + string(refClose) }

// HasRef reports whether s holds a variable reference.
func HasRef(s string) bool { return strings.ContainsRune(s, refOpen) }

// CheckText refuses input holding the characters references are marked
// with (U+E000, U+E001).
func CheckText(what, s string) error {
	if strings.ContainsRune(s, refOpen) || strings.ContainsRune(s, refClose) {
		return Errorf("remove the private-use characters U+E000 and U+E001 from it", "%s holds the private-use character U+E000 or U+E001", what)
	}
	return nil
}

// Segment is a run of literal text or one reference of recorded text.
type Segment struct {
	Text string
	Ref  bool
}

// Segments splits recorded text into literal runs and references.
func Segments(s string) []Segment {
	var out []Segment
	for s != "" {
		i := strings.IndexRune(s, refOpen)
		if i < 0 {
			out = append(out, Segment{Text: s})
			break
		}
		if i > 0 {
			out = append(out, Segment{Text: s[:i]})
		}
		rest := s[i+len(string(refOpen)):]
		j := strings.IndexRune(rest, refClose)
		if j < 0 {
			out = append(out, Segment{Text: rest})
			break
		}
		out = append(out, Segment{Text: rest[:j], Ref: true})
		s = rest[j+len(string(refClose)):]
	}
	return out
}

// Literal escapes text for a plumb template: a "{{" in it is written so the
// template prints it instead of starting an action.
func Literal(s string) string {
	return strings.ReplaceAll(s, "{{", `{{"{{"}}`)
}

// Template turns recorded text into a plumb template: literal runs
// escaped, each reference replaced by {{expr}} where expr is what resolve
// says (settings.x, lead.y). Text that is one reference becomes a single
// action, which keeps the value's type in JSON bodies.
func Template(s string, resolve func(name string) string) string {
	var b strings.Builder
	for _, seg := range Segments(s) {
		if seg.Ref {
			b.WriteString("{{" + resolve(seg.Text) + "}}")
			continue
		}
		b.WriteString(Literal(seg.Text))
	}
	return b.String()
}

// Render replaces every reference in s with value(name): what a request
// carries once the template ran.
func Render(s string, value func(name string) string) string {
	var b strings.Builder
	for _, seg := range Segments(s) {
		if seg.Ref {
			b.WriteString(value(seg.Text))
			continue
		}
		b.WriteString(seg.Text)
	}
	return b.String()
}

// OnlyRef returns the variable s consists of, when it is exactly one
// reference.
func OnlyRef(s string) (string, bool) {
	segs := Segments(s)
	if len(segs) == 1 && segs[0].Ref {
		return segs[0].Text, true
	}
	return "", false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// StartsWithRef reports whether s begins with a variable reference.
func StartsWithRef(s string) bool { return strings.HasPrefix(s, string(refOpen)) }
