package console

import (
	"net/http"
	"slices"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/atomicfile"
)

// validateReq is POST /console/api/validate and /save-yaml.
type validateReq struct {
	ID   string `json:"id"`
	YAML string `json:"yaml"`
	// ConfirmOrigins confirms a save that sends the service's stored
	// secrets to new origins: it must list every one of NewOrigins.
	ConfirmOrigins []string `json:"confirm_origins,omitempty"`
}

type validateResp struct {
	OK     bool      `json:"ok"`
	Name   string    `json:"name,omitempty"`
	Steps  []string  `json:"steps"`
	Errors []loadErr `json:"errors"`
	Saved  bool      `json:"saved,omitempty"`
	// NewOrigins lists what the draft would send the service's stored
	// secrets to that the saved file does not name; saving it needs
	// confirm_origins. Confirm says so to the user.
	NewOrigins []string `json:"new_origins,omitempty"`
	Confirm    string   `json:"confirm,omitempty"`
}

// check parses a draft of an integration file the way the service would,
// with its fragments read under Dir only, and lists the origins it would
// newly send stored secrets to.
func (c *Console) check(file, src string) (*validateResp, error) {
	sv, err := c.loadSaved(file)
	if err != nil {
		return nil, err
	}
	out := &validateResp{Steps: []string{}, Errors: []loadErr{}}
	p, plan, err := c.parseInfo(file, []byte(src)) // read and compiled once
	if p != nil {
		out.Name, out.Steps = p.name, p.steps
	}
	stored := c.storedSecrets(sv, p)
	red := engine.NewRedactor(stored...)
	if plan != nil {
		out.Steps = plan.StepNames()
	}
	out.Errors = loadErrors(file, err, red)
	if out.Errors == nil {
		out.Errors = []loadErr{}
	}
	out.OK = err == nil
	if plan == nil || (len(stored) == 0 && !(c.cfg.Tokens != nil && (usesOAuth2(p) || usesOAuth2(sv.info)))) {
		return out, nil
	}
	// where the service's runners would send what it holds once saved
	// (the sandbox aside: it is not where the file points)
	now := plan.Origins(engine.Config{Values: clone(sv.values), LookupEnv: c.cfg.LookupEnv})
	for _, o := range now.Outside(c.origins(sv, false)) {
		out.NewOrigins = append(out.NewOrigins, red.Redact(o))
	}
	if len(out.NewOrigins) > 0 {
		out.Confirm = "Saving sends the service's stored secrets (settings file, env, OAuth2 tokens) to origins the saved file does not name. Confirm only if you trust them."
	}
	return out, nil
}

// checkDraft reads a validate or save request and checks its draft.
func (c *Console) checkDraft(r *http.Request) (req validateReq, file string, out *validateResp, err error) {
	if err = decodeBody(r, &req); err != nil {
		return req, "", nil, err
	}
	if file, err = c.resolve(req.ID); err != nil {
		return req, "", nil, err
	}
	out, err = c.check(file, req.YAML)
	return req, file, out, err
}

func (c *Console) validate(r *http.Request) (any, error) {
	_, _, out, err := c.checkDraft(r)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// saveYAML writes an integration file, only when it loads, and only with
// a confirmation when it sends stored secrets to new origins.
func (c *Console) saveYAML(r *http.Request) (any, error) {
	req, file, out, err := c.checkDraft(r)
	if err != nil {
		return nil, err
	}
	if !out.OK {
		return out, nil
	}
	for _, o := range out.NewOrigins {
		if !slices.Contains(req.ConfirmOrigins, o) {
			return out, nil // the page asks, then sends them back
		}
	}
	c.fileMu.Lock()
	err = atomicfile.Replace(file, []byte(req.YAML), 0o644)
	c.fileMu.Unlock()
	if err != nil {
		return nil, err
	}
	out.Saved = true
	if len(out.NewOrigins) > 0 {
		c.log.Warn("console saved an integration file that sends stored secrets to new origins, as confirmed", "file", file, "new_origins", out.NewOrigins)
		out.Confirm = ""
	} else {
		c.log.Info("console saved an integration file", "file", file)
	}
	if c.cfg.Changed != nil {
		c.cfg.Changed()
	}
	return out, nil
}
