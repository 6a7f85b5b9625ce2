package openapi

import (
	"encoding/json"
	"math"
	"strings"

	"github.com/plumbhq/plumb/internal/importer"
)

// lead makes a case's lead from a request example (nil: from the
// parameters' and schema's examples): every field the request sends, the
// required ones always. vals are the values the request then sends.
func (g *gen) lead(reqExample any) (*importer.Map, map[*field]any) {
	lead, vals := &importer.Map{}, map[*field]any{}
	for _, f := range g.fields {
		if f.off {
			continue
		}
		var v any
		switch {
		case f == g.whole:
			v = reqExample
		case f.where == "body" && reqExample != nil:
			v = lookup(reqExample, f.prop)
		case f.where != "body":
			v = f.example
		}
		if v == nil && (f.required || (f.picked && reqExample == nil && f == g.firstPicked())) {
			v = sample(f.key, f.schema, 0)
		}
		if v == nil {
			switch {
			case f.def != nil:
				vals[f] = f.def
			case f.null:
				vals[f] = nil
			}
			continue
		}
		v = importer.Ordered(v)
		setPath(lead, f.lead, v)
		vals[f] = v
	}
	return lead, vals
}

// firstPicked is the first picked field: a case made from the schema
// sends that one.
func (g *gen) firstPicked() *field {
	for _, f := range g.fields {
		if f.picked {
			return f
		}
	}
	return nil
}

// setPath sets a nested value in an ordered map.
func setPath(m *importer.Map, path []string, v any) {
	for _, p := range path[:len(path)-1] {
		e := m.Get(p)
		if e == nil {
			e = m.Set(p, &importer.Map{})
		}
		sub, ok := e.Value.(*importer.Map)
		if !ok {
			return
		}
		m = sub
	}
	m.Set(path[len(path)-1], v)
}

// matcher is what the test request must carry for the values vals.
func (g *gen) matcher(vals map[*field]any) *importer.Map {
	m := &importer.Map{Flow: true}
	m.Set("method", g.op.method)
	path := g.op.path
	query, headers := &importer.Map{Flow: true}, &importer.Map{Flow: true}
	body := &importer.Map{}
	for _, f := range g.fields {
		v, sent := vals[f]
		if !sent {
			continue
		}
		switch f.where {
		case "path":
			path = strings.ReplaceAll(path, "{"+f.key+"}", importer.Text(v))
		case "query":
			query.Set(f.key, importer.Text(v))
		case "header":
			headers.Set(f.key, importer.Text(v))
		case "body":
			if f == g.whole {
				if g.bodyKind == "json" {
					m.Set("body", importer.Flowed(importer.Copy(v)))
				}
				continue
			}
			if g.bodyKind == "form" {
				v = importer.Text(v)
			}
			setPath(body, f.prop, importer.Copy(v))
		}
	}
	m.Set("path", path)
	for _, e := range g.authQuery.Entries {
		query.Set(e.Key, e.Value)
	}
	for _, e := range g.authHeaders.Entries {
		headers.Set(e.Key, e.Value)
	}
	if query.Len() > 0 {
		m.Set("query", query)
	}
	if headers.Len() > 0 {
		m.Set("headers", headers)
	}
	if body.Len() > 0 {
		switch g.bodyKind {
		case "json":
			m.Set("body", body)
		case "form":
			m.Set("form", importer.Flowed(body))
		}
	}
	return m
}

// expectCaptures are the captures a served answer must give.
func (g *gen) expectCaptures(resp *importer.Response) *importer.Map {
	out := &importer.Map{Flow: true}
	if resp == nil || resp.JSON == nil {
		return out
	}
	body := importer.Plain(resp.JSON)
	for _, c := range g.res.caps {
		if c.redact {
			continue
		}
		var v any
		if c.path == "#" {
			if l, ok := body.([]any); ok {
				v = len(l)
			}
		} else {
			v = lookup(body, strings.Split(c.path, "."))
		}
		if w, ok := converted(v, c.typ); ok {
			out.Set(c.name, w)
		}
	}
	return out
}

// converted is the value a capture of type typ gives for v, when it is
// sure to (nil, and values the type would refuse or change, are left out).
func converted(v any, typ string) (any, bool) {
	switch x := v.(type) {
	case nil:
		return nil, false
	case string:
		return x, typ == "" && x == strings.TrimSpace(x) && x != ""
	case bool:
		return x, typ == "" || typ == "bool"
	case int:
		return x, typ != "bool"
	case int64:
		return x, typ != "bool"
	case float64:
		if typ == "int" && x != math.Trunc(x) {
			return nil, false
		}
		return x, typ != "bool"
	case json.Number:
		return x, typ != "bool"
	}
	return nil, false
}
