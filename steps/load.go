// Package steps is the YAML model of an integration file: the typed
// integration, its settings schema and its steps, loaded strictly so that
// every problem is reported at once as `file:line:col: message (hint)`.
//
// It is public because it is the format itself, declared once: every
// section and every enum (vocab.go) of the file, with the doc comments
// the JSON Schema and docs/format.md are generated from. engine.Plan.Model
// returns it (an embedder reads a compiled file's sections from it), and
// auth.Config is its auth section. Reading a file goes through the engine
// (engine.Load, engine.Parse), which parses once and compiles once.
//
// steps only checks structure (keys, kinds, names, choices). Templates,
// conditions, XPath and regexes, a webhook's signature scheme and dedupe
// key, are compiled, and their errors reported with the same positions, by
// the engine package when it builds a plan.
//
// The model is a leaf: it imports no other package of plumb's (the engine
// builds the runtime values, auth configurations and webhook receivers,
// from it), and no YAML type appears in its API: structured values are
// read through [Value].
package steps

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

func reflectValue(p any) reflect.Value { return reflect.ValueOf(p).Elem() }

// load reads and checks the integration file at path. The error, if any, is
// an ErrorList. With WithRoot, path itself must lie under the root too.
func load(path string, opts ...Option) (*Integration, error) {
	src, err := newLoadConfig(opts).readFile(path)
	if err != nil {
		return nil, ErrorList{{Pos: Pos{File: path}, Msg: fmt.Sprintf("cannot read integration: %v", errors.Unwrap(err))}}
	}
	return parse(path, src, opts...)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parse checks src as the integration file named file. The error, if any,
// is an ErrorList holding every problem found.
func parse(file string, src []byte, opts ...Option) (*Integration, error) {
	in, errs := ParseAll(file, src, opts...)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return in, nil
}

// ParseAll decodes and checks src as the integration file named file. It
// is how engine.Parse and engine.Load read a file (once per load: take
// the model from the compiled plan, engine.Plan.Model, rather than
// parsing again). Besides every problem found it returns the integration
// as far as it could be decoded (nil when the YAML itself is unreadable),
// so the compiler goes on and adds its own findings; the validator takes
// a half-decoded model without panicking (no recover). The integration
// is then incomplete and must not be run.
func ParseAll(file string, src []byte, opts ...Option) (in *Integration, errs ErrorList) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(src))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, syntaxError(file, src, err).(ErrorList)
	}
	in = &Integration{File: file}
	root := resolve(&doc)
	if root == nil || root.Kind == 0 {
		errs.Add(Pos{File: file, Line: 1, Col: 1}, "start from an example in examples/", "the file is empty")
		return nil, errs
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		line := extra.Line
		if n := resolve(&extra); n != nil && n.Line > 0 {
			line = n.Line
		}
		errs.Add(Pos{File: file, Line: max(line, 1), Col: 1}, "one integration per file: remove the --- line and what follows, or move it to a file of its own", "extra YAML document")
	} else if !errors.Is(err, io.EOF) {
		errs = append(errs, syntaxError(file, src, err).(ErrorList)...)
	}
	if !checkYAML(file, &doc, &errs) {
		return nil, errs
	}
	d := &decoder{file: file, lines: splitLines(src), errs: &errs}
	d.decode(root, reflect.ValueOf(in).Elem(), "integration")
	in.includes(newLoadConfig(opts), &errs)
	in.validate(&errs)
	return in, errs
}

// syntaxError turns a yaml.v3 syntax error into positioned errors. yaml.v3
// reports only a line; the column given is where that line's text starts.
// unknownAnchor matches yaml.v3's error for an alias with no anchor; it
// gives no position.
var unknownAnchor = regexp.MustCompile(`^(?:yaml: )?unknown anchor '(.*)' referenced$`)

// aliasPos is where the alias *name is first written in src (1:1 when it
// cannot be found).
func aliasPos(src []byte, name string) (line, col int) {
	re := regexp.MustCompile(`(^|[\s\[{,:-])\*` + regexp.QuoteMeta(name) + `($|[\s\]},])`)
	for i, l := range strings.Split(string(src), "\n") {
		if c := strings.Index(" "+l, " #"); c >= 0 {
			l = l[:c] // a comment
		}
		if loc := re.FindStringSubmatchIndex(l); loc != nil {
			return i + 1, loc[3] + 1
		}
	}
	return 1, 1
}

func syntaxError(file string, src []byte, err error) error {
	var errs ErrorList
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(line)
		m := yamlLine.FindStringSubmatch(line)
		if a := unknownAnchor.FindStringSubmatch(line); m == nil && a != nil {
			l, c := aliasPos(src, a[1])
			errs.Add(Pos{File: file, Line: l, Col: c}, "an alias *"+a[1]+" repeats what an anchor &"+a[1]+" marks earlier in the file; quote a value that starts with *",
				"invalid YAML: unknown anchor %q referenced", a[1])
			continue
		}
		if m == nil {
			errs.Add(Pos{File: file, Line: 1, Col: 1}, "", "invalid YAML: %s", strings.TrimPrefix(line, "yaml: "))
			continue
		}
		n, _ := strconv.Atoi(m[1])
		if strings.HasPrefix(m[2], "did not find expected ',' or") || strings.HasPrefix(m[2], "found unexpected end of stream") {
			// yaml.v3 names the line before the one where the { or [
			// opens: find the token that breaks it
			found := false
			for _, try := range []int{n + 1, n} {
				if l, c, what, ok := flowProblem(src, try); ok {
					errs.Add(Pos{File: file, Line: l, Col: c}, "inside { } and [ ], quote values that contain ': ', ',' or brackets", "invalid YAML: %s", what)
					found = true
					break
				}
			}
			if found {
				continue
			}
		}
		errs.Add(Pos{File: file, Line: n, Col: firstCol(src, n)}, "check indentation and quoting on this line or the one before", "invalid YAML: %s", m[2])
	}
	return errs.Err()
}

func firstCol(src []byte, line int) int {
	lines := strings.Split(string(src), "\n")
	if line < 1 || line > len(lines) {
		return 1
	}
	l := lines[line-1]
	return len(l) - len(strings.TrimLeft(l, " \t")) + 1
}

var (
	identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	fieldRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)
	methods = Methods
)

func oneOf(s string, list []string) bool {
	for _, x := range list {
		if s == x {
			return true
		}
	}
	return false
}

func choices(list []string) string {
	var out []string
	for _, x := range list {
		if x != "" {
			out = append(out, x)
		}
	}
	return "one of " + strings.Join(out, ", ")
}

// validate checks what the decoder cannot: allowed values, names, and
// consistency between parts.
func (in *Integration) validate(errs *ErrorList) {
	if in.Version != 1 && in.Version != 0 { // 0: missing, which the decoder reports
		errs.Add(in.Pos, "this plumb reads version: 1", "unsupported version %d", in.Version)
	}
	for _, s := range in.Settings {
		if !identRE.MatchString(s.Key) {
			errs.Add(s.Pos, "use letters, digits and _", "setting name %q is not a valid name", s.Key)
		}
		if s.Value == nil {
			errs.Add(s.Pos, "use {} for a setting without options", "setting %q has no definition", s.Key)
			continue
		}
		if !SettingTypes.Valid(s.Value.Type) {
			errs.Add(s.Value.Pos, SettingTypes.Hint(), "setting %q: unknown type %q", s.Key, s.Value.Type)
		} else {
			s.Value.checkDefault(s.Key, errs)
		}
	}
	in.Auth.validate(errs)
	validateRules(in.Retry, errs)
	in.Limits.validate(errs)
	in.Source.validate(errs)
	in.Webhook.validate(in, errs)
	in.Callback.validate(in, errs)
	in.History.validate(errs)
	if in.HTTP != nil {
		in.HTTP.TLS.validate(errs)
	}
	if len(in.Steps) == 0 {
		errs.Add(in.Pos, "add at least one step under steps:", "integration has no steps")
	}
	seen := map[string]Pos{}
	for _, st := range in.Steps {
		if st != nil && st.Parallel != nil {
			if st.Name.IsSet() || st.Request != nil || st.When.IsSet() || len(st.Parallel) < 2 {
				errs.Add(st.Pos, "a parallel item is only `parallel: [steps…]` (and fail_fast), with two steps or more", "bad parallel group")
			}
			for _, sub := range st.Parallel {
				if sub != nil && sub.Parallel != nil {
					errs.Add(sub.Pos, "", "parallel groups do not nest")
				}
				in.validateStep(sub, seen, errs)
			}
			continue
		}
		in.validateStep(st, seen, errs)
	}
	for _, v := range in.Vars {
		if !identRE.MatchString(v.Key) {
			errs.Add(v.Pos, "use letters, digits and _", "var name %q is not a valid name", v.Key)
		}
	}
}

func (in *Integration) validateStep(st *Step, seen map[string]Pos, errs *ErrorList) {
	if st == nil {
		return // the decoder reported the empty item at its position
	}
	if st.FailFast {
		errs.Add(st.Pos, "fail_fast goes with parallel", "fail_fast outside a parallel group")
	}
	if !st.Name.IsSet() {
		errs.Add(st.Pos, "every step needs a name: later steps read its captures as steps.<name>", "step: missing required key \"name\"")
	}
	if st.Request == nil {
		errs.Add(st.Pos, "", "step %q: missing required key \"request\"", st.Name.Value)
	}
	{
		name := st.Name.Value
		switch {
		case !st.Name.IsSet():
		case !identRE.MatchString(name):
			errs.Add(st.Name.Pos, "later steps refer to it as steps.<name>, so use letters, digits and _", "step name %q is not a valid name", name)
		case seen[name] != Pos{}:
			errs.Add(st.Name.Pos, "first defined at "+seen[name].String(), "duplicate step name %q", name)
		default:
			seen[name] = st.Name.Pos
		}
		st.validate(errs)
	}
}

func (st *Step) validate(errs *ErrorList) {
	if !ResponseFormats.Valid(st.Response.Format) {
		errs.Add(st.Response.Pos, ResponseFormats.Hint(), "step %q: unknown response format %q", st.Name.Value, st.Response.Format)
	}
	if st.Response.MaxBytes < 0 {
		errs.Add(st.Response.Pos, "", "step %q: max_bytes must not be negative", st.Name.Value)
	}
	st.Auth.validate(errs)
	checkWhen(st.When, "when", errs)
	checkWhen(st.Outcome.FailureWhen, "outcome.failure_when", errs)
	checkWhen(st.Outcome.ErrorWhen, "outcome.error_when", errs)
	for i, v := range st.Variants {
		if v == nil {
			continue
		}
		v.Auth.validate(errs)
		checkWhen(v.When, "variant when", errs)
		checkURL(v.URL, "variant url", errs)
		checkHeaders(v.Headers, "variant headers", errs)
		v.Body.validate(errs)
		if v.Method.IsSet() && !oneOf(strings.ToUpper(v.Method.Value), methods) {
			errs.Add(v.Method.Pos, choices(methods), "variant: unknown HTTP method %q", v.Method.Value)
		}
		if !v.When.IsSet() && i != len(st.Variants)-1 {
			errs.Add(v.Pos, "the variant without when is the else, so it comes last", "variant without when before other variants")
		}
	}
	if b := st.Batch; b != nil && (b.Size < 1 || b.Wait <= 0) {
		errs.Add(b.Pos, "e.g. batch: { size: 100, wait: 5m, id: lead_id }", "batch needs size ≥ 1 and wait > 0")
	}
	if st.Batch != nil && st.Cache != nil {
		errs.Add(st.Cache.Pos, "", "a batch step cannot cache responses")
	}
	for _, v := range st.Vars {
		if !identRE.MatchString(v.Key) {
			errs.Add(v.Pos, "use letters, digits and _", "var name %q is not a valid name", v.Key)
		}
	}
	if !RedirectPolicies.Valid(st.FollowRedirects) {
		errs.Add(keyAt(st.KeyPos, "follow_redirects", st.Pos), RedirectPolicies.Hint(), "step %q: unknown follow_redirects %q", st.Name.Value, st.FollowRedirects)
	}
	if st.MaxAttempts < 0 {
		errs.Add(st.Pos, "1 sends the request once", "step %q: max_attempts must be at least 1", st.Name.Value)
	}
	if !OnErrors.Valid(st.OnError) {
		errs.Add(keyAt(st.KeyPos, "on_error", st.Pos), OnErrors.Hint(), "step %q: unknown on_error %q", st.Name.Value, st.OnError)
	}
	validateRules(st.Retry, errs)
	st.Limits.validate(errs)
	st.Breaker.validate(errs)
	for i, f := range st.Fallback {
		if f == nil {
			continue
		}
		n := 0
		for _, set := range []bool{f.Request != nil, f.Cache != nil, f.Defaults != nil, f.Skip != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			errs.Add(f.Pos, "a link is one of request, cache, defaults (with flag) or skip", "fallback link has %d kinds set", n)
		}
		if f.Flag != "" && (f.Defaults == nil || !fieldRE.MatchString(f.Flag)) {
			errs.Add(f.Pos, "flag goes with defaults and names a lead field", "bad flag %q", f.Flag)
		}
		if r := f.Request; r != nil {
			checkURL(r.URL, "fallback url", errs)
			checkHeaders(r.Headers, "fallback headers", errs)
		}
		if f.Skip != nil && i != len(st.Fallback)-1 {
			errs.Add(f.Pos, "skip always answers, so links after it never run", "skip must be the last fallback link")
		}
	}
	for _, c := range st.Capture {
		if !identRE.MatchString(c.Key) {
			errs.Add(c.Pos, "use letters, digits and _", "capture name %q is not a valid name", c.Key)
		}
		if c.Value != nil && !CaptureTypes.Valid(c.Value.Type) {
			errs.Add(c.Value.At("type"), CaptureTypes.Hint(), "capture %q: unknown type %q", c.Key, c.Value.Type)
		}
	}
	fields := make([]string, len(st.Append))
	for i, a := range st.Append {
		if !fieldRE.MatchString(a.Key) {
			errs.Add(a.Pos, "use a lead field name such as risk_score or enrichment.score", "append: %q is not a valid field name", a.Key)
		}
		fields[i] = a.Key
	}
	for _, c := range FieldClashes(fields) {
		errs.Add(st.Append[c.Field].Pos, "a field is a value or holds fields, not both: rename one", "append: %q clashes with %q", fields[c.Field], fields[c.Prefix])
	}
	for _, f := range st.Fallback {
		if f == nil {
			continue
		}
		for _, d := range f.Defaults {
			if st.Capture.Has(d.Key) {
				continue
			}
			hint := "defaults name the step's captures"
			if len(st.Capture) == 0 {
				hint = "the step has no captures: defaults name the step's captures"
			} else if s := suggest(d.Key, st.Capture.Keys()); s != "" {
				hint = fmt.Sprintf("did you mean %q?", s)
			}
			errs.Add(d.Pos, hint, "fallback defaults: step %q has no capture %q", st.Name.Value, d.Key)
		}
	}
	if r := st.Request; r != nil {
		m := strings.ToUpper(r.Method.Value)
		if r.Method.IsSet() && !oneOf(m, methods) {
			errs.Add(r.Method.Pos, choices(methods), "unknown HTTP method %q", r.Method.Value)
		}
		checkURL(r.URL, "url", errs)
		checkHeaders(r.Headers, "headers", errs)
		r.Body.validate(errs)
	}
}

// ValidTrigger reports whether s can appear in a retry rule's on: list.
func ValidTrigger(s string) bool {
	switch s {
	case "timeout", "connection", "tls", "error_when", "failure_when", "1xx", "2xx", "3xx", "4xx", "5xx":
		return true
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= 100 && n <= 599
}

func (a *Auth) validate(errs *ErrorList) {
	if a == nil {
		return
	}
	// x-NAME: a custom scheme the embedder registers (engine.WithAuthScheme)
	if !AuthTypes.Has(AuthType(a.Type)) {
		errs.Add(a.Pos, AuthTypes.Hint(), "auth: unknown type %q", a.Type)
	}
	a.checkValues(errs)
}

func (t *TLS) validate(errs *ErrorList) {
	if t == nil {
		return
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs.Add(t.Pos, "a client certificate needs both cert_file and key_file", "tls: cert_file and key_file go together")
	}
	if !TLSVersions.Valid(t.MinVersion) {
		errs.Add(t.Pos, TLSVersions.Hint(), "tls: unsupported min_version %q", t.MinVersion)
	}
}

func (b *Body) validate(errs *ErrorList) {
	if b == nil {
		return
	}
	n := 0
	for _, set := range []bool{b.JSON != nil, b.Form != nil, b.XML.IsSet(), b.Text.IsSet()} {
		if set {
			n++
		}
	}
	if n != 1 {
		errs.Add(b.Pos, "a body is exactly one of json, form, xml or text", "body has %d kinds set", n)
	}
}

// keyAt is the position of key's value in a mapping whose KeyPos is kp,
// or def when the key is absent.
func keyAt(kp map[string]Pos, key string, def Pos) Pos {
	if p, ok := kp[key]; ok {
		return p
	}
	return def
}

func validateRules(rules []*RetryRule, errs *ErrorList) {
	for _, r := range rules {
		if r == nil {
			continue
		}
		if !RetryActions.Has(r.Action) {
			errs.Add(keyAt(r.KeyPos, "action", r.Pos), RetryActions.Hint(), "retry rule: unknown action %q", r.Action)
		}
		if len(r.On) == 0 {
			errs.Add(r.Pos, "e.g. on: [429, 5xx, timeout]", "retry rule matches nothing")
		}
		for _, on := range r.On {
			if !ValidTrigger(on.Value) {
				errs.Add(on.Pos, "use a status code (429), a class (5xx), timeout, connection, error_when or failure_when", "retry rule: unknown trigger %q", on.Value)
			}
		}
		if r.MaxAttempts < 0 || (r.MaxAttempts > 0 && r.Action != ActionRetry) {
			errs.Add(r.Pos, "max_attempts counts tries of a retry rule, the first included", "retry rule: max_attempts %d does not apply here", r.MaxAttempts)
		}
		if r.RetryAfterMax < 0 {
			errs.Add(r.Pos, "a duration such as 2m", "retry rule: negative retry_after_max")
		}
		if !RetryAfterPolicies.Valid(r.RetryAfter) {
			errs.Add(keyAt(r.KeyPos, "retry_after", r.Pos), RetryAfterPolicies.Hint(), "retry rule: unknown retry_after %q", r.RetryAfter)
		}
		if b := r.Backoff; b != nil && (b.Multiplier < 0 || (b.Max > 0 && b.Initial > b.Max)) {
			errs.Add(b.Pos, "initial must not exceed max; multiplier ≥ 1", "bad backoff")
		}
	}
}
