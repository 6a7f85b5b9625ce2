package engine

import (
	"fmt"
	"sort"
	"strings"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/parse"
	"github.com/plumbhq/plumb/steps"
)

// Settings are an integration's configured values, resolved once against
// its settings schema and then shared by every lead of a run.
type Settings struct {
	values   map[string]any
	secrets  []string
	auths    []auth.Authenticator
	authCfgs []auth.Config
	// run is shared by every lead run with these settings (batches).
	run *runState
}

// Value returns a setting's resolved value.
func (s Settings) Value(name string) (any, bool) {
	v, ok := s.values[name]
	return v, ok
}

// Redact replaces every secret setting value in text with ****.
func (s Settings) Redact(text string) string {
	for _, sec := range s.secrets {
		text = strings.ReplaceAll(text, sec, "****")
	}
	return text
}

// Settings resolves the plan's settings from given values, then for each
// setting not given, its env variable (looked up with lookupEnv, which may
// be nil) and its default. Every missing required setting, unknown given
// name and value of the wrong type is reported, each at the position of its
// declaration.
func (p *Plan) Settings(given map[string]any, lookupEnv func(string) (string, bool)) (Settings, error) {
	var errs steps.ErrorList
	out := Settings{values: make(map[string]any, len(p.in.Settings)), run: &runState{}}
	declared := map[string]bool{}
	for _, e := range p.in.Settings {
		declared[e.Key] = true
		def := e.Value
		v, ok := given[e.Key]
		if !ok && def.Env != "" && lookupEnv != nil {
			v, ok = lookupEnv(def.Env)
		}
		if !ok && def.Default != nil {
			v, ok = def.Default, true
		}
		if !ok {
			if def.Required {
				hint := fmt.Sprintf("pass it with --set %s=… or a --settings file", e.Key)
				if def.Env != "" {
					hint += " or the " + def.Env + " environment variable"
				}
				errs.Add(e.Pos, hint, "required setting %q has no value", e.Key)
			}
			continue
		}
		cv, err := coerceSetting(v, def.Type)
		if err != nil {
			what := err.Error()
			if def.Secret {
				what = "value is not a " + def.Type
			}
			errs.Add(e.Pos, "", "setting %q: %s", e.Key, what)
			continue
		}
		out.values[e.Key] = cv
		if def.Secret {
			if s := fmt.Sprint(cv); s != "" {
				out.secrets = append(out.secrets, s)
			}
		}
	}
	var unknown []string
	for k := range given {
		if !declared[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		errs.Add(p.in.Pos, "declared settings are listed under settings:", "unknown setting %q given", k)
	}
	// longer secrets first so one that contains another is masked whole
	sort.Slice(out.secrets, func(i, j int) bool { return len(out.secrets[i]) > len(out.secrets[j]) })
	if len(errs) == 0 {
		out.authCfgs, out.auths = p.authenticators(out.values, &errs)
	}
	return out, errs.Err()
}

func coerceSetting(v any, typ string) (any, error) {
	switch typ {
	case "number":
		return parse.Coerce(v, "number")
	case "bool":
		return parse.Coerce(v, "bool")
	case "list":
		if _, ok := v.([]any); !ok {
			return nil, fmt.Errorf("expected a list, got %T", v)
		}
	case "object":
		if _, ok := v.(map[string]any); !ok {
			return nil, fmt.Errorf("expected an object, got %T", v)
		}
	case "", "string":
		if s, ok := v.(string); ok {
			return s, nil
		}
		return parse.Coerce(v, "string")
	}
	return v, nil
}
