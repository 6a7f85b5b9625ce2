package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/atomicfile"
	"github.com/plumbhq/plumb/internal/testcase"
	"github.com/plumbhq/plumb/steps"
)

// SecretPlaceholder is written in a saved test case instead of a secret
// setting's value: recorded answers do not depend on it, and a secret
// never goes into a file meant to be committed.
const SecretPlaceholder = "placeholder-not-the-secret"

// testFileOf is the sibling test file of an integration file (NAME.yaml →
// NAME.test.yaml), where the console appends cases.
func testFileOf(file string) string {
	return strings.TrimSuffix(file, filepath.Ext(file)) + ".test.yaml"
}

// saveCaseReq is POST /console/api/save-case.
type saveCaseReq struct {
	RunID string `json:"run_id"`
	Name  string `json:"name"`
}

// saveCaseResp says where the case went and whether it passes.
type saveCaseResp struct {
	File string `json:"file"`
	Name string `json:"name"`
	// YAML is the case as written.
	YAML     string   `json:"yaml"`
	Passed   bool     `json:"passed"`
	Failures []string `json:"failures,omitempty"`
}

// Case is a test case as the console writes it (the fields of
// testcase.Case it uses, in the order they read best).
type Case struct {
	Name        string                `yaml:"name"`
	Description string                `yaml:"description,omitempty"`
	Lead        map[string]any        `yaml:"lead"`
	Settings    map[string]any        `yaml:"settings,omitempty"`
	Responses   map[string][]Response `yaml:"responses,omitempty"`
	Expect      Expect                `yaml:"expect"`
}

// Response is one recorded answer.
type Response struct {
	Status  int               `yaml:"status,omitempty"`
	Headers map[string]string `yaml:"headers,omitempty"`
	Body    any               `yaml:"body,omitempty"`
	Error   string            `yaml:"error,omitempty"`
}

// Expect is what the run gave.
type Expect struct {
	Outcome  string                    `yaml:"outcome"`
	Step     string                    `yaml:"step,omitempty"`
	Reason   string                    `yaml:"reason,omitempty"`
	Steps    map[string]string         `yaml:"steps,omitempty"`
	Captured map[string]map[string]any `yaml:"captured,omitempty"`
	Lead     map[string]any            `yaml:"lead,omitempty"`
	Attempts map[string]int            `yaml:"attempts,omitempty"`
	Requests map[string][]RequestMatch `yaml:"requests,omitempty"`
}

// RequestMatch checks a request's method and path.
type RequestMatch struct {
	Method string `yaml:"method,omitempty"`
	Path   string `yaml:"path,omitempty"`
}

// skippedHeaders are response headers not worth recording: the test
// server sets its own.
var skippedHeaders = map[string]bool{"Date": true, "Content-Length": true, "Connection": true,
	"Transfer-Encoding": true, "Keep-Alive": true, "Server": true, "Vary": true}

// caseOf turns a kept run into a test case.
func caseOf(rec *runRecord, name string) Case {
	c := Case{Name: name, Description: "saved from the plumb test console on " + time.Now().UTC().Format("2006-01-02"),
		Lead: rec.lead, Responses: map[string][]Response{}}
	settings := map[string]any{}
	for k, v := range rec.values {
		if k == "base_url" {
			continue // the test server's
		}
		if rec.secret[k] {
			v = SecretPlaceholder
		}
		settings[k] = v
	}
	for k, req := range rec.required {
		if req && rec.secret[k] && settings[k] == nil {
			settings[k] = SecretPlaceholder
		}
	}
	if len(settings) > 0 {
		c.Settings = settings
	}
	requests := map[string][]RequestMatch{}
	for _, ex := range rec.exchanges {
		key := ex.Step
		u, _ := url.Parse(ex.URL)
		path := "/"
		if u != nil && u.Path != "" {
			path = u.Path
		}
		if strings.HasPrefix(key, "auth:") || key == "" {
			key = ex.Method + " " + path // a route: token fetches
		} else {
			requests[key] = append(requests[key], RequestMatch{Method: ex.Method, Path: path})
		}
		c.Responses[key] = append(c.Responses[key], recorded(ex))
	}
	res := rec.result
	x := Expect{Outcome: string(res.Outcome), Steps: map[string]string{}, Captured: map[string]map[string]any{},
		Lead: map[string]any{}, Attempts: map[string]int{}}
	if res.Outcome == engine.Failure || res.Outcome == engine.Error {
		x.Step = res.Step
	}
	if res.Outcome == engine.Failure && !strings.Contains(res.Reason, "****") {
		x.Reason = res.Reason
	}
	for _, sr := range res.Steps {
		x.Steps[sr.Name] = string(sr.Outcome)
		if len(sr.Captured) > 0 && !masked(sr.Captured) {
			x.Captured[sr.Name] = sr.Captured
		}
		if sr.Attempts > 0 {
			x.Attempts[sr.Name] = sr.Attempts
		}
		for k, v := range sr.Appended {
			if !masked(v) {
				x.Lead[k] = v
			}
		}
		if _, ok := requests[sr.Name]; !ok && sr.Outcome == engine.Skip {
			requests[sr.Name] = []RequestMatch{}
		}
	}
	// Request matchers only for steps that ran every try they sent (a
	// batch or a cache answer sends fewer requests than results).
	for _, sr := range res.Steps {
		if got, ok := requests[sr.Name]; ok && len(got) != sr.Attempts && sr.Outcome != engine.Skip {
			delete(requests, sr.Name)
		}
	}
	if len(requests) > 0 {
		x.Requests = requests
	}
	c.Expect = x
	return c
}

// masked reports whether a value holds the engine's secret mask.
func masked(v any) bool {
	b, _ := json.Marshal(v)
	return bytes.Contains(b, []byte("****"))
}

// recorded is an observed try as a recorded response.
func recorded(ex *engine.Exchange) Response {
	if ex.Status == 0 {
		if ex.Class == engine.ClassTimeout { // by the error's kind, not its text
			return Response{Error: "timeout"}
		}
		return Response{Error: "connection"}
	}
	r := Response{Status: ex.Status, Headers: map[string]string{}}
	for k, vs := range ex.ResponseHeader {
		if skippedHeaders[http.CanonicalHeaderKey(k)] || len(vs) == 0 {
			continue
		}
		r.Headers[k] = strings.Join(vs, ", ")
	}
	if len(r.Headers) == 0 {
		r.Headers = nil
	}
	body := ex.ResponseBody
	mt, _, _ := mime.ParseMediaType(ex.ResponseHeader.Get("Content-Type"))
	if mt == "application/json" || strings.HasSuffix(mt, "+json") {
		var v any
		dec := json.NewDecoder(strings.NewReader(body))
		if dec.Decode(&v) == nil && !dec.More() {
			switch v.(type) {
			case map[string]any, []any:
				r.Body = v
				return r
			}
		}
	}
	if body != "" {
		r.Body = body
	}
	return r
}

func (c *Console) saveCase(r *http.Request) (any, error) {
	var req saveCaseReq
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	rec := c.lookupRun(req.RunID)
	if rec == nil {
		return nil, badRequest("that run is no longer kept: run again, then save")
	}
	if rec.savable != "" {
		return nil, badRequest("%s", rec.savable)
	}
	name := strings.TrimSpace(req.Name)
	if name == "" {
		name = fmt.Sprintf("%s lead (saved %s)", rec.result.Outcome, time.Now().UTC().Format("2006-01-02 15:04:05"))
	}
	c.fileMu.Lock()
	defer c.fileMu.Unlock()
	cur, err := steps.ReadFile(rec.file)
	if err != nil {
		return nil, err
	}
	if string(cur) != rec.src {
		return nil, badRequest("the integration file changed since this run: run again, then save")
	}
	tf := testFileOf(rec.file)
	name = uniqueName(tf, name)
	tc := caseOf(rec, name)
	text, err := AppendCase(tf, tc)
	if err != nil {
		return nil, err
	}
	out := &saveCaseResp{File: c.idOf(tf), Name: name, YAML: rec.red.Redact(text)}
	// Run the saved case as plumb test would.
	loaded, err := testcase.Load(tf)
	if err != nil {
		out.Failures = append(out.Failures, rec.red.Redact(err.Error()))
	}
	for _, s := range loadedSuites(loaded) {
		for _, tcase := range s.Cases {
			if tcase.Name != name {
				continue
			}
			ctx, cancel := context.WithTimeout(r.Context(), runTimeout)
			cr := s.RunCase(ctx, tcase, testcase.Options{})
			cancel()
			out.Passed = cr.Passed
			for _, f := range cr.Failures {
				out.Failures = append(out.Failures, rec.red.Redact(f.String()))
			}
		}
	}
	c.log.Info("console saved a test case", "file", tf, "case", name, "passed", out.Passed)
	return out, nil
}

func loadedSuites(l *testcase.Loaded) []*testcase.Suite {
	if l == nil {
		return nil
	}
	return l.Suites
}

// uniqueName appends (2), (3)… to name while the test file has it.
func uniqueName(file, name string) string {
	b, err := steps.ReadFile(file)
	if err != nil {
		return name
	}
	var doc struct {
		Tests []struct {
			Name string `yaml:"name"`
		} `yaml:"tests"`
	}
	if yaml.Unmarshal(b, &doc) != nil {
		return name
	}
	taken := map[string]bool{}
	for _, t := range doc.Tests {
		taken[t.Name] = true
	}
	out := name
	for i := 2; taken[out]; i++ {
		out = fmt.Sprintf("%s (%d)", name, i)
	}
	return out
}

// AppendCase appends tc to the tests: of the test file (made when
// missing) and returns the case as written. Comments and the existing
// cases are kept as they are: the case is added as text at the end of the
// tests: list when that list is the file's last key (the usual layout),
// else the file is re-encoded. The file must load afterwards
// (testcase.Load); when it does not, it is put back and the error
// returned.
func AppendCase(file string, tc Case) (string, error) {
	item, err := marshalCases(tc)
	if err != nil {
		return "", err
	}
	old, err := steps.ReadFile(file)
	switch {
	case errors.Is(err, os.ErrNotExist):
		head := "# Stored test cases for " + filepath.Base(strings.TrimSuffix(file, ".test.yaml")+".yaml") +
			", run by `plumb test`.\n# Cases saved from the test console record the partner's answers as they came.\ntests:\n"
		if err := atomicfile.Replace(file, []byte(head+indent(string(item), "  ")), 0o644); err != nil {
			return "", err
		}
	case err != nil:
		return "", err
	default:
		next, err := appendText(old, item)
		if err != nil {
			return "", fmt.Errorf("%s: %w", file, err)
		}
		if err := atomicfile.Replace(file, next, 0o644); err != nil {
			return "", err
		}
	}
	if _, err := testcase.Load(file); err != nil {
		// put the file back as it was
		if old != nil {
			_ = atomicfile.Replace(file, old, 0o644)
		} else {
			_ = os.Remove(file)
		}
		return "", fmt.Errorf("the saved case does not load, nothing was written: %w", err)
	}
	return string(item), nil
}

// appendText adds item (a one-item YAML list at column 0) to the tests:
// list of a test file.
func appendText(old, item []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(old, &doc); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("a test file is a mapping holding a tests list")
	}
	top := doc.Content[0]
	var tests *yaml.Node
	last := false
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value == "tests" {
			tests = top.Content[i+1]
			last = i+2 == len(top.Content)
		}
	}
	if tests == nil {
		return nil, errors.New("the file has no tests list")
	}
	if tests.Kind != yaml.SequenceNode {
		return nil, errors.New("tests: is not a list")
	}
	if last && tests.Style&yaml.FlowStyle == 0 && len(tests.Content) > 0 {
		// the dash of the first item sets the indentation
		lines := strings.Split(string(old), "\n")
		first := tests.Content[0]
		if first.Line-1 < len(lines) {
			l := lines[first.Line-1]
			dash := strings.IndexByte(l, '-')
			if dash >= 0 && strings.TrimSpace(l[:dash]) == "" {
				out := bytes.TrimRight(old, " \t\n")
				out = append(out, "\n\n"...)
				out = append(out, indent(string(item), l[:dash])...)
				return out, nil
			}
		}
	}
	// Anything else: re-encode the document with the item added.
	var items []*yaml.Node
	var n yaml.Node
	if err := yaml.Unmarshal(item, &n); err != nil {
		return nil, err
	}
	items = n.Content[0].Content
	tests.Style = 0
	tests.Content = append(tests.Content, items...)
	var b bytes.Buffer
	e := yaml.NewEncoder(&b)
	e.SetIndent(2)
	if err := e.Encode(&doc); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// indent prefixes every non-empty line of s.
func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	var b strings.Builder
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			b.WriteString(prefix)
		}
		b.WriteString(l)
	}
	return b.String()
}

// marshalCases encodes cases as a YAML list at column 0, 2-space indent,
// integral numbers written as integers.
func marshalCases(cs ...Case) ([]byte, error) {
	var b bytes.Buffer
	e := yaml.NewEncoder(&b)
	e.SetIndent(2)
	var list []any
	for _, c := range cs {
		list = append(list, c)
	}
	if err := e.Encode(integral(list)); err != nil {
		return nil, err
	}
	return b.Bytes(), e.Close()
}

// integral turns integral float64 values (from JSON) into int64 so YAML
// writes 5125550142, not 5.125550142e+09, and writes a json.Number (a
// lead's or a result's number, exact) as the number it is, not as a
// string; structs are kept.
func integral(v any) any {
	switch v := v.(type) {
	case float64:
		if v == float64(int64(v)) && v < 1e18 && v > -1e18 {
			return int64(v)
		}
		return v
	case json.Number:
		return yamlNumber(v)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = integral(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = integral(x)
		}
		return out
	case Case:
		v.Lead, _ = integral(v.Lead).(map[string]any)
		v.Settings, _ = integral(v.Settings).(map[string]any)
		for k, rs := range v.Responses {
			for i := range rs {
				rs[i].Body = integral(rs[i].Body)
			}
			v.Responses[k] = rs
		}
		for k, m := range v.Expect.Captured {
			v.Expect.Captured[k], _ = integral(m).(map[string]any)
		}
		v.Expect.Lead, _ = integral(v.Expect.Lead).(map[string]any)
		return v
	}
	return v
}

// yamlNumber is a JSON number as YAML writes it: an integer digit for
// digit (beyond int64 too), anything else as its float64.
func yamlNumber(n json.Number) any {
	if i, err := n.Int64(); err == nil {
		return i
	}
	if digits := strings.TrimPrefix(string(n), "-"); digits != "" && strings.Trim(digits, "0123456789") == "" {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: string(n)}
	}
	if f, err := n.Float64(); err == nil {
		return integral(f)
	}
	return string(n)
}
