package console

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/steps"
)

// What the service holds for an integration file — the secret values of
// its settings file, the env variables it reads, the OAuth2 token store —
// goes only to the origins the SAVED file names with its saved settings
// (engine.Origins). A run whose draft or overrides reach any other origin
// is bound without them (only what the request typed), and a run that
// holds them can send nothing elsewhere: its transport refuses any request,
// token fetch or redirect to another origin. Saving a file that reaches
// new origins while the service holds secrets for it needs the request to
// confirm those origins, and is logged.

// saved is what the console knows of an integration file as it is on disk.
type saved struct {
	file   string
	src    []byte
	values map[string]any // the settings file
	info   *planInfo      // its declarations (nil: it does not parse)
	plan   *engine.Plan   // compiled (nil: it does not load)
	err    error          // why it does not load
}

// loadSaved reads the saved file, confined to Dir, and its settings file.
func (c *Console) loadSaved(file string) (*saved, error) {
	src, err := steps.ReadFile(file)
	if err != nil {
		return nil, err
	}
	values, err := c.settingsValues(file)
	if err != nil {
		return nil, err
	}
	s := &saved{file: file, src: src, values: values}
	s.info, s.plan, s.err = c.parseInfo(file, src) // read and compiled once
	return s, nil
}

// origins are the saved file's origins with its saved settings (and the
// sandbox's base_url when runs use it).
func (c *Console) origins(s *saved, sandbox bool) engine.Origins {
	if s.plan == nil {
		return engine.Origins{}
	}
	values := clone(s.values)
	if sandbox {
		c.sandboxBase(s.info, values, nil)
	}
	return s.plan.Origins(engine.Config{Values: values, LookupEnv: c.cfg.LookupEnv})
}

// sandboxBase points base_url at the sandbox when the file declares it
// and the request did not override it.
func (c *Console) sandboxBase(p *planInfo, values map[string]any, typed map[string]string) {
	if p == nil || c.cfg.SandboxURL == "" || typed["base_url"] != "" {
		return
	}
	if _, ok := findSetting(p.settings, "base_url"); ok {
		values["base_url"] = c.cfg.SandboxURL
	}
}

// env reads the env variables the saved file declares; public limits it
// to those no secret setting reads. A draft reads no other.
func (c *Console) env(s *saved, public bool) func(string) (string, bool) {
	declared, secret := map[string]bool{}, map[string]bool{}
	if s.info != nil {
		for _, e := range s.info.in.Settings {
			if e.Value != nil && e.Value.Env != "" {
				declared[e.Value.Env] = true
				secret[e.Value.Env] = secret[e.Value.Env] || e.Value.Secret
			}
		}
	}
	return func(name string) (string, bool) {
		if !declared[name] || (public && secret[name]) || c.cfg.LookupEnv == nil {
			return "", false
		}
		return c.cfg.LookupEnv(name)
	}
}

// publicValues are the settings file's values of the settings the saved
// file declares and does not call secret.
func publicValues(s *saved) map[string]any {
	out := map[string]any{}
	if s.info == nil {
		return out
	}
	for _, set := range s.info.settings {
		if v, ok := s.values[set.Name]; ok && !set.Secret {
			out[set.Name] = v
		}
	}
	return out
}

// storedSecrets lists every secret value the service holds for the file
// and a draft of it: the settings file's and env's values of the settings
// either calls secret, their defaults, and the values of env variables the
// draft reads that the saved file does not.
func (c *Console) storedSecrets(s *saved, draft *planInfo) []string {
	var out []string
	if s.info != nil {
		out = append(out, c.secretValues(s.info, s.values)...)
	}
	if draft == nil {
		return out
	}
	out = append(out, c.secretValues(draft, s.values)...)
	savedEnv := c.env(s, false)
	for _, e := range draft.in.Settings {
		if e.Value == nil || e.Value.Env == "" || c.cfg.LookupEnv == nil {
			continue
		}
		if _, ok := savedEnv(e.Value.Env); ok {
			continue
		}
		if v, ok := c.cfg.LookupEnv(e.Value.Env); ok && v != "" {
			out = append(out, v)
		}
	}
	return out
}

// usesOAuth2 reports whether a file has an oauth2 auth section (whose
// tokens the token store may hold).
func usesOAuth2(p *planInfo) bool {
	if p == nil {
		return false
	}
	is := func(a *steps.Auth) bool { return a != nil && a.Type == "oauth2" }
	if is(p.in.Auth) {
		return true
	}
	var walk func(list []*steps.Step) bool
	walk = func(list []*steps.Step) bool {
		for _, st := range list {
			if st == nil {
				continue
			}
			if is(st.Auth) || walk(st.Parallel) {
				return true
			}
			for _, v := range st.Variants {
				if v != nil && is(v.Auth) {
					return true
				}
			}
		}
		return false
	}
	return walk(p.in.Steps)
}

// originGuard refuses a request to an origin outside allowed: the
// transport of a run that holds the service's stored secrets.
type originGuard struct {
	allowed *engine.Origins // nil: no check (a run without stored secrets)
}

func (g *originGuard) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if g.allowed != nil && !g.allowed.Allows(req.URL) {
			return nil, fmt.Errorf("the console refused to send to %s://%s: the saved integration file does not name that origin and this run holds the service's stored secrets", req.URL.Scheme, req.URL.Host)
		}
		return next.RoundTrip(req)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// withoutSecretsNote is what a run without the stored secrets says.
func withoutSecretsNote(outside []string) string {
	return "This run reaches origins the saved integration file does not name (" + strings.Join(outside, ", ") +
		"), so it ran without the service's stored secrets, env variables and OAuth2 tokens: only values typed in Settings were used. Type the secrets this run needs, or save the file (which asks to confirm the new origins) to run it with them."
}
