package importer

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Map is an ordered YAML mapping the emitter writes. Flow writes it on one
// line ({ a: 1, b: 2 }); only scalars and flow values may sit in a flow map.
type Map struct {
	Entries []*Entry
	Flow    bool
}

// List is a YAML sequence. Each item is an Entry whose Key is unused, so
// items carry comments too.
type List struct {
	Items []*Entry
	Flow  bool
}

// Entry is one key of a Map (or one item of a List) with its comments.
type Entry struct {
	Key   string
	Value any // string, bool, int, int64, float64, json.Number, nil, *Map, *List
	// Comment is written after the value on the entry's line.
	Comment string
	// Head lines are written as comments above the entry.
	Head []string
	// Off writes the entry commented out: an option the author may turn on.
	Off bool
}

// NewMap returns a block mapping of key, value pairs.
func NewMap(kv ...any) *Map {
	m := &Map{}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Set(kv[i].(string), kv[i+1])
	}
	return m
}

// FlowMap returns a one-line mapping of key, value pairs.
func FlowMap(kv ...any) *Map {
	m := NewMap(kv...)
	m.Flow = true
	return m
}

// Set adds key (or replaces its value, keeping its place) and returns its entry.
func (m *Map) Set(key string, v any) *Entry {
	if e := m.Get(key); e != nil {
		e.Value = v
		return e
	}
	e := &Entry{Key: key, Value: v}
	m.Entries = append(m.Entries, e)
	return e
}

// Get returns key's entry, or nil.
func (m *Map) Get(key string) *Entry {
	if m == nil {
		return nil
	}
	for _, e := range m.Entries {
		if e.Key == key {
			return e
		}
	}
	return nil
}

// Len is the number of entries, commented-out ones included.
func (m *Map) Len() int {
	if m == nil {
		return 0
	}
	return len(m.Entries)
}

// Add appends an item and returns its entry.
func (l *List) Add(v any) *Entry {
	e := &Entry{Value: v}
	l.Items = append(l.Items, e)
	return e
}

// Marshal writes v (a *Map at the top) as YAML text: two-space block
// indentation, keys in the order given, comments where they were put.
func Marshal(v *Map) []byte {
	w := &writer{}
	w.mapping(v, 0, false)
	return []byte(w.b.String())
}

type writer struct{ b strings.Builder }

func (w *writer) line(indent int, off bool, s string) {
	w.b.WriteString(strings.Repeat(" ", indent))
	if off {
		w.b.WriteString("# ")
	}
	w.b.WriteString(s)
	w.b.WriteByte('\n')
}

func (w *writer) head(indent int, lines []string) {
	for _, l := range lines {
		if l == "" {
			w.b.WriteByte('\n') // a blank line between parts
			continue
		}
		for _, part := range strings.Split(l, "\n") {
			if part == "" {
				w.line(indent, false, "#")
				continue
			}
			w.line(indent, false, "# "+printable(part))
		}
	}
}

func trail(comment string) string {
	if comment == "" {
		return ""
	}
	return "  # " + printable(strings.ReplaceAll(comment, "\n", " "))
}

// printable makes text safe for a YAML comment: invalid UTF-8 and
// characters that are not printable become U+FFFD.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || (unicode.IsPrint(r) && r != '\uFEFF') {
			return r
		}
		return '\uFFFD'
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// inline reports whether v is written on its key's line.
func inline(v any) bool {
	switch v := v.(type) {
	case *Map:
		return (v.Flow || len(v.Entries) == 0) && !allOff(v)
	case *List:
		return (v.Flow || len(v.Items) == 0) && !allOff(v)
	case string:
		return !blockText(v)
	}
	return true
}

// allOff reports whether v is a mapping or list with entries, all of them
// commented out: its key is then commented out too.
func allOff(v any) bool {
	var es []*Entry
	switch v := v.(type) {
	case *Map:
		es = v.Entries
	case *List:
		es = v.Items
	}
	for _, e := range es {
		if !e.Off && !allOff(e.Value) {
			return false
		}
	}
	return len(es) > 0
}

func (w *writer) mapping(m *Map, indent int, off bool) {
	for _, e := range m.Entries {
		w.head(indent, e.Head)
		o := off || e.Off || allOff(e.Value)
		k := key(e.Key)
		switch v := e.Value.(type) {
		case *Map:
			if inline(v) {
				w.line(indent, o, k+": "+flow(v)+trail(e.Comment))
				continue
			}
			w.line(indent, o, k+":"+trail(e.Comment))
			w.mapping(v, indent+2, o)
		case *List:
			if inline(v) {
				w.line(indent, o, k+": "+flow(v)+trail(e.Comment))
				continue
			}
			w.line(indent, o, k+":"+trail(e.Comment))
			w.list(v, indent+2, o)
		case string:
			if blockText(v) {
				w.line(indent, o, k+": "+blockHeader(v)+trail(e.Comment))
				w.text(v, indent+2, o)
				continue
			}
			w.line(indent, o, k+": "+scalar(v)+trail(e.Comment))
		default:
			w.line(indent, o, k+": "+scalar(v)+trail(e.Comment))
		}
	}
}

func (w *writer) list(l *List, indent int, off bool) {
	for _, e := range l.Items {
		w.head(indent, e.Head)
		o := off || e.Off
		switch v := e.Value.(type) {
		case *Map:
			if inline(v) {
				w.line(indent, o, "- "+flow(v)+trail(e.Comment))
				continue
			}
			// the first key goes on the dash's line, its comment above
			w.head(indent, v.Entries[0].Head)
			first := *v.Entries[0]
			first.Head = nil
			v = &Map{Entries: append([]*Entry{&first}, v.Entries[1:]...)}
			sub := &writer{}
			sub.mapping(v, indent+2, o)
			text := sub.b.String()
			prefix := strings.Repeat(" ", indent+2)
			if o {
				prefix += "# "
			}
			rest, ok := strings.CutPrefix(text, prefix)
			if !ok {
				w.line(indent, o, "-"+trail(e.Comment))
				w.b.WriteString(text)
				continue
			}
			w.b.WriteString(strings.Repeat(" ", indent))
			if o {
				w.b.WriteString("# ")
			}
			w.b.WriteString("- ")
			w.b.WriteString(rest)
		case *List:
			w.line(indent, o, "- "+flow(v)+trail(e.Comment))
		default:
			w.line(indent, o, "- "+scalar(v)+trail(e.Comment))
		}
	}
}

func (w *writer) text(s string, indent int, off bool) {
	body := strings.TrimRight(s, "\n")
	lines := strings.Split(body, "\n")
	if extra := len(s) - len(body); extra > 1 {
		lines = append(lines, make([]string, extra-1)...) // |+ keeps them
	}
	for _, l := range lines {
		if l == "" && !off {
			w.b.WriteByte('\n')
			continue
		}
		w.line(indent, off, l)
	}
}

// flow writes a value on one line.
func flow(v any) string {
	switch v := v.(type) {
	case *Map:
		if len(v.Entries) == 0 {
			return "{}"
		}
		parts := make([]string, 0, len(v.Entries))
		for _, e := range v.Entries {
			if !e.Off {
				parts = append(parts, key(e.Key)+": "+flow(e.Value))
			}
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	case *List:
		if len(v.Items) == 0 {
			return "[]"
		}
		parts := make([]string, 0, len(v.Items))
		for _, e := range v.Items {
			if !e.Off {
				parts = append(parts, flow(e.Value))
			}
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return scalar(v)
}

// plainRE is text that may stay unquoted in block and flow context.
var plainRE = regexp.MustCompile(`^[A-Za-z0-9_./(][A-Za-z0-9 _./@+()-]*$`)

func key(k string) string { return quote(k) }

// quote writes a string plainly when YAML reads it back as the same string,
// else double-quoted.
func quote(s string) string {
	if plainRE.MatchString(s) && !strings.HasSuffix(s, " ") && !strings.Contains(s, "  ") {
		n := yaml.Node{Kind: yaml.ScalarNode, Value: s}
		if n.ShortTag() == "!!str" {
			return s
		}
	}
	return strconv.Quote(strings.ToValidUTF8(s, "\uFFFD"))
}

func scalar(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return quote(v)
	case bool:
		return strconv.FormatBool(v)
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return quote(fmt.Sprint(v))
		}
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			return strconv.FormatInt(int64(v), 10)
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	case json.Number:
		if _, err := strconv.ParseFloat(string(v), 64); err == nil {
			return string(v)
		}
		return quote(string(v))
	case *Map, *List:
		return flow(v)
	}
	return quote(fmt.Sprint(v))
}

// blockText reports whether s is written as a literal block (|): several
// lines of printable text whose first line does not start with a space.
func blockText(s string) bool {
	if !strings.Contains(strings.TrimRight(s, "\n"), "\n") || !utf8.ValidString(s) ||
		strings.HasPrefix(s, " ") || strings.HasPrefix(s, "\t") || strings.HasPrefix(s, "\n") {
		return false
	}
	for _, r := range s {
		if r != '\n' && r != '\t' && !unicode.IsPrint(r) {
			return false
		}
	}
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimRight(l, " \t") != l {
			return false
		}
	}
	return true
}

func blockHeader(s string) string {
	switch {
	case strings.HasSuffix(s, "\n\n"):
		return "|+"
	case strings.HasSuffix(s, "\n"):
		return "|"
	}
	return "|-"
}

// Text is a scalar as a template renders it: strings as they are, numbers
// and bools as YAML writes them.
func Text(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if v == nil {
		return ""
	}
	return scalar(v)
}
