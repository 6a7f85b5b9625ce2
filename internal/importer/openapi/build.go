package openapi

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/plumbhq/plumb/internal/importer"
)

// gen builds the integration of one operation.
type gen struct {
	file string
	doc  *openapi3.T
	op   *op
	in   *importer.Integration
	step string
	// fields are the lead fields the request reads, in order.
	fields []*field
	notes  []string
	// body is the request body's kind (json, form, xml, text) and, for a
	// body that is one value (an array), the field holding it.
	bodyKind  string
	bodyMedia string
	whole     *field
	// authHeaders and authQuery are what the test request carries for the
	// credentials; extraHeaders and extraQuery are credentials sent beside
	// auth: (a requirement combining two schemes, a cookie).
	authHeaders, authQuery   *importer.Map
	extraHeaders, extraQuery []importer.KV
	res                      responses
}

// field is one lead field the request reads.
type field struct {
	lead   []string // the lead field path
	where  string   // path, query, header, body
	key    string   // the parameter's or property's name
	prop   []string // the body property path
	schema *openapi3.Schema
	// required fields are read as they are; def is a default the spec
	// gives; null sends null when the lead lacks the field; off fields are
	// written commented out and not sent.
	required bool
	def      any
	null     bool
	off      bool
	// picked fields are sent when the lead has them (a body of optional
	// fields only, written as pick lead "a" "b" …).
	picked  bool
	example any
}

func (f *field) ref() string { return "lead." + strings.Join(f.lead, ".") }

// tmpl is the template reading the field.
func (f *field) tmpl() string {
	switch {
	case f.def != nil:
		return "{{ " + f.ref() + " | default " + goLiteral(f.def) + " }}"
	case f.null:
		return "{{ " + f.ref() + " | default nil }}"
	}
	return "{{" + f.ref() + "}}"
}

// note is the field's line comment.
func (f *field) note() string {
	t := typeNote(f.schema)
	switch {
	case f.required:
		return "required: " + t
	case f.def != nil:
		return "optional: " + t + "; the spec's default when the lead has none"
	case f.null:
		return "optional: " + t + "; null when the lead has none"
	}
	return "optional: " + t + "; uncomment to send it (a lead without it then gets an error)"
}

// goLiteral writes v as a text/template literal.
func goLiteral(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// mode decides how an optional value is read: a string default, a zero
// default (no lead value can be mistaken for it), null where the schema
// allows it, else not sent.
func (f *field) mode(s *openapi3.Schema, body bool) {
	if f.required {
		return
	}
	if s != nil && s.Default != nil {
		switch d := s.Default.(type) {
		case string:
			if d != "" {
				f.def = d
				return
			}
		case bool:
			if !d {
				f.def = false
				return
			}
		case float64:
			if d == 0 {
				f.def = 0
				return
			}
		}
	}
	if body && nullable(s) {
		f.null = true
		return
	}
	f.off = true
}

// build writes the integration of operation o.
func build(file string, doc *openapi3.T, o *op, opts Options) (*importer.Integration, error) {
	in := &importer.Integration{Name: opts.Name}
	if in.Name == "" {
		in.Name = importer.Kebab(firstNonEmpty(o.o.OperationID, o.method+" "+o.path))
	}
	in.Description = firstNonEmpty(o.o.Summary, o.o.Description, o.String())
	title := ""
	if doc.Info != nil {
		title = doc.Info.Title
	}
	in.Header = []string{
		"Imported by `plumb import openapi` from " + file + " (" + strings.TrimSpace(title) + "), operation " +
			firstNonEmpty(o.o.OperationID, "-") + ": " + o.String() + ".",
		"Check it: plumb validate FILE; plumb test FILE. Lines marked TODO(import) need your decision.",
	}
	g := &gen{file: file, doc: doc, op: o, in: in, step: importer.Snake(firstNonEmpty(o.o.OperationID, o.method+" "+lastSegment(o.path)))}
	base, err := g.server(opts.Server)
	if err != nil {
		return nil, err
	}
	g.security()
	step := &importer.Map{}
	step.Set("name", g.step)
	step.Set("request", g.request(base))
	g.response(step)
	if len(g.notes) > 0 {
		step.Get("name").Head = g.notes
	}
	in.Steps = []*importer.Map{step}
	g.tests()
	return in, nil
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if strings.TrimSpace(x) != "" {
			return strings.TrimSpace(x)
		}
	}
	return ""
}

func lastSegment(p string) string {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	for i := len(segs) - 1; i >= 0; i-- {
		if !strings.HasPrefix(segs[i], "{") && segs[i] != "" {
			return segs[i]
		}
	}
	return "root"
}

func (g *gen) note(s string) {
	for _, n := range g.notes {
		if n == s {
			return
		}
	}
	g.notes = append(g.notes, s)
}

var serverVar = regexp.MustCompile(`\{([^{}]+)\}`)

// server declares base_url from --server, or the first server the
// operation, its path or the spec names (variables at their defaults).
func (g *gen) server(flag string) (string, error) {
	u := flag
	servers := g.op.o.Servers
	if servers == nil || len(*servers) == 0 {
		servers = &g.op.item.Servers
	}
	if len(*servers) == 0 {
		servers = &g.doc.Servers
	}
	if u == "" && len(*servers) > 0 && (*servers)[0] != nil {
		s := (*servers)[0]
		u = serverVar.ReplaceAllStringFunc(s.URL, func(m string) string {
			if v := s.Variables[m[1:len(m)-1]]; v != nil && v.Default != "" {
				return v.Default
			}
			return m
		})
		if len(*servers) > 1 {
			g.note("the spec lists " + itoa(len(*servers)) + " servers; base_url is the first (" + u + ")")
		}
	}
	u = strings.TrimRight(u, "/")
	setting := &importer.Setting{Name: "base_url", Default: u}
	parsed, err := url.Parse(u)
	switch {
	case u == "":
		setting.Default, setting.Required = nil, true
		setting.Comment = "TODO(import): the spec names no server: give the partner's base URL"
	case flag != "" && (err != nil || parsed.Host == "" || (parsed.Scheme != "http" && parsed.Scheme != "https")):
		return "", importer.Errorf("give an absolute URL: --server https://api.example.com/v1", "--server %q is not an absolute http(s) URL", flag)
	case err != nil || parsed.Host == "" || strings.Contains(u, "{"):
		setting.Default, setting.Required = nil, true
		setting.Comment = "TODO(import): the spec's server " + strconv.Quote(u) + " is not an absolute URL: give the partner's base URL"
	}
	g.in.AddSetting(setting)
	return "{{settings.base_url}}", nil
}

// params merges the path item's and the operation's parameters.
func (g *gen) params() []*openapi3.Parameter {
	var out []*openapi3.Parameter
	add := func(ps openapi3.Parameters) {
		for _, r := range ps {
			if r == nil || r.Value == nil {
				continue
			}
			p := r.Value
			replaced := false
			for i, q := range out {
				if q.Name == p.Name && q.In == p.In {
					out[i], replaced = p, true
				}
			}
			if !replaced {
				out = append(out, p)
			}
		}
	}
	add(g.op.item.Parameters)
	add(g.op.o.Parameters)
	return out
}

// request writes the step's request: URL with path parameters, query
// and header parameters, body.
func (g *gen) request(base string) *importer.Map {
	req := &importer.Map{}
	req.Set("method", g.op.method)
	path := importer.Literal(g.op.path)
	query, headers := &importer.Map{}, &importer.Map{}
	for _, p := range g.params() {
		s := resolve(p.Schema, g.note)
		f := &field{lead: []string{importer.Ident(p.Name)}, where: p.In, key: p.Name, schema: s,
			required: p.Required || p.In == "path", example: paramExample(p)}
		switch p.In {
		case "path":
			path = strings.ReplaceAll(path, "{"+p.Name+"}", f.tmpl())
		case "query":
			f.mode(s, false)
			e := query.Set(p.Name, f.tmpl())
			e.Comment, e.Off = f.note(), f.off
		case "header":
			switch strings.ToLower(p.Name) {
			case "accept", "content-type", "authorization":
				continue // described elsewhere, as the spec says
			}
			f.mode(s, false)
			e := headers.Set(p.Name, f.tmpl())
			e.Comment, e.Off = f.note(), f.off
		default:
			g.note("TODO(import): the operation takes a " + p.In + " parameter " + p.Name + "; send it in a header if you need it")
			continue
		}
		g.fields = append(g.fields, f)
	}
	req.Set("url", base+path)
	for _, kv := range g.extraQuery {
		query.Set(kv.Key, kv.Value)
	}
	for _, kv := range g.extraHeaders {
		headers.Set(kv.Key, kv.Value)
	}
	if query.Len() > 0 {
		req.Set("query", query)
	}
	if headers.Len() > 0 {
		req.Set("headers", headers)
	}
	if body := g.body(); body != nil {
		req.Set("body", body)
	}
	return req
}

// paramExample is a parameter's own example.
func paramExample(p *openapi3.Parameter) any {
	if p.Example != nil {
		return p.Example
	}
	for _, name := range sortedKeys(p.Examples) {
		if e := p.Examples[name]; e != nil && e.Value != nil && e.Value.Value != nil {
			return e.Value.Value
		}
	}
	return nil
}
