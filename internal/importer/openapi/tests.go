package openapi

import (
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/plumbhq/plumb/internal/importer"
)

// example is a documented example value.
type example struct {
	name  string
	value any
}

// examples lists a media type's examples: its named examples (by name),
// else its example.
func examples(mt *openapi3.MediaType) []example {
	if mt == nil {
		return nil
	}
	var out []example
	for _, name := range sortedKeys(mt.Examples) {
		if e := mt.Examples[name]; e != nil && e.Value != nil && e.Value.Value != nil {
			out = append(out, example{name, e.Value.Value})
		}
	}
	if len(out) == 0 && mt.Example != nil {
		out = append(out, example{"example", mt.Example})
	}
	return out
}

// requestExamples are the request body's examples.
func (g *gen) requestExamples() []example {
	rb := g.op.o.RequestBody
	if rb == nil || rb.Value == nil {
		return nil
	}
	_, mt := pickMedia(rb.Value.Content)
	return examples(mt)
}

// answerExamples are the examples of the answer with status key.
func (g *gen) answerExamples(status int) []example {
	r := g.op.o.Responses.Status(status)
	if r == nil || r.Value == nil {
		return nil
	}
	_, mt := pickMedia(r.Value.Content)
	return examples(mt)
}

// tests writes a case per documented example (a request example paired
// with the answer example of the same name), one made from the schema when
// there is none, one per documented error answer, and one per retry rule.
func (g *gen) tests() {
	if g.in.NeedsLogin() {
		return // plumb test cannot log in; the file's header says so
	}
	reqs, answers := g.requestExamples(), []example(nil)
	if g.res.status != 0 {
		answers = g.answerExamples(g.res.status)
	}
	switch {
	case len(reqs) > 0:
		for _, rq := range reqs {
			ans := match(answers, rq.name)
			g.addCase("example "+rq.name+": the documented request succeeds", rq.value, g.success(ans))
			if unsent := g.unsent(rq.value); len(unsent) > 0 {
				g.in.Tests[len(g.in.Tests)-1].Set("description", "the example also gives "+strings.Join(unsent, ", ")+
					": optional fields this file does not send (TODO(import): uncomment them in the body to send them)")
				g.in.Tests[len(g.in.Tests)-1].Order("name", "description")
			}
		}
	case len(answers) > 0:
		for _, a := range answers {
			g.addCase("example "+a.name+": the documented answer is captured", nil, g.success(&a))
		}
	default:
		g.addCase("success (lead and answer made from the schema: no documented example)", nil, g.success(nil))
	}
	g.errorCases()
	for _, st := range g.res.retry {
		g.retryCase(st)
	}
	if len(g.in.Tests) > 0 {
		g.in.TestsHead = []string{"Test cases (plumb test FILE): each serves the answer under responses and checks expect."}
	}
}

// unsent lists the body fields a request example gives that are not sent.
func (g *gen) unsent(example any) []string {
	var out []string
	for _, f := range g.fields {
		if f.off && f.where == "body" && lookup(example, f.prop) != nil {
			out = append(out, strings.Join(f.prop, "."))
		}
	}
	return out
}

// match is the answer example named name, else the first.
func match(answers []example, name string) *example {
	for i := range answers {
		if answers[i].name == name {
			return &answers[i]
		}
	}
	if len(answers) > 0 {
		return &answers[0]
	}
	return nil
}

// success is the answer a success case serves: the example, else one made
// from the schema.
func (g *gen) success(ex *example) *importer.Response {
	r := &importer.Response{Status: g.res.status}
	if r.Status == 0 {
		r.Status = 200
	}
	if mediaRank(g.res.media) > 1 {
		return r
	}
	switch {
	case ex != nil:
		r.JSON = importer.Ordered(ex.value)
	case g.res.schema != nil:
		r.JSON = sample("answer", g.res.schema, 0)
	}
	if g.res.media != "" && g.res.media != "application/json" && r.JSON != nil {
		r.Headers = []importer.KV{{Key: "Content-Type", Value: g.res.media}}
	}
	return r
}

// errorCases serve each documented failure answer that has an example, or
// one made from the error schema, and expect its message as the reason.
func (g *gen) errorCases() {
	done := false
	for _, st := range g.res.fail {
		for _, ex := range g.answerExamples(st) {
			resp := &importer.Response{Status: st, JSON: importer.Ordered(ex.value)}
			g.addCaseReason("documented "+itoa(st)+" answer ("+ex.name+") is a failure", resp, g.reasonIn(resp.JSON))
			done = true
		}
	}
	if done || len(g.res.fail) == 0 || g.res.reason == "" {
		return
	}
	st := g.res.fail[0]
	msg := "example " + strings.ToLower(firstNonEmpty(g.res.descr[st], "error"))
	body := &importer.Map{}
	parts := strings.Split(g.res.reasonPath, ".")
	m := body
	for _, p := range parts[:len(parts)-1] {
		sub := &importer.Map{}
		m.Set(p, sub)
		m = sub
	}
	m.Set(parts[len(parts)-1], msg)
	g.addCaseReason("a "+itoa(st)+" answer is a failure with the partner's message", &importer.Response{Status: st, JSON: body}, msg)
}

// reasonIn is the message an error body holds at the reason path.
func (g *gen) reasonIn(body any) string {
	if g.res.reasonPath == "" {
		return ""
	}
	v := lookup(importer.Plain(body), strings.Split(g.res.reasonPath, "."))
	if s, ok := v.(string); ok && strings.TrimSpace(s) != "" && len(s) < 200 {
		return strings.TrimSpace(s)
	}
	return ""
}

// retryCase serves the documented 429 or 503 once, then a success.
func (g *gen) retryCase(st int) {
	lead, vals := g.lead(nil)
	ok := g.success(nil)
	before := &importer.Response{Status: st}
	if st == 429 {
		before.Headers = []importer.KV{{Key: "Retry-After", Value: "1"}}
	}
	t := &importer.StepTest{Step: g.step, Request: g.matcher(vals), Response: ok, Before: []*importer.Response{before}}
	g.in.Tests = append(g.in.Tests, importer.BuildCase(g.in, "a "+itoa(st)+" answer is retried", "", lead, []*importer.StepTest{t}))
}

// addCase adds a case whose lead comes from a request example (nil: from
// the parameters' and schema's examples) and which is served resp.
func (g *gen) addCase(name string, reqExample any, resp *importer.Response) {
	lead, vals := g.lead(reqExample)
	t := &importer.StepTest{Step: g.step, Request: g.matcher(vals), Response: resp, Captured: g.expectCaptures(resp)}
	g.in.Tests = append(g.in.Tests, importer.BuildCase(g.in, name, "", lead, []*importer.StepTest{t}))
}

func (g *gen) addCaseReason(name string, resp *importer.Response, reason string) {
	lead, vals := g.lead(nil)
	t := &importer.StepTest{Step: g.step, Request: g.matcher(vals), Response: resp, Reason: reason}
	g.in.Tests = append(g.in.Tests, importer.BuildCase(g.in, name, "", lead, []*importer.StepTest{t}))
}

// lookup reads a dotted path in a plain value.
func lookup(v any, path []string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}
