package openapi

import (
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/plumbhq/plumb/internal/importer"
)

// maxCaptures bounds the captures made from the success schema.
const maxCaptures = 12

// responses is what the operation documents about its answers.
type responses struct {
	status int    // the success status (0: none documented)
	media  string // its media type
	schema *openapi3.Schema
	caps   []capture
	// reason is the capture holding the partner's error message.
	reason     string
	reasonPath string
	// fail are the documented 4xx statuses that are failures; retry the
	// documented 429 and 503.
	fail, retry []int
	descr       map[int]string
}

// capture is one capture made from the success schema.
type capture struct {
	name, path, typ string
	redact          bool
}

// statusOf reads a response key: "201" → 201, "2XX" → 200.
func statusOf(key string) int {
	if n, err := strconv.Atoi(key); err == nil {
		return n
	}
	if len(key) == 3 && strings.EqualFold(key[1:], "XX") && key[0] >= '1' && key[0] <= '5' {
		return int(key[0]-'0') * 100
	}
	return 0
}

// response writes the step's captures, outcome reason and rules.
func (g *gen) response(step *importer.Map) {
	g.res.descr = map[int]string{}
	if g.op.o.Responses == nil {
		return
	}
	keys := g.op.o.Responses.Keys()
	sort.Strings(keys)
	for _, k := range keys {
		r := g.op.o.Responses.Value(k)
		st := statusOf(k)
		if r == nil || r.Value == nil || st == 0 {
			continue
		}
		if r.Value.Description != nil {
			g.res.descr[st] = oneLine(*r.Value.Description, 50)
		}
		switch {
		case st/100 == 2 && g.res.status == 0:
			g.res.status = st
			g.res.media, _ = pickMedia(r.Value.Content)
			if mt := r.Value.Content[g.res.media]; mt != nil {
				g.res.schema = resolve(mt.Schema, nil)
			}
		case st == 429 || st == 503:
			g.res.retry = append(g.res.retry, st)
		case st/100 == 4 && st != 401 && st != 407 && st != 408:
			g.res.fail = append(g.res.fail, st)
		}
	}
	g.captures(step)
	g.errorReason(step)
	g.rules(step)
}

// captures capture the success schema's scalar fields (and those of its
// objects one level down); an array answer gives its length.
func (g *gen) captures(step *importer.Map) {
	s := g.res.schema
	if s == nil || mediaRank(g.res.media) > 1 {
		return
	}
	if typeOf(s) == "array" {
		g.res.caps = append(g.res.caps, capture{name: "count", path: "#", typ: "int"})
	}
	var skipped []string
	for _, p := range props(s, nil) {
		if p.schema != nil && p.schema.WriteOnly {
			continue
		}
		if typeOf(p.schema) == "object" {
			for _, c := range props(p.schema, nil) {
				g.addCapture(p.name+"."+c.name, c.schema, &skipped)
			}
			continue
		}
		g.addCapture(p.name, p.schema, &skipped)
	}
	if len(g.res.caps) == 0 {
		return
	}
	m := &importer.Map{}
	for _, c := range g.res.caps {
		x := importer.FlowMap("json", c.path)
		if c.typ != "" {
			x.Set("type", c.typ)
		}
		if c.redact {
			x.Set("redact", true)
		}
		m.Set(c.name, x)
	}
	head := []string{"from the " + strconv.Itoa(g.res.status) + " answer's schema: TODO(import): keep the captures you use (append: writes them onto the lead)"}
	if len(skipped) > 0 {
		head = append(head, "not captured: "+strings.Join(skipped, ", "))
	}
	step.Set("response", importer.FlowMap("format", "json"))
	step.Set("capture", m).Head = head
}

// addCapture adds a capture of a scalar field at path.
func (g *gen) addCapture(path string, s *openapi3.Schema, skipped *[]string) {
	t := typeOf(s)
	if t == "object" || t == "array" || (s != nil && s.WriteOnly) || strings.ContainsAny(path, `*?|#@\!=<>%"`) {
		*skipped = append(*skipped, path)
		return
	}
	if len(g.res.caps) >= maxCaptures {
		*skipped = append(*skipped, path)
		return
	}
	c := capture{name: importer.Snake(path), path: path, redact: importer.SecretName(path[strings.LastIndexByte(path, '.')+1:])}
	switch t {
	case "integer":
		c.typ = "int"
	case "number":
		c.typ = "number"
	case "boolean":
		c.typ = "bool"
	}
	c.name = importer.Unique(c.name, func(n string) bool {
		for _, x := range g.res.caps {
			if x.name == n {
				return true
			}
		}
		return false
	})
	g.res.caps = append(g.res.caps, c)
}

// messageFields are the error fields read as the partner's reason, best
// first.
var messageFields = []string{"message", "detail", "error_description", "error", "title", "description", "msg"}

// errorReason captures the partner's message from the error answers'
// schema and makes it the step's reason.
func (g *gen) errorReason(step *importer.Map) {
	keys := g.op.o.Responses.Keys()
	sort.Strings(keys)
	for _, k := range keys {
		st := statusOf(k)
		r := g.op.o.Responses.Value(k)
		if r == nil || r.Value == nil || (st != 0 && st < 400) || (st == 0 && k != "default") {
			continue
		}
		_, mt := pickMedia(r.Value.Content)
		if mt == nil {
			continue
		}
		if path := messagePath(resolve(mt.Schema, nil)); path != "" {
			g.res.reason, g.res.reasonPath = importer.Unique("error_message", g.captured), path
			break
		}
	}
	if g.res.reason == "" {
		return
	}
	if g.res.schema == nil || mediaRank(g.res.media) > 1 {
		// a JSON capture fails on a success answer without a JSON body
		g.note("TODO(import): the error answers carry the partner's message in " + g.res.reasonPath +
			"; the success answer has no JSON body, so a capture of it would fail there: write outcome.reason if you need it")
		g.res.reason = ""
		return
	}
	caps, _ := step.Get("capture").ValueMap()
	if caps == nil {
		caps = &importer.Map{}
		step.Set("capture", caps)
	}
	caps.Set(g.res.reason, importer.FlowMap("json", g.res.reasonPath)).Comment = "the partner's message on an error answer"
	step.Set("outcome", importer.FlowMap("reason", "{{captured."+g.res.reason+"}}"))
}

func (g *gen) captured(n string) bool {
	for _, c := range g.res.caps {
		if c.name == n {
			return true
		}
	}
	return false
}

// messagePath finds the message field of an error schema (error.message
// one level down).
func messagePath(s *openapi3.Schema) string {
	ps := props(s, nil)
	for _, want := range messageFields {
		for _, p := range ps {
			if strings.EqualFold(p.name, want) && typeOf(p.schema) == "string" {
				return p.name
			}
		}
	}
	for _, p := range ps {
		if typeOf(p.schema) == "object" {
			if sub := messagePath(p.schema); sub != "" && !strings.Contains(sub, ".") {
				return p.name + "." + sub
			}
		}
	}
	return ""
}

// rules writes retry rules for the documented 429 and 503 and a fail rule
// for the documented 4xx answers.
func (g *gen) rules(step *importer.Map) {
	l := &importer.List{}
	for _, st := range g.res.retry {
		r := importer.FlowMap("on", flowInts(st), "action", "retry")
		if st == 429 {
			r.Set("max_attempts", 5)
		}
		l.Add(r).Comment = strconv.Itoa(st) + " " + g.res.descr[st] + " (documented)"
	}
	if len(g.res.fail) > 0 {
		var d []string
		for _, st := range g.res.fail {
			d = append(d, strconv.Itoa(st)+" "+g.res.descr[st])
		}
		l.Add(importer.FlowMap("on", flowInts(g.res.fail...), "action", "fail")).Comment = "the partner says no: " + strings.Join(d, "; ")
	}
	if len(l.Items) == 0 {
		return
	}
	step.Set("retry", l).Head = []string{"the answers the spec documents; plumb's defaults already retry 429 and 503 and fail other 4xx, these rules say so in the file: TODO(import): check each action"}
}

func flowInts(xs ...int) *importer.List {
	l := &importer.List{Flow: true}
	for _, x := range xs {
		l.Add(x)
	}
	return l
}
