package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/plumbhq/plumb/internal/cond"
	"github.com/plumbhq/plumb/internal/schedule"
	"github.com/plumbhq/plumb/parse"
	"github.com/plumbhq/plumb/steps"
	"github.com/plumbhq/plumb/template"
)

// step is a compiled steps.Step.
type step struct {
	name     string
	src      *steps.Step
	stage    int
	when     *cond.Program
	method   string
	url      *template.Template
	urls     urlMemo // the last URL rendered, checked
	query    []kv
	headers  []kv
	body     *body
	timeout  time.Duration
	format   parse.Format
	maxBytes int64
	captures []capture
	// jsonCaptures counts the json captures; parsesXML says the answer is
	// parsed as XML (response.format: xml, an xpath capture): see
	// reserveCaptures.
	jsonCaptures int
	parsesXML    bool
	failWhen     *cond.Program
	errWhen      *cond.Program
	reason       *template.Template
	appends      []appendField
	deadline     time.Duration
	rules        []*rule
	fallback     []*fallback
	// cacheKey is the key template of the step's cache link, if any.
	cached   bool
	cacheKey *template.Template
	onError  steps.OnError
	// redirects is the follow_redirects policy ("" is same_origin).
	redirects steps.RedirectPolicy
	// maxAttempts caps the tries whatever the rules say (0: no cap).
	maxAttempts int
	// auth indexes the plan's auth sections (noAuth: none).
	auth      int
	vars      []namedValue
	variants  []*variant
	respCache *respCache
	batch     *batchSpec
	// needsResponse is set when a template or condition reads the response
	// root, so the body is decoded for it only then.
	needsResponse bool
	// redacts is true when a capture is marked redact.
	redacts bool
	// isSource marks the source: request (it may read state and page).
	isSource bool
	// readsSteps is set when the step reads captures of earlier steps.
	readsSteps bool
	// limits and breaker are the step's limits: and breaker: sections.
	limits  *limitSpec
	breaker *breakerSpec
	// reasonRefs are the paths under captured and response that
	// outcome.reason reads: whether it took anything from the answer.
	reasonRefs []string
}

// variant is a compiled route of a step's request.
type variant struct {
	when    *cond.Program
	method  string
	url     *template.Template
	timeout time.Duration
	query   []kv
	headers []kv
	body    *body
	auth    int
}

// respCache is a compiled response cache.
type respCache struct {
	key *template.Template
	ttl time.Duration
}

// fallback is a compiled fallback link.
type fallback struct {
	kind     string // request, cache, defaults, skip
	method   string
	url      *template.Template
	headers  []kv
	timeout  time.Duration
	maxAge   time.Duration
	defaults []namedValue
	flag     string
	note     *template.Template
}

type namedValue struct {
	name string
	val  *value
}

type kv struct {
	key string
	val *template.Template
}

type capture struct {
	name     string
	ext      parse.Extractor
	how      how // what it reads, for the note when it finds nothing
	def      any
	required bool
	redact   bool
	// jsonPath is the gjson path of a json capture ("" for other kinds):
	// what it would decode is reserved from it first (reserveCaptures).
	jsonPath string
}

type appendField struct {
	field string
	path  []string
	val   *value
}

type bodyKind int

const (
	bodyJSON bodyKind = iota + 1
	bodyJSONText
	bodyForm
	bodyXML
	bodyText
)

type body struct {
	kind        bodyKind
	contentType string
	json        *value
	text        *template.Template
	form        []kv
}

// scope says which roots a template or condition may read where it stands.
type scope int

const (
	scopeRequest  scope = iota // lead, settings, vars, steps
	scopeAnswer                // + captured, response
	scopeSettings              // settings only: auth values
	scopeStop                  // a source's stop_when: captured, response, page, state
)

type compiler struct {
	plan *Plan
	in   *steps.Integration
	errs steps.ErrorList
	// step being compiled, for reference checks
	cur *step
	// varsAt is the var whose value is being compiled and varsLater the
	// names of its vars: section not set before it (nil outside vars:).
	varsAt      string
	varsLater   map[string]bool
	names       map[string]stepRef
	defaultAuth int
}

// stepRef places a step for reference checks.
type stepRef struct {
	src   *steps.Step
	stage int
}

func (c *compiler) compile() error {
	c.checkHook()
	if c.in.HTTP != nil {
		c.plan.tls = c.tls(c.in.HTTP.TLS)
		c.allowHosts(c.in.HTTP)
	}
	c.plan.limits = compileLimits(c.in.Limits)
	c.defaultAuth = noAuth
	if c.in.Auth != nil {
		c.defaultAuth = c.authSection(c.in.Auth)
	}
	c.names = map[string]stepRef{}
	for i, item := range c.in.Steps {
		group := []*steps.Step{item}
		if item.Parallel != nil {
			group = item.Parallel
		}
		for _, st := range group {
			c.names[st.Name.Value] = stepRef{src: st, stage: i}
		}
	}
	c.plan.vars = c.vars(c.in.Vars)
	for i, item := range c.in.Steps {
		g := &stage{failFast: item.FailFast}
		group := []*steps.Step{item}
		if item.Parallel != nil {
			group = item.Parallel
		}
		for _, st := range group {
			s := c.step(i, st)
			g.steps = append(g.steps, s)
			c.plan.steps = append(c.plan.steps, s)
		}
		c.plan.stages = append(c.plan.stages, g)
	}
	if src := c.in.Source; src != nil {
		if !src.Name.IsSet() {
			src.Name = steps.String{Value: "source", Pos: src.Pos}
		}
		if src.Request == nil {
			c.errs.Add(src.Pos, "e.g. request: { url: \"{{settings.base_url}}/v1/leads?page={{page.number}}\" }", "source: needs a request")
		} else {
			c.plan.source = c.step(-1, &src.Step)        // stage -1: the source
			c.plan.sourceStop = c.stopWhen(src.StopWhen) // package source evaluates it
			c.sourceReaders(src)
			c.plan.sourceRate = compilePageRate(src.Rate)
		}
		var errs steps.ErrorList
		c.plan.sourceSched, errs = schedule.Compile(src.Schedule) // plumb serve runs it
		c.errs = append(c.errs, errs...)
	}
	return c.errs.Err()
}

// stage is one item of a flow: a step, or a parallel group of steps.
type stage struct {
	steps    []*step
	failFast bool
}

// vars compiles a vars section; step vars may read the integration's.
// Vars are set in the order they are written (flow.compute), so a value
// may read only the vars set before it: c.varsLater holds the names of
// this section not set yet while one of its values is compiled.
func (c *compiler) vars(m steps.Map[steps.Value]) []namedValue {
	out := make([]namedValue, 0, len(m))
	for i, v := range m {
		c.varsLater = map[string]bool{}
		for _, w := range m[i:] {
			c.varsLater[w.Key] = true
		}
		c.varsAt = v.Key
		out = append(out, namedValue{name: v.Key, val: c.value(v.Value, scopeRequest)})
	}
	c.varsLater, c.varsAt = nil, ""
	return out
}

func (c *compiler) step(i int, st *steps.Step) *step {
	s := &step{name: st.Name.Value, src: st, stage: i, isSource: i < 0, timeout: st.Timeout, format: parse.Format(st.Response.Format), maxBytes: st.Response.MaxBytes}
	s.parsesXML = s.format == parse.XML
	c.cur = s
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	if s.maxBytes == 0 {
		s.maxBytes = DefaultMaxBody
	}
	s.when = c.cond(st.When, scopeRequest)
	r := st.Request
	if r == nil {
		r = &steps.Request{} // missing: the decoder reported it
	}
	s.method = strings.ToUpper(r.Method.Value)
	if s.method == "" {
		s.method = "GET"
		if r.Body != nil {
			s.method = "POST"
		}
	}
	s.url = c.tmpl(r.URL, template.URL, scopeRequest)
	s.query = c.kvs(r.Query, template.Plain, scopeRequest)
	s.headers = c.kvs(r.Headers, template.Header, scopeRequest)
	if r.Body != nil {
		s.body = c.body(r.Body)
	}
	ns := parse.Namespaces(st.Namespaces)
	for _, e := range st.Capture {
		if e.Value == nil {
			c.errs.Add(e.Pos, "e.g. { json: data.score }", "capture %q has no definition", e.Key)
			continue
		}
		cp := e.Value
		if !steps.CaptureTypes.Valid(cp.Type) {
			continue // the decoder reported it
		}
		def, err := parse.Coerce(cp.Default, string(cp.Type))
		if err != nil {
			c.errs.Add(cp.At("default"), "", "capture %q: default: %v", e.Key, err)
			continue
		}
		if err := parse.CheckJSONPath(cp.JSON); err != nil {
			c.errs.Add(cp.At("json"), "", "capture %q: %v", e.Key, err)
			continue
		}
		ext, err := parse.Compile(parse.Spec{
			JSON: cp.JSON, XPath: cp.XPath, Split: cp.Split, Index: cp.Index, Regex: cp.Regex, Group: cp.Group,
			Header: cp.Header, Status: cp.Status, All: cp.All, Type: string(cp.Type), Trim: cp.Trim,
		}, ns)
		if err != nil {
			c.errs.Add(cp.Pos, "", "capture %q: %v", e.Key, err)
			continue
		}
		s.captures = append(s.captures, capture{name: e.Key, ext: ext, how: howOf(cp), def: def, required: cp.Required, redact: cp.Redact, jsonPath: cp.JSON})
		s.redacts = s.redacts || cp.Redact
		if cp.JSON != "" {
			s.jsonCaptures++
		}
		s.parsesXML = s.parsesXML || cp.XPath != ""
	}
	s.failWhen = c.cond(st.Outcome.FailureWhen, scopeAnswer)
	s.errWhen = c.cond(st.Outcome.ErrorWhen, scopeAnswer)
	if st.Outcome.Reason.IsSet() {
		s.reason = c.tmpl(st.Outcome.Reason, template.Plain, scopeAnswer)
		for _, ref := range s.reason.Refs() {
			if root, _, _ := strings.Cut(ref, "."); root == "captured" || root == "response" {
				s.reasonRefs = append(s.reasonRefs, ref)
			}
		}
	}
	for _, a := range st.Append {
		v := c.value(a.Value, scopeAnswer)
		s.appends = append(s.appends, appendField{field: a.Key, path: strings.Split(a.Key, "."), val: v})
	}
	s.deadline, s.onError, s.auth, s.redirects, s.maxAttempts = st.Deadline, st.OnError, c.defaultAuth, st.FollowRedirects, st.MaxAttempts
	s.limits, s.breaker = compileLimits(st.Limits), compileBreaker(st.Breaker)
	if st.Auth != nil {
		s.auth = c.authSection(st.Auth)
	}
	s.vars = c.vars(st.Vars)
	for _, v := range st.Variants {
		if v == nil {
			continue
		}
		cv := &variant{when: c.cond(v.When, scopeRequest), timeout: v.Timeout, auth: s.auth, method: strings.ToUpper(v.Method.Value)}
		if v.URL.IsSet() {
			cv.url = c.tmpl(v.URL, template.URL, scopeRequest)
		}
		cv.query = c.kvs(v.Query, template.Plain, scopeRequest)
		cv.headers = c.kvs(v.Headers, template.Header, scopeRequest)
		if v.Body != nil {
			cv.body = c.body(v.Body)
		}
		if v.Auth != nil {
			cv.auth = c.authSection(v.Auth)
		}
		s.variants = append(s.variants, cv)
	}
	if rc := st.Cache; rc != nil {
		s.respCache = &respCache{key: c.tmpl(rc.Key, template.Plain, scopeRequest), ttl: rc.TTL}
	}
	if b := st.Batch; b != nil {
		s.batch = c.batch(b)
	}
	for _, r := range append(slices.Clip(st.Retry), c.in.Retry...) { // the step's, then the integration's
		if r != nil {
			s.rules = append(s.rules, compileRule(r))
		}
	}
	s.rules = append(s.rules, defaultRules()...)
	for _, f := range st.Fallback {
		if f != nil {
			s.fallback = append(s.fallback, c.fallback(s, f))
		}
	}
	return s
}

func (c *compiler) fallback(s *step, f *steps.Fallback) *fallback {
	switch {
	case f.Request != nil:
		r := f.Request
		out := &fallback{kind: "request", method: strings.ToUpper(r.Method.Value), timeout: r.Timeout}
		if r.URL.IsSet() {
			out.url = c.tmpl(r.URL, template.URL, scopeRequest)
		}
		out.headers = c.kvs(r.Headers, template.Header, scopeRequest)
		return out
	case f.Cache != nil:
		s.cached = true
		if f.Cache.Key.IsSet() {
			s.cacheKey = c.tmpl(f.Cache.Key, template.Plain, scopeRequest)
		}
		return &fallback{kind: "cache", maxAge: f.Cache.MaxAge}
	case f.Defaults != nil:
		out := &fallback{kind: "defaults", flag: f.Flag}
		for _, d := range f.Defaults {
			out.defaults = append(out.defaults, namedValue{name: d.Key, val: c.value(d.Value, scopeRequest)})
		}
		return out
	default:
		out := &fallback{kind: "skip"}
		if f.Skip != nil && f.Skip.Note.IsSet() {
			out.note = c.tmpl(f.Skip.Note, template.Plain, scopeRequest)
		}
		return out
	}
}

func (c *compiler) body(b *steps.Body) *body {
	out := &body{}
	switch {
	case b.JSON != nil:
		out.contentType = "application/json"
		if text, ok := b.JSON.Text(); ok {
			out.kind = bodyJSONText
			out.text = c.tmpl(text, template.JSON, scopeRequest, template.Document())
		} else {
			out.kind = bodyJSON
			out.json = c.value(*b.JSON, scopeRequest)
		}
	case b.Form != nil:
		out.kind, out.contentType = bodyForm, "application/x-www-form-urlencoded"
		out.form = c.kvs(b.Form, template.Plain, scopeRequest)
	case b.XML.IsSet():
		out.kind, out.contentType = bodyXML, "text/xml; charset=utf-8"
		out.text = c.tmpl(b.XML, template.XML, scopeRequest)
	case b.Text.IsSet():
		out.kind, out.contentType = bodyText, "text/plain; charset=utf-8"
		out.text = c.tmpl(b.Text, template.Plain, scopeRequest)
	}
	if b.ContentType.IsSet() {
		out.contentType = b.ContentType.Value
	}
	return out
}

func (c *compiler) kvs(m steps.Map[steps.String], mode template.Mode, sc scope) []kv {
	out := make([]kv, 0, len(m))
	for _, e := range m {
		out = append(out, kv{key: e.Key, val: c.tmpl(e.Value, mode, sc)})
	}
	return out
}

// tmpl compiles a template string, reporting errors at its position in the file.
func (c *compiler) tmpl(s steps.String, mode template.Mode, sc scope, opts ...template.CompileOption) *template.Template {
	if mode == template.URL && c.in.HTTP != nil && len(c.in.HTTP.AllowHosts) > 0 {
		opts = append(opts, template.AllowHosts(c.in.HTTP.AllowHosts))
	}
	t, err := c.plan.tmpl.Compile(s.Pos.String(), s.Value, mode, opts...)
	if err != nil {
		var te *template.Error
		if errors.As(err, &te) {
			hint := "see Templates in docs/format.md"
			if strings.Contains(te.Msg, "cannot choose the URL") {
				hint = "if lead data must choose the host, list the hosts it may name under http: allow_hosts:"
			}
			c.errs.Add(s.At(te.Line, te.Col), hint, "bad template: %s", te.Msg)
		} else {
			c.errs.Add(s.Pos, "", "bad template: %v", err)
		}
		return nil
	}
	refs := t.RefsAt()
	at := make([]steps.Pos, len(refs))
	paths := make([]string, len(refs))
	for i, r := range refs {
		paths[i], at[i] = r.Path, s.Pos
		if s.IsBlock() { // the line that reads it
			at[i] = s.At(r.Line, r.Col)
		}
	}
	c.checkRefsAt(at, paths, sc)
	return t
}

// allowHosts reports http.allow_hosts entries that are not
// [http(s)://]host[:port] or *.suffix (they would match nothing).
func (c *compiler) allowHosts(h *steps.HTTP) {
	pos, ok := h.KeyPos["allow_hosts"]
	if !ok {
		pos = h.Pos
	}
	for _, e := range h.AllowHosts {
		if err := template.CheckAllowedHost(e); err != nil {
			c.errs.Add(pos, "e.g. api.example.com (https on 443), api.example.com:8443, http://api.example.com:8080, *.example.com",
				"http.allow_hosts: %q: %v", e, err)
		}
	}
}

// cond compiles a condition; an unset one compiles to nil.
func (c *compiler) cond(s steps.String, sc scope) *cond.Program {
	if !s.IsSet() {
		return nil
	}
	p, err := cond.Compile(s.Value)
	if err != nil {
		var ce *cond.Error
		if errors.As(err, &ce) {
			hint := ce.Hint
			if hint == "" {
				hint = "conditions are expr expressions such as lead.value > 100"
			}
			c.errs.Add(s.At(ce.Line, ce.Col), hint, "bad condition: %s", ce.Msg)
		} else {
			c.errs.Add(s.Pos, "", "bad condition: %v", err)
		}
		return nil
	}
	c.checkRefs(s.Pos, p.Refs(), sc)
	return p
}

// checkRefs reports references to undeclared settings, to steps that do
// not run before this one, and to answer roots where there is no answer yet.
func (c *compiler) checkRefs(pos steps.Pos, refs []string, sc scope) {
	at := make([]steps.Pos, len(refs))
	for i := range at {
		at[i] = pos
	}
	c.checkRefsAt(at, refs, sc)
}

// checkRefsAt is checkRefs with a position for each reference.
func (c *compiler) checkRefsAt(at []steps.Pos, refs []string, sc scope) {
	// Each reference is checked on its own, so two references that share
	// a refused prefix (batch.id and batch.size outside a batch step,
	// steps.find.a and steps.find.b of a missing step) yield the same
	// problem: a template states each problem once.
	before := len(c.errs)
	for i, r := range refs {
		pos := at[i]
		parts := strings.Split(r, ".")
		if sc == scopeSettings && parts[0] != "settings" {
			c.errs.Add(pos, "credentials are chosen per integration, not per lead", "auth values can only read settings, not %s", parts[0])
			continue
		}
		if sc == scopeStop && !slices.Contains([]string{"captured", "response", "page", "state"}, parts[0]) {
			c.errs.Add(pos, "stop_when reads the page just fetched: captured, response, page and state", "%s is not available in stop_when", parts[0])
			continue
		}
		if parts[0] == "lead" && c.cur != nil && c.cur.isSource {
			c.errs.Add(pos, "the source's request reads settings, state and page; each record it returns is the lead of the steps", "lead is not available in the source: section")
			continue
		}
		switch parts[0] {
		case "settings":
			c.refSettings(pos, parts)
		case "steps":
			c.refSteps(pos, parts)
		case "captured":
			c.refCaptured(pos, parts, sc)
		case "response":
			c.refResponse(pos, sc)
		case "state", "page":
			c.refSource(pos, parts)
		case "batch":
			c.refBatch(pos, parts, sc)
		case "vars":
			c.refVars(pos, parts)
		}
	}
	seen := map[string]bool{}
	kept := c.errs[:before]
	for _, e := range c.errs[before:] {
		if k := e.Msg + "\x00" + e.Hint; !seen[k] {
			seen[k] = true
			kept = append(kept, e)
		}
	}
	c.errs = kept
}

// refSettings checks a reference to settings.<name>.
func (c *compiler) refSettings(pos steps.Pos, parts []string) {
	if len(parts) > 1 {
		if _, ok := c.in.Settings.Get(parts[1]); !ok {
			c.errs.Add(pos, "declare it under settings:", "unknown setting %q", parts[1])
		}
	}
}

// refSteps checks a reference to steps.<name>.<capture>: the step exists,
// runs before this one, and has that capture.
func (c *compiler) refSteps(pos steps.Pos, parts []string) {
	s := c.cur
	if s != nil {
		s.readsSteps = true
	}
	if len(parts) < 2 {
		return
	}
	ref, ok := c.names[parts[1]]
	switch {
	case !ok:
		c.errs.Add(pos, "steps.<name>.<capture> reads a capture of an earlier step", "unknown step %q", parts[1])
	case s == nil || ref.stage >= s.stage:
		name := "this one"
		if s != nil {
			name = fmt.Sprintf("step %q", s.name)
		}
		c.errs.Add(pos, "a step can only read captures of steps that run before it (not in the same parallel group)", "step %q does not run before %s", parts[1], name)
	case len(parts) > 2:
		if _, ok := ref.src.Capture.Get(parts[2]); !ok {
			c.errs.Add(pos, "", "step %q has no capture %q", parts[1], parts[2])
		}
	}
}

// refCaptured checks a reference to captured.<name>: read after the
// answer, and a capture of this step.
func (c *compiler) refCaptured(pos steps.Pos, parts []string, sc scope) {
	if sc == scopeRequest {
		c.errs.Add(pos, "captured is only known after the response; use it in outcome or append", "captured.%s read before the request is sent", strings.Join(parts[1:], "."))
	} else if len(parts) > 1 {
		s := c.cur
		if _, ok := s.src.Capture.Get(parts[1]); !ok {
			c.errs.Add(pos, "", "step %q has no capture %q", s.name, parts[1])
		}
	}
}

// refResponse checks a reference to response: read after the answer; the
// step then keeps its answer for the templates.
func (c *compiler) refResponse(pos steps.Pos, sc scope) {
	if sc == scopeRequest {
		c.errs.Add(pos, "response is only known after the request; use it in outcome or append", "response read before the request is sent")
	}
	if c.cur != nil {
		c.cur.needsResponse = true
	}
}

// refSource checks a reference to state or page: read only in the source,
// and only the fields the sync sets (steps.StateFields, steps.PageFields of
// the source's pagination).
func (c *compiler) refSource(pos steps.Pos, parts []string) {
	s := c.cur
	if s == nil || !s.isSource {
		c.errs.Add(pos, "the sync state and the page being fetched are read only in the source: section", "%s is not available here", parts[0])
		return
	}
	if len(parts) < 2 {
		return
	}
	fields, what := steps.StateFields, "state has"
	if parts[0] == "page" {
		fields, what = steps.PageFields(c.in.Source.Paginate), "page has"
		if c.in.Source.Paginate != nil {
			what = "paginate type " + c.in.Source.Paginate.Type.Value + " sets"
		}
	}
	if !slices.Contains(fields, parts[1]) {
		hint := "without paginate: the source is one page and page has no fields"
		if len(fields) > 0 {
			hint = what + " " + strings.Join(fields, ", ")
		}
		c.errs.Add(pos, hint, "unknown field %s.%s", parts[0], parts[1])
	}
}

// refBatch checks a reference to batch: read only in a step with batch:,
// and after the answer only its id, size and response.
func (c *compiler) refBatch(pos steps.Pos, parts []string, sc scope) {
	if s := c.cur; s == nil || s.src.Batch == nil {
		c.errs.Add(pos, "batch is only available in a step with batch:", "batch is not available here")
	} else if sc != scopeRequest && len(parts) > 1 && parts[1] != "id" && parts[1] != "size" && parts[1] != "response" {
		c.errs.Add(pos, "after the answer a batch step reads batch.id, batch.size and batch.response (the whole answer: status, headers, body)", "batch.%s is only available in the request", parts[1])
	}
}

// refVars checks a reference to vars.<name>: declared by the integration,
// by this step, or by a step that runs before it.
func (c *compiler) refVars(pos steps.Pos, parts []string) {
	if len(parts) < 2 {
		return
	}
	s := c.cur
	_, ok := c.in.Vars.Get(parts[1])
	before := ok && s != nil // the integration's, set before any step's
	for name, ref := range c.names {
		if _, declared := ref.src.Vars.Get(parts[1]); declared && s != nil && (ref.stage < s.stage || name == s.name) {
			ok = true
			before = before || ref.stage < s.stage
		}
	}
	if c.varsLater[parts[1]] && !before {
		if parts[1] == c.varsAt {
			c.errs.Add(pos, "a var reads the vars set before it: the integration's, an earlier step's, or those written above it in the same vars:", "var %q reads itself", parts[1])
		} else {
			c.errs.Add(pos, fmt.Sprintf("vars are set in the order they are written: move %s above %s", parts[1], c.varsAt), "var %q reads var %q, which is set after it", c.varsAt, parts[1])
		}
		return
	}
	if !ok {
		c.errs.Add(pos, "declare it under vars: (the integration's, this step's or an earlier step's)", "unknown var %q", parts[1])
	}
}

// value is a compiled structured value: a JSON body or an appended field.
// String leaves are templates; a leaf that is a single action keeps its type.
type value struct {
	lit  any
	tmpl *template.Template
	keys []string
	// keyJSON holds keys as JSON strings, encoded once.
	keyJSON [][]byte
	vals    []*value
	items   []*value
	kind    byte // 'l' literal, 't' template, 'o' object, 'a' array
}

func (c *compiler) value(n steps.Value, sc scope) *value {
	switch n.Kind() {
	case steps.MappingValue:
		v := &value{kind: 'o'}
		for _, e := range n.Entries() {
			v.keys = append(v.keys, e.Key)
			kb, _ := json.Marshal(e.Key)
			v.keyJSON = append(v.keyJSON, kb)
			v.vals = append(v.vals, c.value(e.Value, sc))
		}
		return v
	case steps.ListValue:
		v := &value{kind: 'a'}
		for _, it := range n.Items() {
			v.items = append(v.items, c.value(it, sc))
		}
		return v
	}
	if s, ok := n.Text(); ok {
		if !strings.Contains(s.Value, "{{") {
			return &value{kind: 'l', lit: s.Value}
		}
		return &value{kind: 't', tmpl: c.tmpl(s, template.Plain, sc)}
	}
	var lit any
	if err := n.Decode(&lit); err != nil {
		c.errs.Add(n.Pos, "", "bad value: %v", err)
	}
	return &value{kind: 'l', lit: lit}
}
