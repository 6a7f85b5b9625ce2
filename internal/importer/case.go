package importer

import (
	"net/url"

	"strings"
)

// Order moves the named keys to the front, in that order.
func (m *Map) Order(keys ...string) {
	var front, rest []*Entry
	for _, k := range keys {
		if e := m.Get(k); e != nil {
			front = append(front, e)
		}
	}
	for _, e := range m.Entries {
		found := false
		for _, f := range front {
			found = found || f == e
		}
		if !found {
			rest = append(rest, e)
		}
	}
	m.Entries = append(front, rest...)
}

// captures adds a capture per top-level field of a recorded 2xx JSON
// answer (at most 10); BuildCase expects their values from each answer a
// case serves.
func (b *Builder) captures(r *Recorded, step *Map, st *StepTest, originals map[string]string) {
	if r.Response == nil || r.Response.Status/100 != 2 {
		return
	}
	obj, ok := r.Response.JSON.(*Map)
	if !ok {
		return
	}
	caps := &Map{}
	for _, e := range obj.Entries {
		if caps.Len() == 10 || !gjsonSafe(e.Key) {
			continue
		}
		switch e.Value.(type) {
		case *Map, *List, nil:
			continue
		}
		name := Unique(Snake(e.Key), func(n string) bool { return caps.Get(n) != nil })
		c := FlowMap("json", e.Key)
		if SecretName(e.Key) {
			c.Set("redact", true)
			if orig, ok := originals[e.Key]; ok {
				b.produced[orig] = binding{"steps." + st.Step + "." + name, e.Value}
			}
		} else {
			st.CaptureKeys = append(st.CaptureKeys, KV{Key: name, Value: e.Key})
		}
		caps.Set(name, c)
	}
	if caps.Len() > 0 {
		step.Set("capture", caps).Head = []string{"from the recorded answer's fields: TODO(import): keep the ones you use"}
	}
}

// expectedCaptures are the values the captures of keys (name, top-level
// field) take from a served answer: its scalars, strings without
// surrounding space.
func expectedCaptures(keys []KV, r *Response) *Map {
	want := &Map{Flow: true}
	if r == nil || r.Status/100 != 2 {
		return want
	}
	v := r.JSON
	if v == nil {
		v, _ = ParseJSON([]byte(r.Body))
	}
	obj, ok := v.(*Map)
	if !ok {
		return want
	}
	for _, k := range keys {
		e := obj.Get(k.Value)
		if e == nil {
			continue
		}
		switch x := e.Value.(type) {
		case *Map, *List, nil:
		case string:
			if x == strings.TrimSpace(x) && x != "" {
				want.Set(k.Key, x)
			}
		default:
			want.Set(k.Key, x)
		}
	}
	return want
}

// gjsonSafe reports whether key can be a gjson path as it is.
func gjsonSafe(key string) bool {
	return key != "" && !strings.ContainsAny(key, `.*?|#@\!=<>%"`)
}

// OutcomeOf is the outcome plumb's default rules give an answer with
// status: 2xx success; 401, 407, 408, 429, 3xx and 5xx error; other 4xx
// failure.
func OutcomeOf(status int) string {
	switch {
	case status >= 200 && status < 300:
		return "success"
	case status == 401 || status == 407 || status == 408 || status == 429:
		return "error"
	case status >= 400 && status < 500:
		return "failure"
	}
	return "error"
}

// ServedResponse is a recorded answer as a test case serves it: JSON
// bodies structured, the headers that matter kept.
func ServedResponse(r *Response) *Map {
	m := &Map{}
	if r.Status != 200 {
		m.Set("status", r.Status)
	}
	h := &Map{Flow: true}
	for _, kv := range r.Headers {
		switch strings.ToLower(kv.Key) {
		case "content-type", "retry-after", "location":
			h.Set(kv.Key, kv.Value)
		}
	}
	if h.Len() > 0 {
		m.Set("headers", h)
	}
	switch {
	case r.JSON != nil:
		m.Set("body", compact(Copy(r.JSON)))
	case r.Body != "":
		if v, err := ParseJSON([]byte(r.Body)); err == nil {
			m.Set("body", compact(v))
		} else {
			m.Set("body", r.Body)
		}
	}
	if len(flow(m)) <= 100 {
		m.Flow = true
	}
	return m
}

// Case builds the test case of the steps made so far (see BuildCase).
func (b *Builder) Case(name, description string) *Map {
	return BuildCase(b.In, name, description, b.lead, b.steps)
}

// CaseServing builds a case whose steps are served the given answers
// instead of their recorded ones (by step name; others keep theirs).
func (b *Builder) CaseServing(name, description string, answers map[string]*Response) *Map {
	steps := make([]*StepTest, len(b.steps))
	for i, st := range b.steps {
		c := *st
		if r, ok := answers[st.Step]; ok {
			c.Response = r
		}
		steps[i] = &c
	}
	return BuildCase(b.In, name, description, b.lead, steps)
}

// BuildCase builds a test case: the lead, the settings' test values, the
// answers each step is served (a placeholder 200 where none was
// recorded), and the outcome, requests, captures and attempts that must
// come of them. A flow stops at the first step whose answer is not a
// success; the steps after it must send nothing.
func BuildCase(in *Integration, name, description string, lead *Map, steps []*StepTest) *Map {
	c := &Map{}
	c.Set("name", name)
	if description != "" {
		c.Set("description", description)
	}
	c.Set("lead", compact(Copy(lead)))
	if s := in.TestSettings(); s.Len() > 0 {
		c.Set("settings", s)
	}
	responses := &Map{}
	expect := &Map{}
	c.Set("responses", responses)
	c.Set("expect", expect)
	tokenRoute(in, responses, steps)
	outcome, stop, reason := "success", "", ""
	requests, captured, attempts := &Map{}, &Map{}, &Map{Flow: true}
	for _, st := range steps {
		if stop != "" {
			requests.Set(st.Step, &List{Flow: true})
			continue
		}
		resp := served(st, responses)
		matchers := &List{}
		matchers.Add(compact(st.Request))
		for range st.Before {
			matchers.Add(&Map{Flow: true}).Comment = "the retry: no constraints"
		}
		requests.Set(st.Step, matchers)
		if len(st.Before) > 0 {
			attempts.Set(st.Step, len(st.Before)+1)
		} else if n := tries(st, resp.Status); n > 1 {
			// the answer repeats: plumb's rules try it n times
			for i := 1; i < n; i++ {
				matchers.Add(&Map{Flow: true}).Comment = "a retry: no constraints"
			}
			attempts.Set(st.Step, n)
		}
		want := st.Captured
		if want == nil {
			want = expectedCaptures(st.CaptureKeys, resp)
		}
		if want.Len() > 0 {
			captured.Set(st.Step, want)
		}
		if o := OutcomeOf(resp.Status); o != "success" {
			outcome, stop, reason = o, st.Step, st.Reason
		}
	}
	expect.Set("outcome", outcome)
	if stop != "" {
		expect.Set("step", stop)
	}
	if reason != "" {
		expect.Set("reason", reason)
	}
	if captured.Len() > 0 && stop == "" {
		expect.Set("captured", captured)
	}
	if attempts.Len() > 0 {
		expect.Set("attempts", attempts)
	}
	expect.Set("requests", requests)
	return c
}

// tries is how often a step sends its request when every try gets an
// answer with status: the step's own count for it, else plumb's default
// rules (408, 429 and 5xx but 501 are tried 3 times).
func tries(st *StepTest, status int) int {
	if st.Tries != nil {
		if n, ok := st.Tries[status]; ok {
			return n
		}
	}
	if status == 408 || status == 429 || (status >= 500 && status != 501) {
		return 3
	}
	return 1
}

// served records the answers a step's requests get and returns the last.
func served(st *StepTest, responses *Map) *Response {
	if st.Response == nil {
		responses.Set(st.Step, FlowMap("status", 200)).Comment =
			"TODO(import): a placeholder answer: paste the partner's real answer"
		return &Response{Status: 200}
	}
	if len(st.Before) == 0 {
		responses.Set(st.Step, ServedResponse(st.Response))
		return st.Response
	}
	seq := &List{}
	for _, r := range append(append([]*Response(nil), st.Before...), st.Response) {
		seq.Add(ServedResponse(r))
	}
	responses.Set(st.Step, seq)
	return st.Response
}

// tokenRoute serves an OAuth2 client-credentials token at the token URL's
// path and expects the steps to send it.
func tokenRoute(in *Integration, responses *Map, steps []*StepTest) {
	if in.Auth == nil || in.Auth.Get("type").Value != "oauth2" {
		return
	}
	tmpl, _ := in.Auth.Get("token_url").Value.(string)
	name := strings.TrimSuffix(strings.TrimPrefix(tmpl, "{{settings."), "}}")
	u, err := url.Parse(in.TestValue(name))
	if err != nil || u.Path == "" {
		return
	}
	responses.Set("POST "+u.Path, FlowMap("body", FlowMap("access_token", "test-access-token", "token_type", "Bearer", "expires_in", 3600)))
	for _, st := range steps {
		mh, _ := st.Request.Get("headers").ValueMap()
		if mh == nil {
			mh = &Map{Flow: true}
			st.Request.Set("headers", mh)
		}
		mh.Set("Authorization", "Bearer test-access-token")
	}
}
