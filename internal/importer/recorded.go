package importer

import (
	"encoding/base64"
	"mime"
	"net/url"
	"regexp"
	"strings"
)

// Recorded is one HTTP request as a curl line, a Postman request or a HAR
// entry describes it. Text fields may hold variable references (Ref).
type Recorded struct {
	// Name names the step ("" → request).
	Name   string
	Method string
	// URL is absolute (its origin may be a reference, as Postman's
	// {{baseUrl}}/leads).
	URL     string
	Headers []KV
	// Body is the body text; Form the fields of a form body when they
	// were given one by one (curl -d a=b -d c=d, Postman urlencoded).
	Body string
	Form []KV
	// Multipart says the form was sent as multipart/form-data (curl -F),
	// which plumb does not send: it becomes a urlencoded form with a TODO.
	Multipart bool
	// Auth is an explicit credential (curl -u, a Postman auth block).
	Auth *Auth
	// Timeout is a per-try timeout (curl --max-time), "" for the default.
	Timeout string
	// Retry is a retry rule for the step (curl --retry), or nil; Tries
	// are how often it tries an answer of each status.
	Retry *Map
	Tries map[int]int
	// Notes are TODO lines written above the step.
	Notes []string
	// Response is the recorded answer (HAR, a Postman example), or nil.
	Response *Response
}

// KV is a name and a value, in the order they were written.
type KV struct{ Key, Value string }

// Auth is an explicit credential of a recorded request.
type Auth struct {
	// Type is basic, bearer, api_key or oauth2.
	Type               string
	Username, Password string
	// AskPassword says the password was not given (curl -u user prompts).
	AskPassword bool
	Token       string
	// In (header or query), Name and Value of an API key.
	In, Name, Value string
	OAuth2          *OAuth2
}

// OAuth2 is an OAuth2 grant.
type OAuth2 struct {
	Grant                  string // client_credentials or authorization_code
	TokenURL, AuthURL      string
	ClientID, ClientSecret string
	Scopes                 []string
	AuthStyle              string // header or body
}

// Response is a recorded answer.
type Response struct {
	Status  int
	Headers []KV
	Body    string
	// JSON is a structured body (ordered values); it wins over Body.
	JSON any
}

// Var is what is known of a variable references name.
type Var struct {
	// Value is its value where the input gives one (a Postman collection
	// variable); Declared says it was given at all.
	Value    string
	Declared bool
	// Secret marks a variable the input marks secret.
	Secret bool
	// Env is the environment variable it came from (a curl line's $VAR).
	Env string
}

// Builder turns recorded requests into the steps of one integration and
// their test case, binding each variable once for all of them.
type Builder struct {
	In   *Integration
	Vars map[string]*Var
	// KeepLiterals keeps the literal values of a body that also holds
	// variables (a Postman body whose author chose what varies); otherwise
	// literal body values become lead fields.
	KeepLiterals bool
	literals     bool
	// produced maps credentials earlier answers returned (a session
	// token) to the capture that holds them, so later requests read it.
	produced map[string]binding
	// LiteralNote is the TODO written above literal query values.
	bound map[string]binding
	lead  *Map
	steps []*StepTest
}

type binding struct {
	expr string // settings.x or lead.y
	test any    // the value the test case gives it
}

// StepTest is what a step's part of the test case holds.
type StepTest struct {
	Step string
	// Request is the matcher of the request the step must send.
	Request *Map
	// Response is the answer served (nil: a placeholder 200); Before are
	// answers served to earlier tries (a 503 the step retries).
	Response *Response
	Before   []*Response
	// Captured are the captures expected from Response; when nil they
	// are read from each served answer by CaptureKeys (capture name,
	// top-level field).
	Captured    *Map
	CaptureKeys []KV
	// Reason is text the case's reason must contain when Response is not
	// a success.
	Reason string
	// Tries are how often the step's own rules try an answer of a status
	// (default: plumb's default rules).
	Tries map[int]int
}

// NewBuilder returns a Builder adding to in.
func NewBuilder(in *Integration, vars map[string]*Var) *Builder {
	if vars == nil {
		vars = map[string]*Var{}
	}
	return &Builder{In: in, Vars: vars, bound: map[string]binding{}, lead: &Map{}, produced: map[string]binding{}}
}

// position says where in a request a variable or a literal sits.
type position int

const (
	atOrigin position = iota
	atPath
	atQuery
	atHeader
	atBody
	atAuth
)

// bind returns how the variable name is read at pos (key: the header,
// query or field name it is the value of).
func (b *Builder) bind(name string, pos position, key string) binding {
	if x, ok := b.bound[name]; ok {
		return x
	}
	if expr, ok := dynamicVars[name]; ok {
		return binding{expr, dynamicMark}
	}
	v := b.Vars[name]
	if v == nil {
		v = &Var{}
	}
	secret := v.Secret || SecretName(name) || (pos == atAuth && !publicAuthKeys[key]) ||
		((pos == atHeader || pos == atQuery) && SecretName(key))
	var x binding
	switch {
	case secret:
		s := b.In.AddSetting(&Setting{Name: Snake(name), Required: true, Secret: true, Env: v.Env})
		x = binding{"settings." + s.Name, s.Test}
	case pos == atOrigin || pos == atHeader || pos == atAuth || v.Declared || v.Env != "" && pos != atBody && pos != atPath:
		s := &Setting{Name: Snake(name), Env: v.Env}
		switch {
		case v.Value != "":
			s.Default = v.Value
		case pos == atOrigin:
			s.Required, s.Test = true, "https://partner.example"
		default:
			s.Required, s.Test = true, "test-"+Kebab(name)
		}
		s = b.In.AddSetting(s)
		x = binding{"settings." + s.Name, s.Test}
		if x.test == nil {
			x.test = s.Default
		}
	default:
		field := Ident(name)
		val := any(v.Value)
		if v.Value == "" {
			val = Kebab(name) + "-example"
		}
		b.setLead([]string{field}, val)
		x = binding{"lead." + field, val}
	}
	b.bound[name] = x
	return x
}

// publicAuthKeys are auth values that are not credentials.
var publicAuthKeys = map[string]bool{"client_id": true, "username": true, "token_url": true, "auth_url": true}

// dynamicVars are Postman's dynamic variables plumb has a function for;
// a test request's value of one is not known in advance.
var dynamicVars = map[string]string{
	"$guid": "uuidv4", "$randomUUID": "uuidv4", "$timestamp": "now | unixEpoch",
	"$isoTimestamp": `now | date "2006-01-02T15:04:05Z07:00"`, "$randomInt": "randInt 0 1000",
}

// dynamicMark stands for a value only known when the request is made;
// matchers leave out what holds it.
const dynamicMark = "\uE002"

// known reports whether a matcher may expect v (it holds no value only
// known when the request is made).
func known(v any) bool {
	switch v := v.(type) {
	case string:
		return !strings.Contains(v, dynamicMark)
	case *Map:
		for _, e := range v.Entries {
			if !known(e.Value) {
				return false
			}
		}
	case *List:
		for _, e := range v.Items {
			if !known(e.Value) {
				return false
			}
		}
	}
	return true
}

// expect sets key in a matcher unless its value is only known when the
// request is made.
func expect(m *Map, key string, v any) {
	if known(v) {
		m.Set(key, v)
	}
}

// setLead puts a test value at a lead field path (first one wins).
func (b *Builder) setLead(path []string, v any) {
	m := b.lead
	for _, p := range path[:len(path)-1] {
		e := m.Get(p)
		if e == nil {
			e = m.Set(p, &Map{})
		}
		sub, ok := e.Value.(*Map)
		if !ok {
			return
		}
		m = sub
	}
	if m.Get(path[len(path)-1]) == nil {
		m.Set(path[len(path)-1], v)
	}
}

// template turns recorded text at pos into a template; render gives what
// the test case's request then carries.
func (b *Builder) template(s string, pos position, key string) string {
	return Template(s, func(n string) string { return b.bind(n, pos, key).expr })
}

func (b *Builder) render(s string, pos position, key string) string {
	return Render(s, func(n string) string { return textOf(b.bind(n, pos, key).test) })
}

func textOf(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	}
	return scalar(v)
}

// Lead is the test lead built so far.
func (b *Builder) Lead() *Map { return b.lead }

// Tests are the steps' parts of the test case, in order.
func (b *Builder) Tests() []*StepTest { return b.steps }

// Step converts one recorded request into a step of the integration.
func (b *Builder) Step(r *Recorded) (*Map, error) {
	name := Unique(Snake(firstNonEmpty(r.Name, "request")), func(n string) bool {
		for _, s := range b.steps {
			if s.Step == n {
				return true
			}
		}
		return false
	})
	originals := b.redactAnswer(r.Response)
	st := &StepTest{Step: name, Request: &Map{Flow: true}, Response: r.Response}
	b.steps = append(b.steps, st)
	step := &Map{}
	step.Set("name", name).Head = r.Notes
	req := &Map{}
	step.Set("request", req)
	userinfoAuth(r)
	if err := b.url(r, req, st.Request); err != nil {
		return nil, err
	}
	for _, h := range r.Headers {
		if !validHeaderName(h.Key) {
			return nil, Errorf("a header name is letters, digits and !#$%&'*+-.^_`|~", "header name %q is not valid", h.Key)
		}
	}
	headers, ctype := b.auth(r, req, st.Request)
	method := strings.ToUpper(r.Method)
	if method == "" {
		method = "GET"
		if r.Body != "" || len(r.Form) > 0 {
			method = "POST"
		}
	}
	req.Entries = append([]*Entry{{Key: "method", Value: method}}, req.Entries...)
	st.Request.Entries = append([]*Entry{{Key: "method", Value: method}}, st.Request.Entries...)
	b.body(r, req, headers, st, ctype)
	if headers.Len() > 0 {
		req.Set("headers", headers)
	}
	req.Order("method", "url", "query", "headers", "body")
	if r.Timeout != "" {
		step.Set("timeout", r.Timeout)
	}
	if r.Retry != nil {
		step.Set("retry", &List{Items: []*Entry{{Value: r.Retry}}})
		st.Tries = r.Tries
	}
	b.captures(r, step, st, originals)
	return step, nil
}

// redactAnswer replaces the credentials a recorded JSON answer holds
// (fields named token, password, …) with placeholders, so the test case
// does not carry them, and remembers the top-level ones for later steps.
func (b *Builder) redactAnswer(r *Response) map[string]string {
	originals := map[string]string{}
	if r == nil || r.JSON != nil {
		return originals
	}
	v, err := ParseJSON([]byte(r.Body))
	if err != nil {
		return originals
	}
	if obj, ok := v.(*Map); ok {
		for _, e := range obj.Entries {
			if s, ok := e.Value.(string); ok && SecretName(e.Key) && len(s) >= 8 {
				originals[e.Key] = s
			}
		}
	}
	r.JSON = redactJSON(v, "")
	return originals
}

func redactJSON(v any, key string) any {
	switch v := v.(type) {
	case *Map:
		for _, e := range v.Entries {
			e.Value = redactJSON(e.Value, e.Key)
		}
	case *List:
		for _, e := range v.Items {
			e.Value = redactJSON(e.Value, key)
		}
	case string:
		if SecretName(key) && v != "" {
			return "test-" + Kebab(key)
		}
	}
	return v
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// url writes the request's url: and query: (the origin becomes the
// base_url setting) and the matcher's path and query.
func (b *Builder) url(r *Recorded, req, match *Map) error {
	raw := r.URL
	rawQuery := ""
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw, rawQuery = raw[:i], raw[i+1:]
	}
	if i := strings.IndexByte(raw, '#'); i >= 0 {
		raw = raw[:i]
	}
	origin, path := splitOrigin(raw)
	if origin == "" {
		return Errorf("give the whole URL: https://api.example.com/path", "URL %q is not absolute", shownURL(r.URL))
	}
	if strings.HasPrefix(path, "//") {
		return Errorf("write the path with one leading /", "the URL's path %q starts with //, which reads as a host", shownURL(path))
	}
	var base string
	if name, ok := OnlyRef(origin); ok {
		base = "{{" + b.bind(name, atOrigin, "").expr + "}}"
	} else {
		if HasRef(origin) {
			return Errorf("plumb lets settings, not lead data, choose the host", "the URL's host %q holds a variable", shownURL(origin))
		}
		s := b.In.Setting("base_url")
		for _, x := range b.In.Settings {
			if x.Default == origin && strings.HasPrefix(x.Name, "base_url") {
				s = x
			}
		}
		if s == nil || s.Default != origin {
			s = b.In.AddSetting(&Setting{Name: "base_url", Default: origin})
		}
		base = "{{settings." + s.Name + "}}"
	}
	e := req.Set("url", base+b.template(path, atPath, ""))
	if idLike(path) {
		e.Head = []string{"TODO(import): the path is copied as recorded; write {{lead.NAME}} for a part that comes from the lead (an id)"}
	}
	if p := b.render(path, atPath, ""); !known(p) {
		// the path holds a value only known when the request is made
	} else if p != "" {
		if dec, err := url.PathUnescape(p); err == nil {
			p = dec
		}
		match.Set("path", p)
	} else {
		match.Set("path", "/")
	}
	b.query(rawQuery, req, match)
	return nil
}

// idLike reports whether a literal path has a segment with a digit (an
// id the recording holds, such as /leads/42).
func idLike(path string) bool {
	for _, seg := range strings.Split(path, "/") {
		if !HasRef(seg) && strings.ContainsAny(seg, "0123456789") && !versionRE.MatchString(seg) {
			return true
		}
	}
	return false
}

// versionRE is an API version segment (v1, v2.1), not an id.
var versionRE = regexp.MustCompile(`^[vV][0-9]+(\.[0-9]+)*$`)

// shownURL is a URL as an error may show it: variables as {{name}},
// without its query or credentials.
func shownURL(raw string) string {
	s := Render(raw, func(n string) string { return "{{" + n + "}}" })
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		host, path, _ := strings.Cut(rest, "/")
		if at := strings.LastIndexByte(host, '@'); at >= 0 {
			host = host[at+1:]
		}
		s = scheme + "://" + host
		if path != "" {
			s += "/" + path
		}
	}
	return s
}

// splitOrigin splits scheme://host[:port] (or a leading reference) from
// the path.
func splitOrigin(raw string) (origin, path string) {
	if strings.HasPrefix(raw, string(refOpen)) {
		end := strings.IndexRune(raw, refClose)
		if end < 0 {
			return "", raw
		}
		end += len(string(refClose))
		return raw[:end], raw[end:]
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || (strings.ToLower(scheme) != "http" && strings.ToLower(scheme) != "https") || rest == "" {
		return "", raw
	}
	host, p, _ := strings.Cut(rest, "/")
	if host == "" {
		return "", raw
	}
	if p != "" || strings.HasSuffix(rest, "/") {
		p = "/" + p
	}
	return strings.ToLower(scheme) + "://" + host, p
}

// query copies the recorded query: secrets become settings (an API key
// the auth), references templates, other values stay as recorded.
func (b *Builder) query(raw string, req, match *Map) {
	if raw == "" {
		return
	}
	q, mq := &Map{}, &Map{Flow: true}
	literal := false
	for _, part := range strings.Split(raw, "&") {
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
		if k == "" {
			continue // a value without a name: nothing plumb can write
		}
		if SecretName(k) && !HasRef(v) && v != "" {
			name := b.secretLiteral(k)
			if b.In.Auth == nil {
				b.In.Auth = FlowMap("type", "api_key", "in", "query", "name", k, "value", "{{"+name.expr+"}}")
			} else {
				q.Set(k, "{{"+name.expr+"}}")
			}
			mq.Set(k, textOf(name.test))
			continue
		}
		if !HasRef(v) {
			literal = true
		}
		q.Set(k, b.template(v, atQuery, k))
		expect(mq, k, b.render(v, atQuery, k))
	}
	if q.Len() > 0 {
		e := req.Set("query", q)
		if literal {
			e.Head = []string{"TODO(import): query values are copied as recorded; write \"{{lead.NAME}}\" where a value comes from the lead"}
		}
	}
	if mq.Len() > 0 {
		match.Set("query", mq)
	}
}

// secretLiteral declares a secret setting for a literal credential found
// under key (the literal itself is never written).
func (b *Builder) secretLiteral(key string) binding {
	s := b.In.AddSetting(&Setting{Name: SettingName(key), Required: true, Secret: true})
	s.Comment = "the recorded value is not copied here: give it in settings or $" + s.Env
	return binding{"settings." + s.Name, s.Test}
}

// skippedHeaders are never copied: the transport writes them.
var skippedHeaders = map[string]bool{
	"content-length": true, "host": true, "connection": true, "accept-encoding": true,
	"transfer-encoding": true, "expect": true, "keep-alive": true, "upgrade": true, "te": true,
	"proxy-connection": true, "trailer": true,
}

// auth maps credentials (explicit, Authorization, API-key headers, cookies)
// and returns the other headers and the Content-Type.
func (b *Builder) auth(r *Recorded, req, match *Map) (*Map, string) {
	headers, mh := &Map{}, &Map{Flow: true}
	ctype := ""
	if r.Auth != nil {
		b.explicitAuth(r.Auth, mh)
	}
	for _, h := range r.Headers {
		lk := strings.ToLower(h.Key)
		switch {
		case skippedHeaders[lk] || strings.HasPrefix(lk, ":"):
			continue
		case lk == "content-type":
			ctype = h.Value
			continue
		case b.chained(h, headers, mh):
			continue
		case lk == "authorization" && b.In.Auth == nil:
			b.authorization(h.Value, mh)
			continue
		case lk == "cookie" || SecretName(h.Key):
			x, test := b.secretHeader(h)
			if b.In.Auth == nil && lk != "cookie" && lk != "authorization" {
				b.In.Auth = FlowMap("type", "api_key", "in", "header", "name", h.Key, "value", x)
			} else {
				e := headers.Set(h.Key, x)
				if lk == "cookie" {
					e.Comment = "TODO(import): a recorded session cookie expires; prefer the partner's API credentials"
				}
			}
			mh.Set(h.Key, test)
			continue
		}
		headers.Set(h.Key, b.template(h.Value, atHeader, h.Key))
		expect(mh, h.Key, b.render(h.Value, atHeader, h.Key))
	}
	if mh.Len() > 0 {
		match.Set("headers", mh)
	}
	return headers, ctype
}

// chained sends a credential an earlier step's answer returned (a
// session token) from that step's capture.
func (b *Builder) chained(h KV, headers, mh *Map) bool {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(h.Value), " ")
	if !ok {
		scheme, cred = "", strings.TrimSpace(h.Value)
	} else {
		scheme += " "
	}
	x, found := b.produced[cred]
	if !found {
		return false
	}
	headers.Set(h.Key, Literal(scheme)+"{{"+x.expr+"}}").Comment = "returned by an earlier step's answer"
	mh.Set(h.Key, scheme+textOf(x.test))
	return true
}

// secretHeader returns the template of a credential header and what the
// test request carries: a reference stays one, a literal becomes a secret
// setting.
func (b *Builder) secretHeader(h KV) (string, string) {
	if HasRef(h.Value) {
		return b.template(h.Value, atAuth, h.Key), b.render(h.Value, atAuth, h.Key)
	}
	x := b.secretLiteral(h.Key)
	return "{{" + x.expr + "}}", textOf(x.test)
}

// authorization maps an Authorization header: Basic, Bearer, or any other
// scheme as an API key in that header.
func (b *Builder) authorization(v string, mh *Map) {
	scheme, cred, _ := strings.Cut(strings.TrimSpace(v), " ")
	cred = strings.TrimSpace(cred)
	switch strings.ToLower(scheme) {
	case "basic":
		if raw, err := base64.StdEncoding.DecodeString(cred); err == nil && !HasRef(cred) {
			user, pass, _ := strings.Cut(string(raw), ":")
			b.explicitAuth(&Auth{Type: "basic", Username: user, Password: pass}, mh)
			return
		}
	case "bearer":
		if cred != "" {
			b.explicitAuth(&Auth{Type: "bearer", Token: cred}, mh)
			return
		}
	}
	b.explicitAuth(&Auth{Type: "api_key", In: "header", Name: "Authorization", Value: v}, mh)
}

// explicitAuth writes the integration's auth: from a recorded credential;
// literals become secret settings, references stay references.
func (b *Builder) explicitAuth(a *Auth, mh *Map) {
	if b.In.Auth != nil {
		return
	}
	cred := func(v, key string) (tmpl, test string) {
		if v == "" && !(key == "password" && a.AskPassword) {
			return "", ""
		}
		if HasRef(v) {
			return b.template(v, atAuth, key), b.render(v, atAuth, key)
		}
		x := b.secretLiteral(key)
		return "{{" + x.expr + "}}", textOf(x.test)
	}
	switch a.Type {
	case "basic":
		user, userTest := b.username(a)
		pass, passTest := cred(a.Password, "password")
		b.In.Auth = FlowMap("type", "basic", "username", user, "password", pass)
		mh.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(userTest+":"+passTest)))
	case "bearer":
		tok, test := cred(a.Token, "token")
		b.In.Auth = FlowMap("type", "bearer", "token", tok)
		mh.Set("Authorization", "Bearer "+test)
	case "api_key":
		b.apiKey(a, mh, cred)
	case "oauth2":
		b.oauth2(a.OAuth2)
	}
}

// username is a basic credential's user: a setting holding the recorded
// name, or a secret when there is no password (an API key sent as the
// user, as Stripe's curl -u sk_test_…:).
func (b *Builder) username(a *Auth) (string, string) {
	if HasRef(a.Username) {
		return b.template(a.Username, atAuth, "username"), b.render(a.Username, atAuth, "username")
	}
	if a.Password == "" && !a.AskPassword {
		x := b.secretLiteral("username")
		return "{{" + x.expr + "}}", textOf(x.test)
	}
	s := b.In.AddSetting(&Setting{Name: "username", Default: a.Username})
	return "{{settings." + s.Name + "}}", a.Username
}

func (b *Builder) apiKey(a *Auth, mh *Map, cred func(v, key string) (string, string)) {
	in := firstNonEmpty(a.In, "header")
	name := firstNonEmpty(a.Name, "X-API-Key")
	prefix, value := "", a.Value
	if !HasRef(value) {
		// keep a scheme word ("Token abc") and hide the credential
		if p, rest, ok := strings.Cut(value, " "); ok && !strings.Contains(rest, " ") {
			prefix, value = p+" ", rest
		}
	}
	tmpl, test := cred(value, name)
	b.In.Auth = FlowMap("type", "api_key", "in", in, "name", name, "value", Literal(prefix)+tmpl)
	if in == "header" {
		mh.Set(name, prefix+test)
	}
}

// oauth2 writes an OAuth2 auth: block; its URLs and client id become
// settings, the client secret a secret one.
func (b *Builder) oauth2(o *OAuth2) {
	if o == nil {
		return
	}
	set := func(name, v string, secret bool) string {
		if HasRef(v) {
			return b.template(v, atAuth, name)
		}
		if secret {
			return "{{" + b.secretLiteral(name).expr + "}}"
		}
		s := &Setting{Name: name, Default: v}
		if v == "" {
			s.Default, s.Required, s.Test = nil, true, "test-"+Kebab(name)
		}
		return "{{settings." + b.In.AddSetting(s).Name + "}}"
	}
	grant := firstNonEmpty(o.Grant, "client_credentials")
	a := &Map{}
	a.Set("type", "oauth2")
	a.Set("grant", grant)
	a.Set("token_url", set("token_url", o.TokenURL, false))
	if grant == "authorization_code" {
		a.Set("auth_url", set("auth_url", o.AuthURL, false))
	}
	a.Set("client_id", set("client_id", o.ClientID, false))
	a.Set("client_secret", set("client_secret", o.ClientSecret, true))
	if len(o.Scopes) > 0 {
		l := &List{Flow: true}
		for _, s := range o.Scopes {
			l.Add(s)
		}
		a.Set("scopes", l)
	}
	if o.AuthStyle != "" {
		a.Set("auth_style", o.AuthStyle)
	}
	b.In.Auth = a
}

// validHeaderName reports whether name is an HTTP header field name (an
// RFC 9110 token).
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range []byte(name) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// mediaType is the lower-case media type of a Content-Type value.
func mediaType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt, _, _ = strings.Cut(strings.ToLower(strings.TrimSpace(ct)), ";")
	}
	return strings.TrimSpace(mt)
}

func isJSONType(mt string) bool {
	return mt == "application/json" || strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "/json")
}

func isXMLType(mt string) bool {
	return mt == "application/xml" || mt == "text/xml" || strings.HasSuffix(mt, "+xml")
}

// MaxFlowSteps bounds the steps of one imported flow: a HAR's --url or a
// Postman folder can pick thousands of requests, which no flow is, and
// building one costs time that grows faster than their number.
const MaxFlowSteps = 100

// CheckFlowSize refuses a flow of n requests past MaxFlowSteps; what
// names how they were picked, hint how to pick fewer.
func CheckFlowSize(n int, what, hint string) error {
	if n <= MaxFlowSteps {
		return nil
	}
	return Errorf(hint, "%s picks %d requests; a flow holds at most %d steps", what, n, MaxFlowSteps)
}

// userinfoAuth takes user:password@ out of r's URL, which the draft would
// otherwise write in clear into base_url: it is r's basic auth (a secret
// password setting) unless r has an explicit credential, then it is
// dropped with a note.
func userinfoAuth(r *Recorded) {
	raw, info := CutUserinfo(r.URL)
	if info == nil {
		return
	}
	r.URL = raw
	if r.Auth != nil {
		r.Notes = append(r.Notes, "TODO(import): the recorded URL held user:password@ beside another credential; it was left out")
		return
	}
	user, pass, _ := strings.Cut(*info, ":")
	r.Auth = &Auth{Type: "basic", Username: user, Password: pass}
}

// CutUserinfo takes user:password@ out of a URL: the URL without it,
// and it (percent-decoded), or nil when the URL has none.
func CutUserinfo(raw string) (string, *string) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw, nil
	}
	hostEnd := strings.IndexAny(rest, "/?#")
	if hostEnd < 0 {
		hostEnd = len(rest)
	}
	at := strings.LastIndexByte(rest[:hostEnd], '@')
	if at < 0 {
		return raw, nil
	}
	info := rest[:at]
	if u, err := url.PathUnescape(info); err == nil {
		info = u
	}
	return scheme + "://" + rest[at+1:], &info
}
