package openapi

import (
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/plumbhq/plumb/internal/importer"
)

// mediaOrder ranks request media types: JSON, then forms, then XML, then
// text.
func mediaRank(mt string) int {
	mt = strings.ToLower(mt)
	switch {
	case mt == "application/json":
		return 0
	case strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "/json"):
		return 1
	case mt == "application/x-www-form-urlencoded":
		return 2
	case mt == "multipart/form-data":
		return 3
	case strings.HasSuffix(mt, "/xml") || strings.HasSuffix(mt, "+xml"):
		return 4
	case strings.HasPrefix(mt, "text/"):
		return 5
	}
	return 6
}

// pickMedia returns the content's best media type.
func pickMedia(c openapi3.Content) (string, *openapi3.MediaType) {
	types := make([]string, 0, len(c))
	for mt := range c {
		types = append(types, mt)
	}
	sort.Slice(types, func(i, j int) bool {
		ri, rj := mediaRank(types[i]), mediaRank(types[j])
		if ri != rj {
			return ri < rj
		}
		return types[i] < types[j]
	})
	if len(types) == 0 {
		return "", nil
	}
	return types[0], c[types[0]]
}

// body writes the request body from the operation's requestBody.
func (g *gen) body() *importer.Map {
	rb := g.op.o.RequestBody
	if rb == nil || rb.Value == nil {
		return nil
	}
	mt, media := pickMedia(rb.Value.Content)
	if media == nil {
		return nil
	}
	g.bodyMedia = mt
	s := resolve(media.Schema, g.note)
	body := &importer.Map{}
	switch r := mediaRank(mt); {
	case r <= 1:
		g.bodyKind = "json"
		body.Set("json", g.jsonBody(s))
	case r <= 3:
		g.bodyKind = "form"
		e := body.Set("form", g.formBody(s))
		if r == 3 {
			e.Head = []string{"TODO(import): the spec sends multipart/form-data; plumb sends these fields urlencoded: check the partner accepts that"}
		}
	case r == 4:
		g.bodyKind = "xml"
		body.Set("xml", "<!-- TODO(import): write the XML the partner expects, with {{lead.NAME}} for lead fields -->\n").Head =
			[]string{"TODO(import): the spec sends " + mt + "; plumb cannot build the XML from the schema"}
	default:
		g.bodyKind = "text"
		g.whole = &field{lead: []string{"body"}, where: "body", key: "body", schema: s, required: true}
		g.fields = append(g.fields, g.whole)
		body.Set("text", g.whole.tmpl()).Comment = "TODO(import): the spec sends " + mt + "; check the text the lead's body field holds"
	}
	if mediaRank(mt) != 0 && mediaRank(mt) != 2 && g.bodyKind != "text" {
		body.Set("content_type", mt)
	}
	return body
}

// jsonBody is a JSON body mirroring the schema: each property a lead field
// of the same name (nested objects nested fields).
func (g *gen) jsonBody(s *openapi3.Schema) any {
	if typeOf(s) != "object" || len(props(s, nil)) == 0 {
		name := "body"
		if typeOf(s) == "array" {
			name = "items"
		}
		g.whole = &field{lead: []string{name}, where: "body", key: name, schema: s, required: true}
		g.fields = append(g.fields, g.whole)
		return g.whole.tmpl()
	}
	if ps := props(s, g.note); !anyRequired(ps) {
		return g.pick(ps)
	}
	return g.object(s, nil, nil, 0, false)
}

func anyRequired(ps []prop) bool {
	for _, p := range ps {
		if p.required && (p.schema == nil || !p.schema.ReadOnly) {
			return true
		}
	}
	return false
}

// pick writes a body whose properties are all optional (a PATCH): it sends
// the lead fields of those names that the lead has, and no others.
func (g *gen) pick(ps []prop) any {
	var names []string
	for _, p := range ps {
		if p.schema != nil && p.schema.ReadOnly {
			continue
		}
		names = append(names, strconv.Quote(p.name))
		g.fields = append(g.fields, &field{lead: []string{p.name}, where: "body", key: p.name, prop: []string{p.name}, schema: p.schema, picked: true})
	}
	g.note("every body property is optional: the body holds those of " + strings.Join(names, ", ") + " that the lead has")
	return "{{ pick lead " + strings.Join(names, " ") + " }}"
}

// object writes an object schema's properties (read-only ones are not
// sent); off is set inside an optional object that is not sent.
func (g *gen) object(s *openapi3.Schema, lead, path []string, depth int, off bool) *importer.Map {
	m := &importer.Map{}
	for _, p := range props(s, g.note) {
		if p.schema != nil && p.schema.ReadOnly {
			continue
		}
		l := append(append([]string(nil), lead...), importer.Ident(p.name))
		pp := append(append([]string(nil), path...), p.name)
		if typeOf(p.schema) == "object" && len(props(p.schema, nil)) > 0 && depth+1 < maxDepth {
			childOff := off || !p.required
			e := m.Set(p.name, g.object(p.schema, l, pp, depth+1, childOff))
			if !p.required && !off {
				e.Off, e.Comment = true, "optional object: uncomment to send it"
			}
			continue
		}
		f := &field{lead: l, where: "body", key: p.name, prop: pp, schema: p.schema, required: p.required && !off}
		if off {
			f.off = true
		} else {
			f.mode(p.schema, true)
		}
		g.fields = append(g.fields, f)
		e := m.Set(p.name, f.tmpl())
		e.Comment = f.note()
		e.Off = f.off && !off
	}
	return m
}

// formBody is a form body: one field per property.
func (g *gen) formBody(s *openapi3.Schema) *importer.Map {
	m := &importer.Map{}
	for _, p := range props(s, g.note) {
		if p.schema != nil && p.schema.ReadOnly {
			continue
		}
		f := &field{lead: []string{importer.Ident(p.name)}, where: "body", key: p.name, prop: []string{p.name}, schema: p.schema, required: p.required}
		f.mode(p.schema, false)
		g.fields = append(g.fields, f)
		e := m.Set(p.name, f.tmpl())
		e.Comment, e.Off = f.note(), f.off
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
