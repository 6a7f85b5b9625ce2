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

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/engine/eventlog"
	"github.com/plumbhq/plumb/engine/observe"
	"github.com/plumbhq/plumb/internal/jsonw"
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

// parseInfo reads an integration's name, steps and declared settings,
// reading fragments under Dir only.
func (c *Console) parseInfo(file string, src []byte, opts ...engine.Option) (*planInfo, *engine.Plan, error) {
	plan, err := engine.Parse(file, src, append([]engine.Option{engine.WithRoot(c.cfg.Dir)}, opts...)...)
	in := plan.Model()
	if le := (*engine.LoadError)(nil); errors.As(err, &le) {
		in = le.Model
	}
	if in == nil || plan == nil && err == nil {
		return nil, plan, err
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
			typ = steps.SettingTypes.Default
		}
		p.settings = append(p.settings, settingInfo{Name: e.Key, Type: string(typ), Required: s.Required, Secret: s.Secret, Env: s.Env})
	}
	return p, plan, err
}

// settingsValues reads the settings file of an integration file with the
// library's reader: its errors are positioned and never quote the file.
func (c *Console) settingsValues(file string) (map[string]any, error) {
	sf, err := engine.ReadSettings(c.cfg.SettingsFile(file))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]any{}, nil
	}
	if err != nil {
		return nil, err
	}
	return sf.Values, nil
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

// redactor masks, with the engine's masker, every secret the service
// holds for the integration file (as far as it is known: the file may not
// load).
func (c *Console) redactor(file string) *engine.Redactor {
	s, err := c.loadSaved(file)
	if err != nil {
		return engine.NewRedactor()
	}
	return engine.NewRedactor(c.storedSecrets(s, nil)...)
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

func loadErrors(file string, err error, red *engine.Redactor) []loadErr {
	if err == nil {
		return nil
	}
	var list steps.ErrorList
	if !errors.As(err, &list) {
		return []loadErr{{Message: red.Redact(err.Error())}}
	}
	out := make([]loadErr, 0, len(list))
	for _, e := range list {
		out = append(out, loadErr{File: e.Pos.File, Line: e.Pos.Line, Col: e.Pos.Col,
			Message: red.Redact(e.Msg), Hint: red.Redact(e.Hint), Other: e.Pos.File != "" && e.Pos.File != file})
	}
	return out
}

func (c *Console) getIntegration(r *http.Request) (any, error) {
	file, err := c.resolve(r.URL.Query().Get("id"))
	if err != nil {
		return nil, err
	}
	v := &integrationView{ID: c.idOf(file), File: file, Steps: []string{}, Settings: []settingInfo{},
		TestFile: c.idOf(testFileOf(file)), Sandbox: c.cfg.SandboxURL != "", Lead: "{}"}
	sv, verr := c.loadSaved(file)
	if sv == nil {
		src, err := steps.ReadFile(file)
		if err != nil {
			return nil, err
		}
		sv = &saved{file: file, src: src, values: map[string]any{}}
		sv.info, sv.plan, sv.err = c.parseInfo(file, src)
	}
	plan, perr := sv.plan, sv.err // read and compiled once, by loadSaved or here
	red := engine.NewRedactor(c.storedSecrets(sv, nil)...)
	if p := sv.info; p != nil {
		v.Name, v.Steps = p.name, p.steps
		for _, s := range p.settings {
			v.Settings = append(v.Settings, c.describe(p, s, sv.values))
		}
	}
	if plan != nil {
		v.Steps = plan.StepNames()
	}
	v.Errors = loadErrors(file, perr, red)
	if verr != nil {
		v.Errors = append(v.Errors, loadErr{Message: red.Redact(verr.Error())})
	}
	if text := string(sv.src); red.Redact(text) != text {
		v.YAMLHidden = "the file holds a secret setting's value; edit it on disk, or move the value to the settings file or an env variable"
	} else {
		v.YAML = text
	}
	if b, err := steps.ReadFile(dirOf(file) + "lead.json"); err == nil {
		if lead, err := engine.DecodeLead(firstLine(b)); err == nil {
			pretty, _ := jsonw.MarshalIndent(red.Value(lead), "  ")
			v.Lead = string(pretty)
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
	// StoredSecrets says whether the run used the service's stored
	// secrets (settings file, env, OAuth2 tokens). When it did not,
	// NewOrigins lists the origins, not named by the saved file, that
	// made it run with only the values typed in the request, and Note
	// says so.
	StoredSecrets bool     `json:"stored_secrets"`
	NewOrigins    []string `json:"new_origins,omitempty"`
	Note          string   `json:"note,omitempty"`
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
	red       *engine.Redactor // every secret the run knew of
	savable   string           // "" when savable, else why not
}

// runInput is a run request read: the file, its saved state, the text to
// run and the lead.
type runInput struct {
	req   runReq
	file  string
	sv    *saved
	src   string
	draft bool // src is the page's unsaved YAML
	lead  map[string]any
}

func (c *Console) readRun(r *http.Request) (*runInput, error) {
	in := &runInput{}
	if err := decodeBody(r, &in.req); err != nil {
		return nil, err
	}
	var err error
	if in.file, err = c.resolve(in.req.ID); err != nil {
		return nil, err
	}
	if in.sv, err = c.loadSaved(in.file); err != nil {
		return nil, err
	}
	in.src = string(in.sv.src)
	if in.draft = in.req.YAML != "" && in.req.YAML != in.src; in.draft {
		in.src = in.req.YAML
	}
	if len(bytes.TrimSpace(in.req.Lead)) == 0 {
		in.lead = map[string]any{}
	} else {
		// read as plumb run and serve read a lead: a number beyond 2^53
		// digit for digit
		if in.lead, err = engine.DecodeLead(in.req.Lead); err != nil {
			return nil, badRequest("the lead: %s", err)
		}
	}
	return in, nil
}

func (c *Console) run(r *http.Request) (any, error) {
	in, err := c.readRun(r)
	if err != nil {
		return nil, err
	}
	req, file, sv := in.req, in.file, in.sv
	var mu sync.Mutex
	var exchanges []*engine.Exchange
	watch := engine.WithEvents(observe.New(func(_ context.Context, ex *engine.Exchange) {
		mu.Lock()
		exchanges = append(exchanges, ex)
		mu.Unlock()
	}))
	guard := &originGuard{}
	l := c.log.With("component", "console")
	p, plan, perr := c.parseInfo(file, []byte(in.src), watch, engine.WithLogger(l), engine.WithEvents(eventlog.New(l)),
		engine.WithTransport(guard.wrap)) // read and compiled once
	stored := c.storedSecrets(sv, p)
	if perr != nil || p == nil || plan == nil {
		return &runResp{Tries: []try{}, Errors: loadErrors(file, perr, engine.NewRedactor(stored...)), Draft: in.draft}, nil
	}
	typed, typedSecrets, err := typedValues(p, req.Settings)
	red := engine.NewRedactor(append(stored, typedSecrets...)...)
	if err != nil {
		return nil, badRequest("%s", red.Redact(err.Error()))
	}
	rec := &runRecord{file: file, src: in.src, lead: in.lead, step: req.Step, secret: map[string]bool{}, required: map[string]bool{}, red: red}
	for _, s := range p.settings {
		rec.secret[s.Name], rec.required[s.Name] = s.Secret, s.Required
	}
	cfg, outside := c.bindConfig(sv, plan, p, typed, req.Settings, guard)
	rec.values = clone(cfg.Values)
	c.sandboxBase(p, cfg.Values, req.Settings)
	out := &runResp{Step: req.Step, Tries: []try{}, Draft: in.draft, StoredSecrets: outside == nil, NewOrigins: outside}
	if outside != nil {
		out.Note = withoutSecretsNote(outside)
	}
	runner, err := plan.Bind(cfg)
	if err != nil {
		out.Errors = loadErrors(file, err, red)
		return maskedAnswer(out, red)
	}
	defer runner.Close(context.Background())
	if err := c.runLead(r.Context(), runner, rec, req, red); err != nil {
		return nil, err
	}
	mu.Lock()
	rec.exchanges = slices.Clone(exchanges)
	mu.Unlock()
	c.finish(out, rec, p, in)
	return maskedAnswer(out, red)
}

// finish fills in the result and tries of a run and keeps it for saving
// as a test case when it can be.
func (c *Console) finish(out *runResp, rec *runRecord, p *planInfo, in *runInput) {
	out.Result = rec.result
	for _, ex := range rec.exchanges {
		out.Tries = append(out.Tries, try{Exchange: ex, ResponsePretty: pretty(ex.ResponseBody), RequestPretty: pretty(ex.RequestBody)})
	}
	switch {
	case in.draft:
		rec.savable = "the run used unsaved YAML: save the integration first"
	case in.req.Step != "" && len(p.steps) > 1, len(in.req.Prior) > 0:
		rec.savable = "a test case runs the whole flow: use Run flow to save one"
	}
	out.Savable, out.Unsavable = rec.savable == "", rec.savable
	out.RunID = c.keep(rec)
}

// typedValues parses the overrides typed in the page by the settings'
// types; an empty secret is left out ("keep the service's"). It returns
// the secret values typed too.
func typedValues(p *planInfo, settings map[string]string) (map[string]any, []string, error) {
	values := map[string]any{}
	var secrets []string
	for name, text := range settings {
		info, ok := findSetting(p.settings, name)
		if !ok {
			return nil, secrets, fmt.Errorf("the integration declares no setting %s", quote(name))
		}
		if info.Secret && text == "" {
			continue
		}
		if info.Secret {
			secrets = append(secrets, text)
		}
		v, err := parseSetting(info, text)
		if err != nil {
			return nil, secrets, fmt.Errorf("setting %s: %v", name, err)
		}
		values[name] = v
	}
	return values, secrets, nil
}

// bindConfig decides what a run may use. When everything it reaches is an
// origin the saved file names with its saved settings, it gets the
// service's stored settings, env and token store, and guard keeps its
// requests on those origins; otherwise it gets only the settings file's
// public values and what the request typed, and outside lists why.
func (c *Console) bindConfig(sv *saved, plan *engine.Plan, p *planInfo, typed map[string]any, settings map[string]string, guard *originGuard) (engine.Config, []string) {
	cfg := engine.Config{Values: clone(sv.values), LookupEnv: c.env(sv, false), Tokens: c.cfg.Tokens,
		LoginHint: "log in through the service's /v1/oauth/" + plan.Name() + "/start"}
	for k, v := range typed {
		cfg.Values[k] = v
	}
	probe := clone(cfg.Values)
	c.sandboxBase(p, probe, settings)
	savedOrigins := c.origins(sv, true)
	outside := plan.Origins(engine.Config{Values: probe, LookupEnv: cfg.LookupEnv}).Outside(savedOrigins)
	if sv.plan != nil && len(outside) == 0 {
		guard.allowed = &savedOrigins
		return cfg, nil
	}
	if outside == nil {
		outside = []string{"the saved file does not load"}
	}
	cfg.Values, cfg.LookupEnv, cfg.Tokens = map[string]any{}, c.env(sv, true), nil
	for k, v := range publicValues(sv) {
		if _, ok := findSetting(p.settings, k); ok {
			cfg.Values[k] = v
		}
	}
	for k, v := range typed {
		cfg.Values[k] = v
	}
	return cfg, outside
}

// runLead runs the flow or the step and keeps the result, masked by the
// runner (of what it knows) and then, value by value, of every secret the
// console knows.
func (c *Console) runLead(ctx context.Context, runner *engine.Runner, rec *runRecord, req runReq, red *engine.Redactor) error {
	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	var res *engine.Result
	if req.Step == "" {
		res = runner.Run(ctx, rec.lead)
	} else {
		var err error
		if res, err = runner.RunStep(ctx, req.Step, rec.lead, req.Prior); err != nil {
			return badRequest("%s", red.Redact(runner.Redact(err.Error())))
		}
	}
	doc, err := maskedAnswer(res, red)
	if err != nil {
		return err
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	masked := &engine.Result{}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // numbers as the run had them, not rounded to float64
	if err := dec.Decode(masked); err != nil {
		return err
	}
	rec.result = masked
	return nil
}

// maskedAnswer returns an answer with every secret the console knows of
// masked (the engine masked what the runner knew already): masked as the
// JSON document it is sent as, string by string, never as its text.
func maskedAnswer(v any, red *engine.Redactor) (any, error) {
	doc, err := jsonDoc(v)
	if err != nil {
		return nil, err
	}
	return red.Value(doc), nil
}

// jsonDoc returns v as the JSON document it encodes to, decoded into
// maps, lists and strings, numbers as json.Number (digit for digit).
func jsonDoc(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	return doc, nil
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
