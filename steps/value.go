package steps

import (
	"fmt"
	"reflect"

	"gopkg.in/yaml.v3"
)

// Value is a structured value (mapping, list or scalar) kept as written,
// with its position, so its string leaves can be compiled as templates.
// The zero Value is absent (Kind NoValue).
type Value struct {
	// Pos is where the value is written (an alias: its anchor's value).
	Pos   Pos
	node  *yaml.Node // aliases resolved; nil: absent
	lines lines      // the file's text, for block scalars (nil: not known)
}

// ValueKind is the shape of a [Value].
type ValueKind int

// The shapes of a value.
const (
	// NoValue is the zero Value's: nothing was written.
	NoValue ValueKind = iota
	// ScalarValue is a string, number, boolean, timestamp or null.
	ScalarValue
	// MappingValue is a mapping of keys to values.
	MappingValue
	// ListValue is a list of values.
	ListValue
)

// valueAt is the Value of n (aliases resolved) written in file.
func valueAt(file string, ls lines, n *yaml.Node) Value {
	n = resolve(n)
	if n == nil || n.Kind == 0 {
		return Value{}
	}
	return Value{Pos: Pos{File: file, Line: n.Line, Col: n.Column}, node: n, lines: ls}
}

func (v *Value) decodeNode(d *decoder, n *yaml.Node, _ string) {
	*v = valueAt(d.file, d.lines, n)
}

// IsSet reports whether the value was written (it may be null).
func (v Value) IsSet() bool { return v.node != nil }

// Kind is the value's shape.
func (v Value) Kind() ValueKind {
	if v.node == nil {
		return NoValue
	}
	switch v.node.Kind {
	case yaml.MappingNode:
		return MappingValue
	case yaml.SequenceNode:
		return ListValue
	}
	return ScalarValue
}

// Describe names the value in messages: "a mapping", "a list", "null" or
// the quoted scalar ("nothing" when absent).
func (v Value) Describe() string {
	if v.node == nil {
		return "nothing"
	}
	return kindName(v.node)
}

// Entries are a mapping's keys in the order written, each with its
// position and value; nil for another shape.
func (v Value) Entries() Map[Value] {
	if v.Kind() != MappingValue {
		return nil
	}
	n := v.node
	out := make(Map[Value], 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		out = append(out, Entry[Value]{Key: k.Value, Pos: Pos{File: v.Pos.File, Line: k.Line, Col: k.Column},
			Value: valueAt(v.Pos.File, v.lines, n.Content[i+1])})
	}
	return out
}

// Items are a list's values in order; nil for another shape.
func (v Value) Items() []Value {
	if v.Kind() != ListValue {
		return nil
	}
	out := make([]Value, len(v.node.Content))
	for i, c := range v.node.Content {
		out[i] = valueAt(v.Pos.File, v.lines, c)
	}
	return out
}

// Text is the value as a String when it is text (a quoted string or a
// plain scalar that is not a number, boolean, timestamp or null).
func (v Value) Text() (String, bool) {
	n := v.node
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return String{}, false
	}
	s := String{Value: n.Value, Pos: v.Pos, set: true, tag: n.Tag, block: v.lines.blockOf(n)}
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		s.Pos.Line++       // block scalars start on the line after the indicator
		s.Pos = s.At(1, 1) // and at their indentation
	}
	return s, true
}

// Decode stores the value in out (a pointer) as the YAML decoder does:
// numbers, booleans, timestamps and null as Go values, mappings and lists
// into maps, slices or structs. An absent value leaves out as it is.
func (v Value) Decode(out any) error {
	if v.node == nil {
		return nil
	}
	return v.node.Decode(out)
}

// Plain is the value as plain Go values, the shapes encoding/json
// produces from the same data: map[string]any, []any, string, float64,
// bool or nil. Timestamps stay text: an unquoted 1985-09-09 is the string
// "1985-09-09", as in JSON data. Nil for an absent value.
func (v Value) Plain() (any, error) {
	if v.node == nil {
		return nil, nil
	}
	var x any
	if err := untimed(v.node, map[*yaml.Node]*yaml.Node{}).Decode(&x); err != nil {
		return nil, err
	}
	return plain(x)
}

// ValueDecoder is implemented by types of other packages (test cases)
// that decode themselves within [Value.DecodeStrict]: v is their value,
// aliases resolved; what names it in messages; the problems returned are
// reported with the others. DecodeValue may call v.DecodeStrict for the
// parts it does not handle itself.
type ValueDecoder interface {
	DecodeValue(v Value, what string) ErrorList
}

// DecodeStrict reads the value into out (a pointer to a struct with yaml
// tags, a Map, a slice, a scalar) the way integration files are read:
// unknown keys (with a "did you mean" hint), duplicate keys, missing
// `,required` keys and wrong kinds are all reported at their position, and
// String, Map and Value fields keep theirs. what names the value in
// messages. Other tools that read plumb YAML (test cases) use it so their
// errors look the same; their own special types implement
// [ValueDecoder].
func (v Value) DecodeStrict(out any, what string) ErrorList {
	var errs ErrorList
	d := &decoder{file: v.Pos.File, lines: v.lines, errs: &errs}
	d.decode(v.node, reflect.ValueOf(out).Elem(), what)
	errs.Sort()
	return errs
}

// SyntaxErrors are the problems of src, written in file, that yaml.v3
// reported as err (what ParseValue returns for a file that is not YAML),
// positioned as an integration file's are: at the line, and the column
// where its text starts or where the flow collection breaks.
func SyntaxErrors(file string, src []byte, err error) ErrorList {
	return syntaxError(file, src, err).(ErrorList)
}

// ParseValue reads src, one YAML document written in file. A file that is
// not YAML gives the parser's error as it is. The problems integration
// files are refused for (unknown tags, aliases that contain themselves or
// expand beyond MaxAliasNodes) are returned as an [ErrorList] beside the
// value, which is absent when it must not be read any further. An empty
// document is an absent Value. Only the first document is read.
func ParseValue(file string, src []byte) (Value, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return Value{}, err
	}
	if len(doc.Content) == 0 {
		return Value{}, nil
	}
	var errs ErrorList
	ok := checkYAML(file, &doc, &errs)
	var v Value
	if ok {
		v = valueAt(file, splitLines(src), &doc)
	}
	return v, errs.Err()
}

// untimed returns a copy of the tree n in which timestamps are strings: an
// unquoted `birth_date: 1985-09-09` means the text 1985-09-09, as in a
// JSON lead, not a time.Time printed as "1985-09-09 00:00:00 +0000 UTC".
// Aliases keep pointing at (copies of) their anchors; copies maps nodes
// already copied.
func untimed(n *yaml.Node, copies map[*yaml.Node]*yaml.Node) *yaml.Node {
	if n == nil {
		return nil
	}
	if c, ok := copies[n]; ok {
		return c
	}
	c := new(yaml.Node)
	copies[n] = c
	*c = *n
	if c.Kind == yaml.ScalarNode && c.ShortTag() == "!!timestamp" {
		c.Tag = "!!str"
	}
	c.Alias = untimed(n.Alias, copies)
	if n.Content != nil {
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, x := range n.Content {
			c.Content[i] = untimed(x, copies)
		}
	}
	return c
}

// plain converts a value decoded from YAML to the shapes encoding/json
// produces, so it compares equal to values read from JSON.
func plain(x any) (any, error) {
	switch t := x.(type) {
	case nil, string, bool, float64:
		return t, nil
	case int:
		return float64(t), nil
	case int64:
		return float64(t), nil
	case uint64:
		return float64(t), nil
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, v := range t {
			pv, err := plain(v)
			if err != nil {
				return nil, err
			}
			out[k] = pv
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, v := range t {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("mapping keys must be strings, got %v", k)
			}
			pv, err := plain(v)
			if err != nil {
				return nil, err
			}
			out[ks] = pv
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, v := range t {
			pv, err := plain(v)
			if err != nil {
				return nil, err
			}
			out[i] = pv
		}
		return out, nil
	}
	return fmt.Sprint(x), nil
}
