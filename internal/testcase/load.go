package testcase

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/steps"
)

// testSuffixes end the names of test files.
var testSuffixes = []string{".test.yaml", ".test.yml"}

func isTestFile(path string) bool {
	for _, s := range testSuffixes {
		if strings.HasSuffix(path, s) {
			return true
		}
	}
	return false
}

// Loaded is what Load found.
type Loaded struct {
	// Suites that loaded cleanly, in path order.
	Suites []*Suite
	// Untested lists integration files found in directories that have no
	// test cases.
	Untested []string
}

// Load finds and loads the test cases paths name:
//
//   - an integration file: its inline tests: and its sibling NAME.test.yaml
//     (at least one must exist);
//   - a test file (NAME.test.yaml);
//   - a directory: every test file in it, and every integration file with
//     inline tests (files whose top level has version: and steps:);
//   - DIR/...: the same for DIR and every directory below it (directories
//     named testdata or starting with . or _ are skipped, as go test does).
//
// Suites that load are returned even when others have problems; err is
// then a steps.ErrorList holding every problem, each as
// `file:line:col: message (hint)`.
func Load(paths ...string) (*Loaded, error) {
	l := &loader{integrations: map[string]*loadedIntegration{}, seen: map[string]bool{}}
	out := &Loaded{}
	for _, p := range paths {
		l.path(p, out)
	}
	return out, l.errs.Err()
}

// CheckInline checks the inline tests: of the integration plan, loaded
// from file, as Load checks them (the same problems at the same
// positions), without running them: for plumb validate. A file without
// tests: has none to check.
func CheckInline(file string, plan *engine.Plan) error {
	l := &loader{integrations: map[string]*loadedIntegration{}, seen: map[string]bool{}}
	l.integrations[filepath.Clean(file)] = &loadedIntegration{in: plan.Model(), steps: plan.StepNames(), ok: true}
	l.inlineSuite(file, &Loaded{})
	return l.errs.Err()
}

type loader struct {
	errs         steps.ErrorList
	integrations map[string]*loadedIntegration
	seen         map[string]bool // suite files already loaded
}

type loadedIntegration struct {
	in    *steps.Integration
	steps []string
	ok    bool
}

func (l *loader) fail(file, format string, args ...any) {
	l.errs.Add(steps.Pos{File: file}, "", format, args...)
}

func (l *loader) path(p string, out *Loaded) {
	if root, ok := strings.CutSuffix(p, "..."); ok {
		root = strings.TrimSuffix(root, "/")
		if root == "" || root == "." {
			root = "."
		}
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				name := d.Name()
				if path != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
					return filepath.SkipDir
				}
				l.dir(path, out)
			}
			return nil
		})
		if err != nil {
			l.fail(p, "cannot read: %v", err)
		}
		return
	}
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		l.fail(p, "cannot read: %v", errors.Unwrap(err))
	case fi.IsDir():
		l.dir(p, out)
	case isTestFile(p):
		if s := l.testFile(p); s != nil {
			out.Suites = append(out.Suites, s)
		}
	default:
		found := l.integrationSuites(p, out)
		if found == 0 && !l.integrationFailed(p) {
			l.errs.Add(steps.Pos{File: p}, "add tests: to it or write "+siblingTestFile(p), "no test cases")
		}
	}
}

// dir loads the suites of one directory (not its subdirectories).
func (l *loader) dir(dir string, out *Loaded) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		l.fail(dir, "cannot read: %v", errors.Unwrap(err))
		return
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		path := filepath.Join(dir, name)
		switch {
		case isTestFile(path):
			if s := l.testFile(path); s != nil {
				out.Suites = append(out.Suites, s)
			}
		case looksLikeIntegration(path):
			if l.inlineSuite(path, out) == 0 && !l.integrationFailed(path) && !fileExists(siblingTestFile(path)) {
				out.Untested = append(out.Untested, path)
			}
		}
	}
}

// looksLikeIntegration reports whether the YAML file at path has the
// top-level keys of an integration (version: and steps:).
func looksLikeIntegration(path string) bool {
	src, err := steps.ReadFile(path)
	if err != nil {
		return false
	}
	var top map[string]yaml.Node
	if yaml.Unmarshal(src, &top) != nil {
		return false
	}
	_, v := top["version"]
	_, s := top["steps"]
	return v && s
}

func fileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir()
}

// siblingTestFile is NAME.test.yaml for NAME.yaml.
func siblingTestFile(integration string) string {
	return strings.TrimSuffix(integration, filepath.Ext(integration)) + ".test.yaml"
}

// integrationSuites loads the inline suite of the integration at path and
// its sibling test file, and returns how many suites it found.
func (l *loader) integrationSuites(path string, out *Loaded) int {
	n := l.inlineSuite(path, out)
	for _, suffix := range testSuffixes {
		sib := strings.TrimSuffix(path, filepath.Ext(path)) + suffix
		if fileExists(sib) {
			n++
			if s := l.testFile(sib); s != nil {
				out.Suites = append(out.Suites, s)
			}
		}
	}
	return n
}

func (l *loader) integrationFailed(path string) bool {
	li := l.integrations[filepath.Clean(path)]
	return li != nil && !li.ok
}

// integration loads and compiles the integration at path once.
func (l *loader) integration(path string) *loadedIntegration {
	key := filepath.Clean(path)
	if li, ok := l.integrations[key]; ok {
		return li
	}
	li := &loadedIntegration{}
	l.integrations[key] = li
	plan, err := engine.Load(path) // read and compiled once: the model comes with the plan
	if err == nil {
		li.in, li.steps, li.ok = plan.Model(), plan.StepNames(), true
	}
	if err != nil {
		var list steps.ErrorList
		if errors.As(err, &list) {
			l.errs = append(l.errs, list...)
		} else {
			l.fail(path, "%v", err)
		}
	}
	return li
}

func (l *loader) inlineSuite(path string, out *Loaded) int {
	li := l.integration(path)
	if !li.ok || li.in.Tests == nil || !li.in.Tests.IsSet() {
		return 0
	}
	key := "inline:" + filepath.Clean(path)
	if l.seen[key] {
		return 1
	}
	l.seen[key] = true
	if s := l.suite(path, path, li, *li.in.Tests); s != nil {
		out.Suites = append(out.Suites, s)
	}
	return 1
}

// testFile loads the test file at path and the integration it tests.
func (l *loader) testFile(path string) *Suite {
	key := "file:" + filepath.Clean(path)
	if l.seen[key] {
		return nil
	}
	l.seen[key] = true
	src, err := steps.ReadFile(path)
	if err != nil {
		l.fail(path, "cannot read: %v", errors.Unwrap(err))
		return nil
	}
	doc, err := steps.ParseValue(path, src)
	var errs steps.ErrorList // the file's problems, then the test file's
	switch {
	case err != nil && !errors.As(err, &errs):
		l.errs = append(l.errs, steps.SyntaxErrors(path, src, err)...)
		return nil
	case !doc.IsSet() && err == nil:
		l.errs.Add(steps.Pos{File: path, Line: 1, Col: 1}, "a test file holds tests: (a list of cases)", "the file is empty")
		return nil
	}
	var tf testFile
	if errs = append(errs, doc.DecodeStrict(&tf, "test file")...); len(errs) > 0 {
		errs.Sort()
		l.errs = append(l.errs, errs...)
		return nil
	}
	var integ string
	if tf.Integration.Value != "" {
		integ = filepath.Join(filepath.Dir(path), tf.Integration.Value)
		if fi, err := os.Stat(integ); err != nil || !fi.Mode().IsRegular() {
			why := steps.ErrNotRegular
			if err != nil {
				why = errors.Unwrap(err)
			}
			l.errs.Add(tf.Integration.Pos, "the path is relative to the test file", "integration: cannot read %s: %v", tf.Integration.Value, why)
			return nil
		}
	} else {
		base := path
		for _, s := range testSuffixes {
			base = strings.TrimSuffix(base, s)
		}
		for _, ext := range []string{".yaml", ".yml"} {
			if fileExists(base + ext) {
				integ = base + ext
				break
			}
		}
		if integ == "" {
			l.errs.Add(tf.Pos, "or name it with integration: PATH", "no integration %s.yaml next to the test file", filepath.Base(base))
			return nil
		}
	}
	li := l.integration(integ)
	if !li.ok {
		return nil
	}
	return l.suite(path, integ, li, tf.Tests)
}

// suite decodes and checks the cases in node (aliases resolved), written
// in file.
func (l *loader) suite(file, integ string, li *loadedIntegration, node steps.Value) *Suite {
	n := len(l.errs)
	s := &Suite{File: file, Integration: integ, In: li.in, steps: li.steps}
	if node.Kind() != steps.ListValue {
		l.errs.Add(node.Pos, "tests: is a list of cases, each starting with - name: …", "tests must be a list, got %s", node.Describe())
		return nil
	}
	items := node.Items()
	if len(items) == 0 {
		l.errs.Add(node.Pos, "", "tests: has no cases")
		return nil
	}
	names := map[string]steps.Pos{}
	for i, cn := range items {
		c := new(Case)
		l.errs = append(l.errs, cn.DecodeStrict(c, fmt.Sprintf("tests[%d]", i))...)
		if c.Name != "" {
			if first, dup := names[c.Name]; dup {
				l.errs.Add(c.Pos, "first defined at "+first.String(), "duplicate test name %q", c.Name)
			}
			names[c.Name] = c.Pos
		}
		l.check(s, c)
		s.Cases = append(s.Cases, c)
	}
	if len(l.errs) > n {
		return nil
	}
	return s
}

// maxBodyFile bounds a recorded response's body_file: above the engine's
// default max_bytes, so that a test can record an answer too large.
const maxBodyFile = 64 << 20

// check resolves files, regexes and times of c and checks its names
// against the integration.
func (l *loader) check(s *Suite, c *Case) {
	k := &caseCheck{
		s: s, c: c, dir: filepath.Dir(s.File),
		add:      func(pos steps.Pos, hint, format string, args ...any) { l.errs.Add(pos, hint, format, args...) },
		stepHint: "steps: " + strings.Join(s.steps, ", "),
	}
	k.lead()
	k.clock()
	k.settings()
	l.checkWebhook(s, c, k.dir)
	k.responses()
	k.expect()
}

// caseCheck checks one case of a suite; each method checks one section.
// Problems are reported through add, in the order of the sections.
type caseCheck struct {
	s        *Suite
	c        *Case
	dir      string // relative file names are relative to it
	add      func(pos steps.Pos, hint, format string, args ...any)
	stepHint string // lists the integration's steps
}

func (k *caseCheck) isStep(name string) bool { return slices.Contains(k.s.steps, name) }

// lead resolves the case's lead: or lead_file: into c.lead (never nil).
func (k *caseCheck) lead() {
	c := k.c
	switch {
	case c.Lead.Set && c.LeadFile != "":
		k.add(c.Pos, "", "test %q: give lead or lead_file, not both", c.Name)
	case c.LeadFile != "":
		b, err := steps.ReadFile(filepath.Join(k.dir, c.LeadFile))
		if err != nil {
			k.add(c.Pos, "lead_file is relative to "+k.s.File, "test %q: lead_file: %v", c.Name, errors.Unwrap(err))
			break
		}
		if err := json.Unmarshal(b, &c.lead); err != nil || c.lead == nil {
			k.add(c.Pos, "", "test %q: lead_file %s must hold a JSON object", c.Name, c.LeadFile)
		}
	case c.Lead.Set:
		m, ok := c.Lead.V.(map[string]any)
		if !ok {
			k.add(c.Lead.Pos, "", "lead must be a mapping")
		}
		c.lead = m
	}
	if c.lead == nil {
		c.lead = map[string]any{}
	}
}

// clock parses the case's now: into c.now.
func (k *caseCheck) clock() {
	c := k.c
	if c.Now == "" {
		return
	}
	t, err := time.Parse(time.RFC3339, c.Now)
	if err != nil {
		k.add(c.Pos, "e.g. now: 2024-06-01T12:00:00Z", "test %q: now must be an RFC 3339 time, got %q", c.Name, c.Now)
	}
	c.now = t
}

// settings checks that the case sets only declared settings, and every
// required one without a default: a case's settings come only from the
// case (base_url from the test server), so one missing fails every run.
func (k *caseCheck) settings() {
	for _, e := range k.c.Settings {
		if _, ok := k.s.In.Settings.Get(e.Key); !ok {
			k.add(e.Pos, "declared settings: "+settingNames(k.s.In), "unknown setting %q", e.Key)
		}
	}
	for _, s := range k.s.In.Settings {
		if s.Value == nil || !s.Value.Required || s.Value.Default != nil || s.Key == "base_url" {
			continue
		}
		if v, ok := k.c.Settings.Get(s.Key); ok && v.V != nil {
			continue
		}
		hint := "a test's settings come only from the case"
		if s.Value.Env != "" {
			hint += "; the environment (" + s.Value.Env + ") is not read"
		}
		k.add(k.c.Pos, hint+": add "+s.Key+" under settings:", "test %q: required setting %q is not set", k.c.Name, s.Key)
	}
}

// responses checks the keys of responses: (a step or a route) and resolves
// each canned response.
func (k *caseCheck) responses() {
	for _, e := range k.c.Responses {
		if method, _, ok := route(e.Key); ok {
			if method != "" && !slices.Contains(steps.Methods, method) {
				k.add(e.Pos, "a route is \"METHOD /path\" or \"/path\"", "unknown HTTP method %q in route %q", method, e.Key)
			}
		} else if !k.isStep(e.Key) {
			k.add(e.Pos, k.stepHint+"; or a route such as \"POST /oauth/token\"", "responses: no step named %q", e.Key)
		}
		for _, r := range e.Value {
			checkResponse(k.dir, r, k.add)
		}
	}
}

// expect checks the case's expect: block, section by section.
func (k *caseCheck) expect() {
	x := &k.c.Expect
	k.expectResult(x)
	k.expectSteps(x)
	k.expectCaptured(x)
	if x.Lead.Set {
		if _, ok := x.Lead.V.(map[string]any); !ok {
			k.add(x.Lead.Pos, "", "expect.lead must be a mapping")
		}
	}
	k.expectRequests(x)
	for _, e := range x.Attempts {
		if !k.isStep(e.Key) {
			k.add(e.Pos, k.stepHint, "expect.attempts: no step named %q", e.Key)
		}
	}
}

// expectResult checks expect.outcome and expect.step, and compiles
// expect.reason_matches.
func (k *caseCheck) expectResult(x *Expect) {
	if !steps.Outcomes.Valid(steps.OutcomeValue(x.Outcome)) {
		k.add(x.Pos, steps.Outcomes.Hint(), "expect.outcome: unknown outcome %q", x.Outcome)
	}
	if x.Step != "" && !k.isStep(x.Step) {
		k.add(x.Pos, k.stepHint, "expect.step: no step named %q", x.Step)
	}
	if x.ReasonMatches != "" {
		re, err := regexp.Compile(x.ReasonMatches)
		if err != nil {
			k.add(x.Pos, "", "expect.reason_matches: %v", err)
		}
		x.reasonRE = re
	}
}

// expectSteps checks the step names and outcomes of expect.steps.
func (k *caseCheck) expectSteps(x *Expect) {
	for _, e := range x.Steps {
		if !k.isStep(e.Key) {
			k.add(e.Pos, k.stepHint, "expect.steps: no step named %q", e.Key)
		}
		if !steps.Outcomes.Has(steps.OutcomeValue(e.Value)) {
			k.add(e.Pos, steps.Outcomes.Hint(), "expect.steps.%s: unknown outcome %q", e.Key, e.Value)
		}
	}
}

// expectCaptured checks that expect.captured names steps and what they
// capture.
func (k *caseCheck) expectCaptured(x *Expect) {
	for _, e := range x.Captured {
		st := stepModel(k.s.In, e.Key)
		if st == nil {
			k.add(e.Pos, k.stepHint, "expect.captured: no step named %q", e.Key)
			continue
		}
		for _, ce := range e.Value {
			if _, ok := st.Capture.Get(ce.Key); !ok {
				names := make([]string, len(st.Capture))
				for i, c := range st.Capture {
					names[i] = c.Key
				}
				k.add(ce.Pos, "captures of "+e.Key+": "+strings.Join(names, ", "), "expect.captured.%s: step %s captures no %q", e.Key, e.Key, ce.Key)
			}
		}
	}
}

// expectRequests checks the keys of expect.requests (a step or a route) and
// compiles their url_matches.
func (k *caseCheck) expectRequests(x *Expect) {
	for _, e := range x.Requests {
		if _, _, ok := route(e.Key); !ok && !k.isStep(e.Key) {
			k.add(e.Pos, k.stepHint+"; or a route", "expect.requests: no step named %q", e.Key)
		}
		for i, m := range e.Value {
			if m == nil {
				continue
			}
			at := fmt.Sprintf("expect.requests.%s[%d]", e.Key, i)
			if m.Method.Value != "" && !slices.Contains(steps.Methods, strings.ToUpper(m.Method.Value)) {
				k.add(m.Method.Pos, "one of "+strings.Join(steps.Methods, ", "), "%s.method: unknown HTTP method %q", at, m.Method.Value)
			}
			if p := m.Path.Value; p != "" && (!strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#")) {
				k.add(m.Path.Pos, "a path starts with / and holds no query: query values go under query:, a whole URL under url:", "%s.path: %q is not a URL path", at, p)
			}
			if m.URLMatches == "" {
				continue
			}
			re, err := regexp.Compile(m.URLMatches)
			if err != nil {
				k.add(m.Pos, "", "url_matches: %v", err)
			}
			m.urlRE = re
		}
	}
}

func checkResponse(dir string, r *Response, add func(steps.Pos, string, string, ...any)) {
	if r == nil {
		return
	}
	if r.Status == 0 {
		r.Status = 200
	}
	if r.Status < 100 || r.Status > 599 {
		add(r.Pos, "", "status %d is not an HTTP status", r.Status)
	}
	switch r.Error {
	case "", "connection", "timeout":
	default:
		add(r.Pos, "connection closes the connection, timeout never answers", "unknown error %q", r.Error)
	}
	if ct, ok := headerValue(r.Headers, "Content-Type"); ok {
		r.contentType = ct
	}
	switch {
	case r.Body.Set && r.BodyFile != "":
		add(r.Pos, "", "give body or body_file, not both")
	case r.BodyFile != "":
		b, err := steps.ReadFileMax(filepath.Join(dir, r.BodyFile), maxBodyFile)
		if err != nil {
			add(r.Pos, "body_file is relative to the file the test is written in", "body_file: %v", errors.Unwrap(err))
			return
		}
		r.body = b
		if r.contentType == "" {
			r.contentType = mime.TypeByExtension(filepath.Ext(r.BodyFile))
		}
	case r.Body.Set:
		if text, ok := r.Body.V.(string); ok {
			r.body = []byte(text)
			break
		}
		b, err := json.Marshal(r.Body.V)
		if err != nil {
			add(r.Body.Pos, "", "body: %v", err)
		}
		r.body = b
		if r.contentType == "" {
			r.contentType = "application/json"
		}
	}
	if r.Error != "" && (r.Body.Set || r.BodyFile != "") {
		add(r.Pos, "", "a response with error: %s has no body", r.Error)
	}
	if r.contentType == "" && len(r.body) > 0 && json.Valid(bytes.TrimSpace(r.body)) && bytes.ContainsAny(r.body[:1], "{[") {
		// a JSON text body without a Content-Type: say so, as a partner would
		r.contentType = "application/json"
	}
}

func headerValue(h Map[string], name string) (string, bool) {
	for _, e := range h {
		if strings.EqualFold(e.Key, name) {
			return e.Value, true
		}
	}
	return "", false
}

// route splits a responses key of the form "METHOD /path" or "/path".
func route(key string) (method, path string, ok bool) {
	if strings.HasPrefix(key, "/") {
		return "", key, true
	}
	m, p, found := strings.Cut(key, " ")
	if found && strings.HasPrefix(strings.TrimSpace(p), "/") {
		return strings.ToUpper(m), strings.TrimSpace(p), true
	}
	return "", "", false
}

func stepModel(in *steps.Integration, name string) *steps.Step {
	for _, st := range in.Steps {
		if st != nil && st.Name.Value == name {
			return st
		}
	}
	return nil
}

func settingNames(in *steps.Integration) string {
	names := make([]string, len(in.Settings))
	for i, s := range in.Settings {
		names[i] = s.Key
	}
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}
