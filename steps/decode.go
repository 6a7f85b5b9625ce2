package steps

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// decoder turns a yaml.Node tree into the model, strictly: unknown keys,
// duplicate keys and wrong kinds are all reported with their position, and
// decoding goes on so every problem is found in one pass.
type decoder struct {
	file  string
	lines lines // the file's text, for block scalars (nil: not known)
	errs  *ErrorList
}

// nodeDecoder is implemented by this package's model types that decode
// themselves; what names the value in messages.
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, what string)
}

var (
	posType          = reflect.TypeFor[Pos]()
	durationType     = reflect.TypeFor[time.Duration]()
	nodeDecoderType  = reflect.TypeFor[nodeDecoder]()
	valueDecoderType = reflect.TypeFor[ValueDecoder]()
)

func (d *decoder) pos(n *yaml.Node) Pos { return Pos{File: d.file, Line: n.Line, Col: n.Column} }

func (d *decoder) errorf(n *yaml.Node, hint, format string, args ...any) {
	d.errs.Add(d.pos(n), hint, format, args...)
}

// kindName describes n in messages: "a mapping", "a list", "null", an
// alias or the quoted scalar.
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
		return quoteStart(n.Value)
	}
	return "an alias"
}

// maxQuoted is how much of a value a message quotes.
const maxQuoted = 32

// quoteStart quotes s, or its first line cut to maxQuoted characters and
// followed by … when it is longer: a message never carries a whole file
// (an included /etc/passwd is one long scalar) or a long secret.
func quoteStart(s string) string {
	cut := false
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s, cut = s[:i], true
	}
	if utf8.RuneCountInString(s) > maxQuoted {
		s, cut = string([]rune(s)[:maxQuoted]), true
	}
	if cut {
		return fmt.Sprintf("%q…", s)
	}
	return fmt.Sprintf("%q", s)
}

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

// decode fills v (addressable) from n; what is the name used in messages.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, what string) {
	n = resolve(n)
	if n == nil {
		return
	}
	if v.CanAddr() {
		switch t := v.Addr().Type(); {
		case t.Implements(nodeDecoderType):
			v.Addr().Interface().(nodeDecoder).decodeNode(d, n, what)
			return
		case t.Implements(valueDecoderType):
			*d.errs = append(*d.errs, v.Addr().Interface().(ValueDecoder).DecodeValue(valueAt(d.file, d.lines, n), what)...)
			return
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return
		}
		if n.Kind != yaml.MappingNode && plainStruct(v.Type().Elem()) {
			// a section written as something else stays absent: reported
			// once here, never validated half-decoded (with unset positions)
			d.errorf(n, "", "%s must be a mapping, got %s", what, kindName(n))
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
		// An empty item is reported and left out: the model never holds a
		// nil element, so the compiler needs no guard for one.
		s := reflect.MakeSlice(v.Type(), 0, len(n.Content))
		for i, c := range n.Content {
			if r := resolve(c); v.Type().Elem().Kind() == reflect.Pointer && r != nil {
				switch et := v.Type().Elem().Elem(); {
				case r.Kind == yaml.ScalarNode && r.Tag == "!!null":
					d.errorf(c, "remove the empty item or fill it in", "%s[%d] is empty", what, i)
					continue
				case r.Kind != yaml.MappingNode && plainStruct(et):
					d.errorf(c, "", "%s[%d] must be a mapping, got %s", what, i, kindName(r))
					continue
				}
			}
			s = reflect.Append(s, reflect.Zero(v.Type().Elem()))
			d.decode(c, s.Index(s.Len()-1), fmt.Sprintf("%s[%d]", what, i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(n, "", "%s must be a mapping, got %s", what, kindName(n))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := resolve(n.Content[i])
			if k.Kind != yaml.ScalarNode {
				d.errorf(k, "", "%s: keys must be plain names", what)
				continue
			}
			if seen[k.Value] {
				d.errorf(k, "", "duplicate key %q in %s", k.Value, what)
				continue
			}
			seen[k.Value] = true
			ev := reflect.New(v.Type().Elem()).Elem()
			d.decode(n.Content[i+1], ev, what+"."+k.Value)
			m.SetMapIndex(reflect.ValueOf(k.Value), ev)
		}
		v.Set(m)
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			d.errorf(n, "", "%s: %v", what, err)
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		d.decodeScalar(n, v, what)
	}
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, what string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "", "%s must be a %s, got %s", what, scalarKind(v.Type()), kindName(n))
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
		if n.Tag == "!!null" {
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Tag != "!!bool" || err != nil {
			d.errorf(n, "", "%s must be true or false, got %s", what, kindName(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if n.Tag != "!!int" || err != nil {
			d.errorf(n, "", "%s must be a whole number, got %s", what, kindName(n))
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if (n.Tag != "!!int" && n.Tag != "!!float") || err != nil {
			d.errorf(n, "", "%s must be a number, got %s", what, kindName(n))
			return
		}
		v.SetFloat(f)
	default:
		d.errorf(n, "", "%s: unsupported field kind %s", what, v.Kind())
	}
}

func scalarKind(t reflect.Type) string {
	if t == durationType {
		return "duration"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Float64:
		return "number"
	}
	return "string"
}

type fieldInfo struct {
	index    []int
	name     string
	required bool
}

var keyPosType = reflect.TypeOf(map[string]Pos{})

// structFields lists the YAML keys of a struct type, following fields
// tagged `yaml:",inline"`, and finds its Pos and KeyPos fields (-1: none).
func structFields(t reflect.Type) (fields []fieldInfo, posIndex, keyPosIndex int) {
	posIndex, keyPosIndex = -1, -1
	for i := range t.NumField() {
		f := t.Field(i)
		switch {
		case f.Type == posType && f.Name == "Pos":
			posIndex = i
			continue
		case f.Type == keyPosType && f.Name == "KeyPos":
			keyPosIndex = i
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "" || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "inline" && f.Type.Kind() == reflect.Struct {
			inner, _, _ := structFields(f.Type)
			for _, in := range inner {
				in.index = append([]int{i}, in.index...)
				fields = append(fields, in)
			}
			continue
		}
		fields = append(fields, fieldInfo{index: []int{i}, name: name, required: strings.Contains(opts, "required")})
	}
	return fields, posIndex, keyPosIndex
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, what string) {
	fields, posIndex, keyPosIndex := structFields(v.Type())
	if posIndex >= 0 {
		v.Field(posIndex).Set(reflect.ValueOf(d.pos(n)))
	}
	var keyPos map[string]Pos
	if keyPosIndex >= 0 {
		keyPos = map[string]Pos{}
		v.Field(keyPosIndex).Set(reflect.ValueOf(keyPos))
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "", "%s must be a mapping, got %s", what, kindName(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		key := k.Value
		var f *fieldInfo
		for j := range fields {
			if fields[j].name == key {
				f = &fields[j]
				break
			}
		}
		if f == nil {
			names := make([]string, len(fields))
			for j, f := range fields {
				names[j] = f.name
			}
			hint := "known keys: " + strings.Join(names, ", ")
			if s := suggest(key, names); s != "" {
				hint = fmt.Sprintf("did you mean %q?", s)
			}
			d.errorf(k, hint, "unknown key %q in %s", key, what)
			continue
		}
		if seen[key] {
			d.errorf(k, "", "duplicate key %q in %s", key, what)
			continue
		}
		seen[key] = true
		if keyPos != nil {
			keyPos[key] = d.pos(n.Content[i+1])
		}
		d.decode(n.Content[i+1], v.FieldByIndex(f.index), what+"."+key)
	}
	for _, f := range fields {
		if f.required && !seen[f.name] {
			d.errorf(n, "", "%s: missing required key %q", what, f.name)
		}
	}
}

// suggest returns the known name closest to s when it is close enough to be
// a typo.
func suggest(s string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if dist := levenshtein(strings.ToLower(s), k); dist < bestD {
			best, bestD = k, dist
		}
	}
	return best
}

func levenshtein(a, b string) int {
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

// plainStruct reports whether t is a struct decoded key by key (not by a
// decoder of its own, which may accept other kinds of node).
func plainStruct(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return t.Kind() == reflect.Struct && !pt.Implements(nodeDecoderType) && !pt.Implements(valueDecoderType)
}
