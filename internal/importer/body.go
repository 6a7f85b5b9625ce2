package importer

import (
	"net/url"
	"strings"
)

// defaultTypes are the Content-Types plumb sends for each body kind.
var defaultTypes = map[string]string{
	"json": "application/json", "form": "application/x-www-form-urlencoded",
	"xml": "text/xml; charset=utf-8", "text": "text/plain; charset=utf-8",
}

// body writes the request's body: a JSON body's and a form's fields
// become lead fields (credentials secret settings), other bodies are
// copied as text.
func (b *Builder) body(r *Recorded, req, headers *Map, st *StepTest, ctype string) {
	mt := mediaType(ctype)
	b.literals = b.KeepLiterals && (HasRef(r.Body) || formHasRef(r.Form))
	body := &Map{}
	kind := ""
	switch {
	case len(r.Form) > 0 || r.Multipart || (mt == "application/x-www-form-urlencoded" && r.Body != ""):
		kind = "form"
		fields := r.Form
		if len(fields) == 0 {
			fields = parseForm(r.Body)
		}
		form, match := b.form(fields)
		e := body.Set("form", form)
		if r.Multipart {
			e.Head = []string{"TODO(import): the request was multipart/form-data; plumb sends these fields urlencoded: check the partner accepts that"}
		}
		st.Request.Set("form", match)
	case r.Body == "":
	case isJSONType(mt) || (mt == "" && looksJSON(r.Body)):
		v, err := ParseJSON([]byte(quoteBareRefs(r.Body)))
		if err != nil {
			kind = "text"
			body.Set("text", b.template(r.Body, atBody, "")).Head = []string{"TODO(import): the body is not valid JSON (" + err.Error() + "); it is sent as text"}
			break
		}
		if _, ok := v.(string); ok {
			// a JSON text that is a bare string: a json: body that is a
			// string is a JSON text template, so it is sent as recorded
			kind = "text"
			body.Set("text", b.template(r.Body, atBody, "")).Head = []string{"TODO(import): the JSON body is a bare string; it is sent as recorded"}
			st.Request.Set("body_contains", firstLine(b.render(r.Body, atBody, "")))
			break
		}
		kind = "json"
		tmpl, want := b.jsonValue(v, nil, "")
		body.Set("json", tmpl)
		if known(want) {
			st.Request.Set("body", compact(want))
		}
	case isXMLType(mt):
		kind = "xml"
		body.Set("xml", b.template(r.Body, atBody, "")).Head = []string{"TODO(import): the XML is copied as recorded; write {{lead.NAME}} where a value comes from the lead"}
		st.Request.Set("body_contains", firstLine(b.render(r.Body, atBody, "")))
	default:
		kind = "text"
		body.Set("text", b.template(r.Body, atBody, "")).Head = []string{"TODO(import): the body is copied as recorded; write {{lead.NAME}} where a value comes from the lead"}
		st.Request.Set("body_contains", firstLine(b.render(r.Body, atBody, "")))
	}
	if kind == "" {
		if ctype != "" {
			headers.Set("Content-Type", Literal(ctype))
		}
		return
	}
	req.Set("body", body)
	if ctype != "" && ctype != defaultTypes[kind] && !(r.Multipart && kind == "form") {
		headers.Set("Content-Type", Literal(ctype))
		mh, _ := st.Request.Get("headers").ValueMap()
		if mh == nil {
			mh = &Map{Flow: true}
			st.Request.Set("headers", mh)
		}
		mh.Set("Content-Type", ctype)
	}
}

// ValueMap returns the entry's value when it is a mapping.
func (e *Entry) ValueMap() (*Map, bool) {
	if e == nil {
		return nil, false
	}
	m, ok := e.Value.(*Map)
	return m, ok
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if r := []rune(s); len(r) > 60 {
		s = string(r[:60])
	}
	return strings.TrimSpace(s)
}

func looksJSON(s string) bool {
	s = strings.TrimSpace(s)
	return strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[")
}

// parseForm splits a urlencoded body into its fields, in order.
func parseForm(s string) []KV {
	var out []KV
	for _, part := range strings.Split(s, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		out = append(out, KV{k, v})
	}
	return out
}

// form maps form fields: credentials to secret settings, references to
// templates, other values to lead fields named after them.
func (b *Builder) form(fields []KV) (*Map, *Map) {
	form, match := &Map{}, &Map{Flow: true}
	for _, f := range fields {
		switch {
		case f.Key == "":
			continue // a value without a name: nothing plumb can write
		case HasRef(f.Value):
			form.Set(f.Key, b.template(f.Value, atBody, f.Key))
			expect(match, f.Key, b.render(f.Value, atBody, f.Key))
		case SecretName(f.Key) && f.Value != "":
			x := b.secretLiteral(f.Key)
			form.Set(f.Key, "{{"+x.expr+"}}")
			match.Set(f.Key, textOf(x.test))
		case b.literals:
			form.Set(f.Key, Literal(f.Value))
			match.Set(f.Key, f.Value)
		default:
			path := []string{Ident(f.Key)}
			b.setLead(path, f.Value)
			form.Set(f.Key, "{{lead."+path[0]+"}}")
			match.Set(f.Key, textOf(b.leadAt(path)))
		}
	}
	return form, match
}

// leadAt is the test lead's value at a field path.
func (b *Builder) leadAt(path []string) any {
	var v any = b.lead
	for _, p := range path {
		m, ok := v.(*Map)
		if !ok || m.Get(p) == nil {
			return nil
		}
		v = m.Get(p).Value
	}
	return v
}

// jsonValue maps a JSON body: each literal leaf becomes a lead field named
// after its key path (a credential a secret setting), references become
// templates; want is what the test request's body then holds.
func (b *Builder) jsonValue(v any, path []string, key string) (tmpl, want any) {
	switch v := v.(type) {
	case *Map:
		t, w := &Map{}, &Map{}
		for _, e := range v.Entries {
			if e.Key == "" {
				continue // plumb's body keys are names
			}
			et, ew := b.jsonValue(e.Value, append(append([]string(nil), path...), Ident(e.Key)), e.Key)
			t.Set(e.Key, et)
			expect(w, e.Key, ew)
		}
		if len(path) > 0 {
			compactInPlace(t)
		}
		return t, w
	case *List:
		if !containsRef(v) && len(path) > 0 {
			b.setLead(path, Flowed(Copy(v)))
			return "{{lead." + strings.Join(path, ".") + "}}", b.leadAt(path)
		}
		t, w := &List{Flow: true}, &List{}
		for _, e := range v.Items {
			et, ew := b.jsonValue(e.Value, nil, key)
			t.Add(et)
			w.Add(ew)
		}
		return t, w
	case string:
		if HasRef(v) {
			return b.template(v, atBody, key), b.refValue(v, key)
		}
		if SecretName(key) && v != "" {
			x := b.secretLiteral(key)
			return "{{" + x.expr + "}}", x.test
		}
	case nil:
		return nil, nil
	}
	if len(path) == 0 || b.literals {
		if s, ok := v.(string); ok {
			return Literal(s), s
		}
		return v, v // a scalar body stays as it is
	}
	b.setLead(path, v)
	return "{{lead." + strings.Join(path, ".") + "}}", b.leadAt(path)
}

// refValue is what a template of recorded text renders to: the bound
// value itself when the text is one reference (a single action keeps its
// type), else the text.
func (b *Builder) refValue(s, key string) any {
	if name, ok := OnlyRef(s); ok {
		return b.bind(name, atBody, key).test
	}
	return b.render(s, atBody, key)
}

func containsRef(v any) bool {
	switch v := v.(type) {
	case *Map:
		for _, e := range v.Entries {
			if containsRef(e.Value) {
				return true
			}
		}
	case *List:
		for _, e := range v.Items {
			if containsRef(e.Value) {
				return true
			}
		}
	case string:
		return HasRef(v)
	}
	return false
}

func formHasRef(fields []KV) bool {
	for _, f := range fields {
		if HasRef(f.Value) {
			return true
		}
	}
	return false
}

// quoteBareRefs puts quotes around references written outside JSON
// strings ({"age": {{age}}}), so the body parses; the single-action
// template they become keeps the value's type.
func quoteBareRefs(s string) string {
	var b strings.Builder
	inStr, esc := false, false
	for _, r := range s {
		switch {
		case inStr && esc:
			esc = false
		case inStr && r == '\\':
			esc = true
		case r == '"':
			inStr = !inStr
		case !inStr && r == refOpen:
			b.WriteByte('"')
		}
		b.WriteRune(r)
		if !inStr && r == refClose {
			b.WriteByte('"')
		}
	}
	return b.String()
}

// compact writes v on one line when that line is short, else as a block
// whose parts are compacted in turn.
func compact(v any) any {
	if m, ok := v.(*Map); ok {
		compactInPlace(m)
	}
	if l, ok := v.(*List); ok && len(flow(l)) <= 100 {
		Flowed(l)
	}
	return v
}

func compactInPlace(m *Map) {
	if len(flow(m)) <= 100 {
		Flowed(m)
		return
	}
	m.Flow = false
	for _, e := range m.Entries {
		switch v := e.Value.(type) {
		case *Map:
			compactInPlace(v)
		case *List:
			if len(flow(v)) <= 100 {
				Flowed(v)
			}
		}
	}
}
