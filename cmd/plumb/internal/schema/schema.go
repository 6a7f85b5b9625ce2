//go:generate go test -run TestGodocIsCurrent -update .

// Package schema generates the JSON Schema (draft 2020-12) of plumb's file
// formats by reflection over the model types: steps.Integration for
// integration files and the testcase types for test cases. `plumb schema`
// prints it; the committed copies in the repository's schema/ directory are
// what editors load through yaml-language-server, and a test keeps them in
// sync with the types.
//
// Mapping: YAML keys come from yaml struct tags (",inline" merges a struct,
// ",required" makes a key required); structs are closed objects
// (additionalProperties: false), because plumb rejects unknown keys; Map[T]
// is an object of T; Value and any accept anything; time.Duration is a Go
// duration string; strings accept any scalar, as plumb does.
//
// Descriptions are the doc comments of the model types (godoc_gen.go,
// generated from the sources; a test keeps it current), and enums come
// from the vocabulary steps declares (steps.Vocabulary), each value's
// meaning listed in the key's description.
package schema

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/plumbhq/plumb/internal/jsonw"
	"github.com/plumbhq/plumb/internal/testcase"
	"github.com/plumbhq/plumb/steps"
)

// Kind selects which file format a schema describes.
type Kind string

// The file formats.
const (
	Integration Kind = "integration" // an integration file (tests: included)
	TestFile    Kind = "tests"       // a NAME.test.yaml file
)

// Base is where the committed schemas are published; each schema's $id is
// Base + its file name.
const Base = "https://raw.githubusercontent.com/plumbhq/plumb/main/schema/"

// FileName is the name of the committed schema of kind k.
func FileName(k Kind) string {
	if k == TestFile {
		return "plumb-test.schema.json"
	}
	return "plumb.schema.json"
}

// ID is the $id of the schema of kind k.
func ID(k Kind) string { return Base + FileName(k) }

// Generate returns the schema of kind k as indented JSON ending in a
// newline. The output is deterministic.
func Generate(k Kind) ([]byte, error) {
	g := &gen{defs: map[string]any{}, vocab: vocabByField()}
	var root map[string]any
	var title, desc string
	switch k {
	case Integration:
		root = g.object(reflect.TypeFor[steps.Integration]())
		title, desc = "plumb integration", "An integration file of plumb: the settings it needs and the HTTP steps it runs for each lead. Checked strictly by `plumb validate`."
	case TestFile:
		root = g.object(reflect.TypeFor[testFile]())
		title, desc = "plumb test cases", "A NAME.test.yaml file: stored test cases for the integration NAME.yaml, run by `plumb test`."
	default:
		return nil, fmt.Errorf("unknown schema kind %q (want %s or %s)", k, Integration, TestFile)
	}
	out := map[string]any{
		"$schema":     "https://json-schema.org/draft/2020-12/schema",
		"$id":         ID(k),
		"title":       title,
		"description": desc,
		"$defs":       g.defs,
	}
	for key, v := range root {
		out[key] = v
	}
	b, err := jsonw.MarshalIndent(out, "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// testFile mirrors the top level of a NAME.test.yaml file.
type testFile struct {
	Integration string           `yaml:"integration"`
	Tests       []*testcase.Case `yaml:"tests,required"`
}

type gen struct {
	defs  map[string]any
	vocab map[string]steps.Vocab // by Type.yaml_key
}

var (
	durationType  = reflect.TypeFor[time.Duration]()
	stringType    = reflect.TypeFor[steps.String]()
	valueType     = reflect.TypeFor[steps.Value]()
	tcValueType   = reflect.TypeFor[testcase.Value]()
	sequenceType  = reflect.TypeFor[testcase.Sequence]()
	integrationTy = reflect.TypeFor[steps.Integration]()
)

// scalar is what plumb accepts where it reads text: any YAML scalar.
func scalar() map[string]any { return map[string]any{"type": []string{"string", "number", "boolean"}} }

// durationPattern matches Go durations such as 500ms, 2s, 1m30s.
const durationPattern = `^(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`

func (g *gen) schema(t reflect.Type) map[string]any {
	switch t {
	case durationType:
		return map[string]any{"type": "string", "pattern": durationPattern, "description": "a Go duration such as 500ms, 2s or 1m30s"}
	case stringType:
		return scalar()
	case valueType, tcValueType:
		return map[string]any{}
	case sequenceType:
		resp := g.schema(reflect.TypeFor[testcase.Response]())
		return map[string]any{"oneOf": []any{resp, map[string]any{"type": "array", "minItems": 1, "items": resp}}}
	}
	if elem, ok := orderedMapElem(t); ok {
		return map[string]any{"type": "object", "additionalProperties": g.schema(elem)}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.schema(t.Elem())
	case reflect.Struct:
		name := defName(t)
		if _, done := g.defs[name]; !done {
			g.defs[name] = true // placeholder against recursion
			g.defs[name] = g.object(t)
		}
		return map[string]any{"$ref": "#/$defs/" + name}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.String:
		return scalar()
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Interface:
		return map[string]any{}
	}
	panic(fmt.Sprintf("schema: no mapping for %s", t))
}

// defName names t's definition; test case types get a Test prefix so
// they do not clash with the integration's (Response).
func defName(t reflect.Type) string {
	if strings.HasSuffix(t.PkgPath(), "/testcase") {
		return "Test" + t.Name()
	}
	return t.Name()
}

// orderedMapElem recognises steps.Map[T] (testcase.Map[T] is an alias): slices of
// entries with Key, Pos and Value fields.
func orderedMapElem(t reflect.Type) (reflect.Type, bool) {
	if t.Kind() != reflect.Slice || t.Elem().Kind() != reflect.Struct || !strings.HasPrefix(t.Name(), "Map[") {
		return nil, false
	}
	f, ok := t.Elem().FieldByName("Value")
	if !ok {
		return nil, false
	}
	return f.Type, true
}

// object is the schema of a struct: its tagged fields, closed.
func (g *gen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	g.fields(t, defName(t), props, &required)
	out := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if d, ok := godoc[defName(t)]; ok {
		out["description"] = d
	}
	if len(required) > 0 {
		sort.Strings(required)
		out["required"] = required
	}
	return out
}

func (g *gen) fields(t reflect.Type, owner string, props map[string]any, required *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "inline" {
			g.fields(f.Type, owner, props, required)
			continue
		}
		var s map[string]any
		if t == integrationTy && name == "tests" {
			s = map[string]any{"type": "array", "minItems": 1, "items": g.schema(reflect.TypeFor[testcase.Case]())}
		} else {
			s = g.schema(f.Type)
		}
		s = copyMap(s)
		key := owner + "." + name
		d := godoc[key]
		if e, ok := enums[key]; ok {
			delete(s, "type")
			s["enum"] = e
		}
		if v, ok := g.vocab[key]; ok {
			s = vocabSchema(v)
			d += vocabDoc(v)
		}
		if d != "" {
			if _, isRef := s["$ref"]; isRef {
				s = map[string]any{"allOf": []any{s}}
			}
			s["description"] = strings.TrimSpace(d)
		}
		props[name] = s
		if opts == "required" {
			*required = append(*required, name)
		}
	}
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// enums lists the fields whose values are a fixed set that is not part of
// the vocabulary of steps (steps.Vocabulary declares the others).
var enums = map[string][]any{
	"TestExpect.status": {200, 400, 401, 413, 415},
}

// vocabSchema is the schema of a key that takes v: its values, and the
// pattern of the embedder's own (auth type x-NAME).
func vocabSchema(v steps.Vocab) map[string]any {
	values := make([]any, len(v.Choices))
	for i, c := range v.Choices {
		values[i] = string(c.Value)
	}
	if v.Extension == "" {
		return map[string]any{"enum": values}
	}
	return map[string]any{"anyOf": []any{
		map[string]any{"enum": values},
		map[string]any{"type": "string", "pattern": "^" + regexp.QuoteMeta(v.Extension)},
	}}
}

// vocabDoc lists v's values with what each means, for a description.
func vocabDoc(v steps.Vocab) string {
	var b strings.Builder
	for _, c := range v.Choices {
		b.WriteString("\n- " + string(c.Value))
		if c.Value == v.Default {
			b.WriteString(" (default)")
		}
		b.WriteString(": " + c.Doc)
	}
	if v.Unset != "" {
		b.WriteString("\n- not set: " + v.Unset)
	}
	if v.ExtensionDoc != "" {
		b.WriteString("\n- " + v.ExtensionDoc)
	}
	return b.String()
}

// vocabByField indexes steps.Vocabulary by the keys that take each enum.
func vocabByField() map[string]steps.Vocab {
	out := map[string]steps.Vocab{}
	for _, v := range steps.Vocabulary() {
		for _, f := range v.Fields {
			out[f] = v
		}
	}
	return out
}
