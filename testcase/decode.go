package testcase

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/plumbhq/plumb/steps"
)

// decoder turns a yaml.Node tree into the test model strictly: unknown and
// duplicate keys and values of the wrong kind are reported with their
// position, and decoding goes on so every problem is found in one pass.
type decoder struct {
	file string
	errs *steps.ErrorList
	// what names the value a nodeDecoder is decoding, for messages.
	what string
}

// nodeDecoder is implemented by model types that decode themselves.
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node)
}

var (
	posType         = reflect.TypeFor[steps.Pos]()
	durationType    = reflect.TypeFor[time.Duration]()
	nodeDecoderType = reflect.TypeFor[nodeDecoder]()
)

func (d *decoder) pos(n *yaml.Node) steps.Pos {
	return steps.Pos{File: d.file, Line: n.Line, Col: n.Column}
}

func (d *decoder) errorf(n *yaml.Node, hint, format string, args ...any) {
	d.errs.Add(d.pos(n), hint, format, args...)
}

// resolve follows aliases and unwraps documents.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && (n.Kind == yaml.AliasNode || n.Kind == yaml.DocumentNode) {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		} else if len(n.Content) > 0 {
			n = n.Content[0]
		} else {
			return nil
		}
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return strconv.Quote(n.Value)
	}
	return "an alias"
}

// decode fills v (addressable) from n; what names the value in messages.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, what string) {
	n = resolve(n)
	if n == nil {
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(nodeDecoderType) {
		d.what = what
		v.Addr().Interface().(nodeDecoder).decodeNode(d, n)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), what)
	case reflect.Struct:
		d.decodeStruct(n, v, what)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, "", "%s must be a list, got %s", what, kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", what, i))
		}
		v.Set(s)
	default:
		d.decodeScalar(n, v, what)
	}
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, what string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "", "%s must be a %s, got %s", what, scalarKind(v), kindName(n))
		return
	}
	if v.Type() == durationType {
		dur, err := time.ParseDuration(n.Value)
		if err != nil || dur < 0 {
			d.errorf(n, "use a Go duration such as 500ms, 2s or 1m30s", "%s: invalid duration %q", what, n.Value)
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.String:
		if n.Tag != "!!null" {
			v.SetString(n.Value)
		}
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Tag != "!!bool" || err != nil {
			d.errorf(n, "", "%s must be true or false, got %s", what, kindName(n))
			return
		}
		v.SetBool(b)
	case reflect.Int:
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if n.Tag != "!!int" || err != nil {
			d.errorf(n, "", "%s must be a whole number, got %s", what, kindName(n))
			return
		}
		v.SetInt(i)
	default:
		d.errorf(n, "", "%s: unsupported field kind %s", what, v.Kind())
	}
}

func scalarKind(v reflect.Value) string {
	switch {
	case v.Type() == durationType:
		return "duration"
	case v.Kind() == reflect.Bool:
		return "boolean"
	case v.Kind() == reflect.Int:
		return "number"
	}
	return "string"
}

// field is one YAML key of a model struct.
type field struct {
	index    int
	name     string
	required bool
}

// structFields lists the YAML keys of t and the index of its Pos field (-1
// when it has none).
func structFields(t reflect.Type) (fields []field, posIndex int) {
	posIndex = -1
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type == posType && f.Name == "Pos" {
			posIndex = i
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "" || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		fields = append(fields, field{index: i, name: name, required: opts == "required"})
	}
	return fields, posIndex
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, what string) {
	fields, posIndex := structFields(v.Type())
	if posIndex >= 0 {
		v.Field(posIndex).Set(reflect.ValueOf(d.pos(n)))
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "", "%s must be a mapping, got %s", what, kindName(n))
		return
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		j := indexOf(names, k.Value)
		if j < 0 {
			hint := "known keys: " + strings.Join(names, ", ")
			if s := suggest(k.Value, names); s != "" {
				hint = fmt.Sprintf("did you mean %q?", s)
			}
			d.errorf(k, hint, "unknown key %q in %s", k.Value, what)
			continue
		}
		if seen[k.Value] {
			d.errorf(k, "", "duplicate key %q in %s", k.Value, what)
			continue
		}
		seen[k.Value] = true
		d.decode(n.Content[i+1], v.Field(fields[j].index), what+"."+k.Value)
	}
	for _, f := range fields {
		if f.required && !seen[f.name] {
			d.errorf(n, "", "%s: missing required key %q", what, f.name)
		}
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// suggest returns the known name closest to s when it is close enough to be
// a typo.
func suggest(s string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if dist := editDistance(strings.ToLower(s), k); dist < bestD {
			best, bestD = k, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Entry is one key of an ordered mapping, with its position.
type Entry[T any] struct {
	Key   string
	Pos   steps.Pos
	Value T
}

// Map is a YAML mapping that keeps the order and positions of its keys.
type Map[T any] []Entry[T]

// Get returns the value for key.
func (m Map[T]) Get(key string) (T, bool) {
	for _, e := range m {
		if e.Key == key {
			return e.Value, true
		}
	}
	var zero T
	return zero, false
}

func (m *Map[T]) decodeNode(d *decoder, n *yaml.Node) {
	what := d.what
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "", "%s must be a mapping, got %s", what, kindName(n))
		return
	}
	out := make(Map[T], 0, len(n.Content)/2)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			d.errorf(k, "", "%s: keys must be plain names", what)
			continue
		}
		if seen[k.Value] {
			d.errorf(k, "", "duplicate key %q in %s", k.Value, what)
			continue
		}
		seen[k.Value] = true
		e := Entry[T]{Key: k.Value, Pos: d.pos(k)}
		d.decode(n.Content[i+1], reflect.ValueOf(&e.Value).Elem(), what+"."+k.Value)
		out = append(out, e)
	}
	*m = out
}

// Value is any YAML value (mapping, list or scalar) decoded to plain Go
// values as encoding/json would produce them: map[string]any, []any,
// string, float64, bool or nil.
type Value struct {
	V   any
	Set bool
	Pos steps.Pos
}

func (v *Value) decodeNode(d *decoder, n *yaml.Node) {
	v.Pos, v.Set = d.pos(n), true
	var x any
	if err := untimed(n, map[*yaml.Node]*yaml.Node{}).Decode(&x); err != nil {
		d.errorf(n, "", "%v", err)
		return
	}
	x, err := plain(x)
	if err != nil {
		d.errorf(n, "", "%v", err)
		return
	}
	v.V = x
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
