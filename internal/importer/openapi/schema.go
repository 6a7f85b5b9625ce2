package openapi

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/plumbhq/plumb/internal/importer"
)

// maxDepth bounds how deep nested objects become nested lead fields.
const maxDepth = 4

// prop is one property of an object schema.
type prop struct {
	name     string
	schema   *openapi3.Schema
	required bool
	line     int
}

// typeOf is a schema's type (the first that is not null), "" when unsaid
// ("object" when it has properties).
func typeOf(s *openapi3.Schema) string {
	if s == nil {
		return ""
	}
	if s.Type != nil {
		for _, t := range s.Type.Slice() {
			if t != "null" {
				return t
			}
		}
	}
	if len(s.Properties) > 0 || len(s.AllOf) > 0 {
		return "object"
	}
	if s.Items != nil {
		return "array"
	}
	return ""
}

// nullable reports whether null is a valid value of s.
func nullable(s *openapi3.Schema) bool {
	return s != nil && (s.Nullable || (s.Type != nil && s.Type.Includes("null")))
}

// resolve returns the schema a ref holds: for oneOf/anyOf, the first
// alternative (note says so).
func resolve(r *openapi3.SchemaRef, note func(string)) *openapi3.Schema {
	if r == nil || r.Value == nil {
		return nil
	}
	s := r.Value
	for _, alts := range []struct {
		kind string
		refs openapi3.SchemaRefs
	}{{"oneOf", s.OneOf}, {"anyOf", s.AnyOf}} {
		if len(alts.refs) > 0 && len(s.Properties) == 0 {
			if note != nil {
				note(alts.kind + ": the first of its " + itoa(len(alts.refs)) + " alternatives is used")
			}
			return resolve(alts.refs[0], note)
		}
	}
	return s
}

// props lists an object schema's properties (allOf parts merged) in the
// order the document writes them.
func props(s *openapi3.Schema, note func(string)) []prop {
	seen := map[*openapi3.Schema]bool{}
	var out []prop
	var walk func(s *openapi3.Schema)
	walk = func(s *openapi3.Schema) {
		if s == nil || seen[s] {
			return
		}
		seen[s] = true
		for _, part := range s.AllOf {
			walk(resolve(part, note))
		}
		for name, r := range s.Properties {
			ps := resolve(r, note)
			p := prop{name: name, schema: ps, line: lineOf(r)}
			if i := index(out, name); i >= 0 {
				out[i].schema = ps
				continue
			}
			out = append(out, p)
		}
		for _, req := range s.Required {
			if i := index(out, req); i >= 0 {
				out[i].required = true
			}
		}
	}
	walk(s)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].line != out[j].line {
			return out[i].line < out[j].line
		}
		return out[i].name < out[j].name
	})
	return out
}

func index(ps []prop, name string) int {
	for i, p := range ps {
		if p.name == name {
			return i
		}
	}
	return -1
}

// lineOf is where a property is written (0 when unknown: sorted by name).
func lineOf(r *openapi3.SchemaRef) int {
	if r.Origin != nil && r.Origin.Key != nil {
		return r.Origin.Key.Line
	}
	if r.Value != nil && r.Value.Origin != nil && r.Value.Origin.Key != nil {
		return r.Value.Origin.Key.Line
	}
	return 0
}

// exampleOf is a schema's own example value: example, examples[0],
// default, const, enum[0]; nil when it has none.
func exampleOf(s *openapi3.Schema) any {
	switch {
	case s == nil:
		return nil
	case s.Example != nil:
		return s.Example
	case len(s.Examples) > 0:
		return s.Examples[0]
	case s.Default != nil:
		return s.Default
	case s.Const != nil:
		return s.Const
	case len(s.Enum) > 0:
		return s.Enum[0]
	}
	return nil
}

// sample is a value of schema s for a test lead or answer: its example,
// else one made from its type and format.
func sample(name string, s *openapi3.Schema, depth int) any {
	if v := exampleOf(s); v != nil {
		return importer.Ordered(v)
	}
	switch typeOf(s) {
	case "integer":
		return 1
	case "number":
		return 1.5
	case "boolean":
		return true
	case "array":
		l := &importer.List{}
		if depth < maxDepth && s.Items != nil {
			l.Add(sample(name, resolve(s.Items, nil), depth+1))
		}
		return l
	case "object":
		m := &importer.Map{}
		if depth < maxDepth {
			for _, p := range props(s, nil) {
				if p.required && !p.schema.ReadOnly {
					m.Set(p.name, sample(p.name, p.schema, depth+1))
				}
			}
		}
		return m
	}
	return sampleString(name, s)
}

func sampleString(name string, s *openapi3.Schema) string {
	format := ""
	if s != nil {
		format = s.Format
	}
	switch format {
	case "email":
		return "jane.doe@example.com"
	case "date":
		return "2024-05-17"
	case "date-time":
		return "2024-05-17T09:30:00Z"
	case "uuid":
		return "3fa85f64-5717-4562-b3fc-2c963f66afa6"
	case "uri", "url":
		return "https://example.com/"
	case "byte":
		return "ZXhhbXBsZQ=="
	}
	return "example " + strings.ToLower(strings.Join(importer.Words(name), " "))
}

// typeNote describes a schema for a line comment: "string, email".
func typeNote(s *openapi3.Schema) string {
	t := typeOf(s)
	if t == "" {
		t = "any"
	}
	if s != nil && s.Format != "" {
		t += ", " + s.Format
	}
	if s != nil && len(s.Enum) > 0 && len(s.Enum) <= 6 {
		b, _ := json.Marshal(s.Enum)
		t += ", one of " + string(b)
	}
	return t
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
