package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/engine/eventlog"
	"github.com/plumbhq/plumb/engine/observe"
	"github.com/plumbhq/plumb/internal/atomicfile"
	"github.com/plumbhq/plumb/steps"
)

// runTimeout bounds one run from the page.
const runTimeout = 2 * time.Minute

// keptRuns is how many runs the console remembers for saving as cases.
const keptRuns = 64

var sprintf = fmt.Sprintf

func quote(s string) string { return strconv.Quote(s) }

// planInfo is what the console reads from an integration's source.
type planInfo struct {
	name     string
	steps    []string
	settings []settingInfo
	in       *steps.Integration
}

// settingInfo is one declared setting as the page sees it. Value is never
// set for a secret setting.
type settingInfo struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Required bool   `json:"required,omitempty"`
	Secret   bool   `json:"secret,omitempty"`
	Env      string `json:"env,omitempty"`
	// Value is the value the service would use (settings file, env or
	// default) as JSON text; empty for secrets and unset settings.
	Value string `json:"value,omitempty"`
	// Set says a value exists (for secrets, the only thing shown).
	Set bool `json:"set"`
	// Source says where the value comes from: settings file, env,
	// default or sandbox.
	Source string `json:"source,omitempty"`
}

// parseInfo reads an integration's name, steps and declared settings.
func parseInfo(file string, src []byte) (*planInfo, error) {
	in, err := steps.Parse(file, src)
	if in == nil {
		return nil, err
	}
	p := &planInfo{name: in.Name.Value, in: in}
	for _, st := range in.Steps {
		p.steps = append(p.steps, st.Name.Value)
	}
	if p.steps == nil {
		p.steps = []string{}
	}
	for _, e := range in.Settings {
		s := e.Value
		if s == nil {
			s = &steps.Setting{}
		}
		typ := s.Type
		if typ == "" {
			typ = "string"
		}
		p.settings = append(p.settings, settingInfo{Name: e.Key, Type: typ, Required: s.Required, Secret: s.Secret, Env: s.Env})
	}
	return p, err
}

// settingsValues reads the settings file of an integration file.
func (c *Console) settingsValues(file string) (map[string]any, error) {
	values := map[string]any{}
	sf := c.cfg.SettingsFile(file)
	b, err := os.ReadFile(sf)
	if errors.Is(err, os.ErrNotExist) {
		return values, nil
	}
	if err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	if err := yaml.Unmarshal(b, &values); err != nil {
		return nil, fmt.Errorf("settings %s: %w", sf, err)
	}
	if values == nil {
		values = map[string]any{}
	}
	return values, nil
}

// secretValues lists the values of p's secret settings known to the
// service: given in values, read from env, or defaults.
func (c *Console) secretValues(p *planInfo, values map[string]any) []string {
	var out []string
	add := func(v any) {
		switch v := v.(type) {
		case nil:
		case string:
			if v != "" {
				out = append(out, v)
			}
		default:
			if b, err := json.Marshal(v); err == nil {
				out = append(out, strings.Trim(string(b), `"`))
			}
		}
	}
	for _, e := range p.in.Settings {
		if e.Value == nil || !e.Value.Secret {
			continue
		}
		add(values[e.Key])
		add(e.Value.Default)
		if e.Value.Env != "" && c.cfg.LookupEnv != nil {
			if v, ok := c.cfg.LookupEnv(e.Value.Env); ok {
				add(v)
			}
		}
	}
	return out
}

// scrub replaces each secret in text (the last line of defence; the
// engine masks its output already).
func scrub(text string, secrets []string) string {
	for _, s := range secrets {
		if len(s) >= 3 {
			text = strings.ReplaceAll(text, s, "****")
		}
	}
	return text
}

// redactLoose masks the secrets of the integration file in text, as far as
// they are known (the file may not load).
func (c *Console) redactLoose(file, text string) string {
	src, err := os.ReadFile(file)
	if err != nil {
		return text
	}
	p, _ := parseInfo(file, src)
	if p == nil || p.in == nil {
		return text
	}
	values, _ := c.settingsValues(file)
	return scrub(text, c.secretValues(p, values))
}

// integrationView is GET /console/api/integration.
type integrationView struct {
	ID       string        `json:"id"`
	File     string        `json:"file"`
	Name     string        `json:"name,omitempty"`
	Steps    []string      `json:"steps"`
	Settings []settingInfo `json:"settings"`
	// YAML is the file's source; YAMLHidden says why it is not shown (a
	// secret value written in it).
	YAML       string    `json:"yaml,omitempty"`
	YAMLHidden string    `json:"yaml_hidden,omitempty"`
	Errors     []loadErr `json:"errors,omitempty"`
	// Lead is a sample lead (lead.json beside the file), as JSON text.
	Lead     string `json:"lead"`
	TestFile string `json:"test_file"`
	Sandbox  bool   `json:"sandbox,omitempty"`
}

// loadErr is one load error at its place in the YAML.
type loadErr struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Col     int    `json:"col,omitempty"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
	// Other is set when the error is in another file (an include).
	Other bool `json:"other,omitempty"`
}

func loadErrors(file string, err error, secrets []string) []loadErr {
	if err == nil {
		return nil
	}
	var list steps.ErrorList
	if !errors.As(err, &list) {
		return []loadErr{{Message: scrub(err.Error(), secrets)}}
	}
	out := make([]loadErr, 0, len(list))
	for _, e := range list {
		out = append(out, loadErr{File: e.Pos.File, Line: e.Pos.Line, Col: e.Pos.Col,
			Message: scrub(e.Msg, secrets), Hint: scrub(e.Hint, secrets), Other: e.Pos.File != "" && e.Pos.File != file})
	}
	return out
}

func (c *Console) getIntegration(r *http.Request) (any, error) {
	file, err := c.resolve(r.URL.Query().Get("id"))
	if err != nil {
		return nil, err
	}
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	v := &integrationView{ID: c.idOf(file), File: file, Steps: []string{}, Settings: []settingInfo{},
		TestFile: c.idOf(testFileOf(file)), Sandbox: c.cfg.SandboxURL != "", Lead: "{}"}
	values, verr := c.settingsValues(file)
	p, perr := parseInfo(file, src)
	var secrets []string
	if p != nil {
		secrets = c.secretValues(p, values)
		v.Name, v.Steps = p.name, p.steps
		for _, s := range p.settings {
			s = c.describe(p, s, values)
			v.Settings = append(v.Settings, s)
		}
	}
	if perr == nil {
		var plan *engine.Plan
		if plan, perr = engine.Parse(file, src); plan != nil {
			v.Steps = plan.StepNames()
		}
	}
	v.Errors = loadErrors(file, perr, secrets)
	if verr != nil {
		v.Errors = append(v.Errors, loadErr{Message: scrub(verr.Error(), secrets)})
	}
	text := string(src)
	if scrub(text, secrets) != text {
		v.YAMLHidden = "the file holds a secret setting's value; edit it on disk, or move the value to the settings file or an env variable"
	} else {
		v.YAML = text
	}
	if b, err := os.ReadFile(dirOf(file) + "lead.json"); err == nil {
		var lead map[string]any
		if json.Unmarshal(firstLine(b), &lead) == nil {
			pretty, _ := json.MarshalIndent(lead, "", "  ")
			v.Lead = scrub(string(pretty), secrets)
		}
	}
	return v, nil
}

// describe fills in where a setting's value comes from; a secret's value
// is never copied.
func (c *Console) describe(p *planInfo, s settingInfo, values map[string]any) settingInfo {
	var val any
	switch {
	case s.Name == "base_url" && c.cfg.SandboxURL != "":
		val, s.Source = c.cfg.SandboxURL, "sandbox"
	case values[s.Name] != nil:
		val, s.Source = values[s.Name], "settings file"
	default:
		if s.Env != "" && c.cfg.LookupEnv != nil {
			if v, ok := c.cfg.LookupEnv(s.Env); ok {
				val, s.Source = v, "env "+s.Env
			}
		}
		if val == nil {
			if d, ok := p.in.Settings.Get(s.Name); ok && d != nil && d.Default != nil {
				val, s.Source = d.Default, "default"
			}
		}
	}
	s.Set = val != nil
	if s.Set && !s.Secret {
		if str, ok := val.(string); ok {
			s.Value = str
		} else if b, err := json.Marshal(val); err == nil {
			s.Value = string(b)
		}
	}
	return s
}

// firstLine is the first non-empty line of b (lead.json may be NDJSON), or
// b itself when it is one JSON document.
func firstLine(b []byte) []byte {
	if json.Valid(b) {
		return b
	}
	for _, l := range bytes.Split(b, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 {
			return l
		}
	}
	return b
}

func dirOf(file string) string {
	i := strings.LastIndexAny(file, `/\`)
	return file[:i+1]
}

// validateReq is POST /console/api/validate and /save-yaml.
type validateReq struct {
	ID   string `json:"id"`
	YAML string `json:"yaml"`
}

type validateResp struct {
	OK     bool      `json:"ok"`
	Name   string    `json:"name,omitempty"`
	Steps  []string  `json:"steps"`
	Errors []loadErr `json:"errors"`
	Saved  bool      `json:"saved,omitempty"`
}

// check parses a draft of an integration file the way the service would.
func (c *Console) check(file, src string) (*validateResp, []string) {
	values, _ := c.settingsValues(file)
	out := &validateResp{Steps: []string{}, Errors: []loadErr{}}
	p, _ := parseInfo(file, []byte(src))
	var secrets []string
	if p != nil {
		secrets = c.secretValues(p, values)
		out.Name, out.Steps = p.name, p.steps
	}
	if old, err := os.ReadFile(file); err == nil {
		if op, _ := parseInfo(file, old); op != nil {
			secrets = append(secrets, c.secretValues(op, values)...)
		}
	}
	plan, err := engine.Parse(file, []byte(src))
	if plan != nil {
		out.Steps = plan.StepNames()
	}
	out.Errors = loadErrors(file, err, secrets)
	if out.Errors == nil {
		out.Errors = []loadErr{}
	}
	out.OK = err == nil
	return out, secrets
}

// checkDraft reads a validate or save request and checks its draft.
func (c *Console) checkDraft(r *http.Request) (req validateReq, file string, out *validateResp, err error) {
	if err = decodeBody(r, &req); err != nil {
		return req, "", nil, err
	}
	if file, err = c.resolve(req.ID); err != nil {
		return req, "", nil, err
	}
	out, _ = c.check(file, req.YAML)
	return req, file, out, nil
}

func (c *Console) validate(r *http.Request) (any, error) {
	_, _, out, err := c.checkDraft(r)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// saveYAML writes an integration file, only when it loads.
func (c *Console) saveYAML(r *http.Request) (any, error) {
	req, file, out, err := c.checkDraft(r)
	if err != nil {
		return nil, err
	}
	if !out.OK {
		return out, nil
	}
	c.fileMu.Lock()
	err = atomicfile.Replace(file, []byte(req.YAML), 0o644)
	c.fileMu.Unlock()
	if err != nil {
		return nil, err
	}
	out.Saved = true
	c.log.Info("console saved an integration file", "file", file)
	if c.cfg.Changed != nil {
		c.cfg.Changed()
	}
	return out, nil
}

// runReq is POST /console/api/run.
type runReq struct {
	ID string `json:"id"`
	// YAML, when set, is a draft of the file to run instead of the file.
	YAML string          `json:"yaml,omitempty"`
	Lead json.RawMessage `json:"lead"`
	// Settings are overrides by name, as text typed in the page (parsed
	// by the setting's type); an empty secret means "keep".
	Settings map[string]string `json:"settings,omitempty"`
	// Step runs only that step; empty runs the whole flow.
	Step  string                    `json:"step,omitempty"`
	Prior map[string]map[string]any `json:"prior,omitempty"`
}

// try is one observed HTTP try, for the page.
type try struct {
	*engine.Exchange
	// ResponsePretty is the response body indented (JSON or XML), when it
	// parses.
	ResponsePretty string `json:"response_pretty,omitempty"`
	RequestPretty  string `json:"request_pretty,omitempty"`
}

// runResp is what a run answers.
type runResp struct {
	RunID  string         `json:"run_id,omitempty"`
	Step   string         `json:"step,omitempty"`
	Result *engine.Result `json:"result,omitempty"`
	Tries  []try          `json:"tries"`
	Errors []loadErr      `json:"errors,omitempty"`
	// Draft is set when the run used the page's unsaved YAML.
	Draft bool `json:"draft,omitempty"`
	// Savable says whether the run can be saved as a test case, and
	// Unsavable why not.
	Savable   bool   `json:"savable"`
	Unsavable string `json:"unsavable,omitempty"`
}

// runRecord is a run kept for saving it as a test case.
type runRecord struct {
	file      string
	src       string
	lead      map[string]any
	values    map[string]any // explicit settings (file and overrides)
	secret    map[string]bool
	required  map[string]bool
	step      string
	result    *engine.Result
	exchanges []*engine.Exchange
	secrets   []string
	savable   string // "" when savable, else why not
}

func (c *Console) run(r *http.Request) (any, error) {
	var req runReq
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	file, err := c.resolve(req.ID)
	if err != nil {
		return nil, err
	}
	onDisk, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	src := string(onDisk)
	draft := req.YAML != "" && req.YAML != src
	if draft {
		src = req.YAML
	}
	var lead map[string]any
	if len(bytes.TrimSpace(req.Lead)) == 0 {
		lead = map[string]any{}
	} else if err := json.Unmarshal(req.Lead, &lead); err != nil || lead == nil {
		return nil, badRequest("the lead must be a JSON object")
	}
	values, err := c.settingsValues(file)
	if err != nil {
		return nil, err
	}
	p, perr := parseInfo(file, []byte(src))
	var secrets []string
	if p != nil {
		secrets = c.secretValues(p, values)
	}
	if perr != nil || p == nil {
		return &runResp{Tries: []try{}, Errors: loadErrors(file, perr, secrets), Draft: draft}, nil
	}
	rec := &runRecord{file: file, src: src, lead: lead, step: req.Step, secret: map[string]bool{}, required: map[string]bool{}}
	for _, s := range p.settings {
		rec.secret[s.Name], rec.required[s.Name] = s.Secret, s.Required
	}
	for name, text := range req.Settings {
		info, ok := findSetting(p.settings, name)
		if !ok {
			return nil, badRequest("the integration declares no setting %s", quote(name))
		}
		if info.Secret && text == "" {
			continue // keep the service's value
		}
		v, err := parseSetting(info, text)
		if err != nil {
			return nil, badRequest("setting %s: %v", name, scrub(err.Error(), append(secrets, text)))
		}
		values[name] = v
		if info.Secret {
			secrets = append(secrets, text)
		}
	}
	rec.values = clone(values)
	if _, ok := findSetting(p.settings, "base_url"); ok && c.cfg.SandboxURL != "" && req.Settings["base_url"] == "" {
		values["base_url"] = c.cfg.SandboxURL
	}
	var mu sync.Mutex
	var exchanges []*engine.Exchange
	watch := engine.WithEvents(observe.New(func(_ context.Context, ex *engine.Exchange) {
		mu.Lock()
		exchanges = append(exchanges, ex)
		mu.Unlock()
	}))
	l := c.log.With("component", "console")
	plan, err := engine.Parse(file, []byte(src), watch, engine.WithLogger(l), engine.WithEvents(eventlog.New(l)))
	if err != nil {
		return &runResp{Tries: []try{}, Errors: loadErrors(file, err, secrets), Draft: draft}, nil
	}
	cfg := engine.Config{Values: values, LookupEnv: c.cfg.LookupEnv, Tokens: c.cfg.Tokens,
		LoginHint: "log in through the service's /v1/oauth/" + plan.Name() + "/start"}
	runner, err := plan.Bind(cfg)
	if err != nil {
		return &runResp{Tries: []try{}, Errors: loadErrors(file, err, secrets), Draft: draft}, nil
	}
	defer runner.Close()
	ctx, cancel := context.WithTimeout(r.Context(), runTimeout)
	defer cancel()
	var res *engine.Result
	if req.Step == "" {
		res = runner.Run(ctx, lead)
	} else {
		res, err = runner.RunStep(ctx, req.Step, lead, req.Prior)
		if err != nil {
			return nil, badRequest("%s", runner.Redact(err.Error()))
		}
	}
	// The result goes through the engine's masking, then the console's.
	b, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	masked := &engine.Result{}
	if err := json.Unmarshal([]byte(scrub(runner.Redact(string(b)), secrets)), masked); err != nil {
		return nil, err
	}
	mu.Lock()
	rec.exchanges = slices.Clone(exchanges)
	mu.Unlock()
	rec.result, rec.secrets = masked, secrets
	out := &runResp{Step: req.Step, Result: masked, Tries: []try{}, Draft: draft}
	for _, ex := range rec.exchanges {
		t := try{Exchange: ex}
		t.ResponsePretty = pretty(ex.ResponseBody)
		t.RequestPretty = pretty(ex.RequestBody)
		out.Tries = append(out.Tries, t)
	}
	switch {
	case draft:
		rec.savable = "the run used unsaved YAML: save the integration first"
	case req.Step != "" && len(p.steps) > 1:
		rec.savable = "a test case runs the whole flow: use Run flow to save one"
	case len(req.Prior) > 0:
		rec.savable = "a test case runs the whole flow: use Run flow to save one"
	}
	out.Savable, out.Unsavable = rec.savable == "", rec.savable
	out.RunID = c.keep(rec)
	return out, nil
}

// keep remembers a run and returns its id.
func (c *Console) keep(rec *runRecord) string {
	b := make([]byte, 12)
	rand.Read(b)
	id := hex.EncodeToString(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.runs[id] = rec
	c.runOrder = append(c.runOrder, id)
	for len(c.runOrder) > keptRuns {
		delete(c.runs, c.runOrder[0])
		c.runOrder = c.runOrder[1:]
	}
	return id
}

func (c *Console) lookupRun(id string) *runRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runs[id]
}

func findSetting(list []settingInfo, name string) (settingInfo, bool) {
	for _, s := range list {
		if s.Name == name {
			return s, true
		}
	}
	return settingInfo{}, false
}

// parseSetting reads an override typed in the page by the setting's type.
func parseSetting(s settingInfo, text string) (any, error) {
	switch s.Type {
	case "number":
		f, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
		if err != nil {
			return nil, errors.New("not a number")
		}
		return f, nil
	case "bool":
		b, err := strconv.ParseBool(strings.TrimSpace(text))
		if err != nil {
			return nil, errors.New("not true or false")
		}
		return b, nil
	case "list", "object":
		var v any
		if err := json.Unmarshal([]byte(text), &v); err != nil {
			return nil, fmt.Errorf("not JSON: %v", err)
		}
		return v, nil
	}
	return text, nil
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// pretty indents a JSON or XML body; "" when it is neither (or already
// the same).
func pretty(body string) string {
	t := strings.TrimSpace(body)
	if t == "" {
		return ""
	}
	if t[0] == '{' || t[0] == '[' {
		var b bytes.Buffer
		if json.Indent(&b, []byte(t), "", "  ") == nil && b.String() != body {
			return b.String()
		}
		return ""
	}
	if t[0] == '<' {
		if out, ok := indentXML(t); ok && out != body {
			return out
		}
	}
	return ""
}

// indentXML re-encodes XML with indentation.
func indentXML(s string) (string, bool) {
	d := xml.NewDecoder(strings.NewReader(s))
	d.Strict = false
	var b bytes.Buffer
	e := xml.NewEncoder(&b)
	e.Indent("", "  ")
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", false
		}
		if cd, ok := tok.(xml.CharData); ok {
			if len(bytes.TrimSpace(cd)) == 0 {
				continue
			}
		}
		tok = xml.CopyToken(tok)
		switch t := tok.(type) {
		case xml.StartElement:
			t.Name = flat(t.Name)
			for i := range t.Attr {
				t.Attr[i].Name = flat(t.Attr[i].Name)
			}
			tok = t
		case xml.EndElement:
			t.Name = flat(t.Name)
			tok = t
		}
		if err := e.EncodeToken(tok); err != nil {
			return "", false
		}
	}
	if err := e.Flush(); err != nil {
		return "", false
	}
	return b.String(), true
}

// flat keeps a raw name's prefix in its local part, so the encoder writes
// it back as it was (prefix:name) instead of inventing namespaces.
func flat(n xml.Name) xml.Name {
	if n.Space == "" {
		return n
	}
	return xml.Name{Local: n.Space + ":" + n.Local}
}
