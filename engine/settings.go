package engine

import (
	"fmt"
	"sort"

	"github.com/plumbhq/plumb/parse"
	"github.com/plumbhq/plumb/steps"
)

// resolve resolves the plan's settings from cfg.Values, then for each
// setting not given, its env variable (looked up with cfg.LookupEnv, which
// may be nil) and its default. Every missing required setting, unknown given
// name and value of the wrong type is reported, each at the position of its
// declaration.
func (p *Plan) resolve(r *Runner, cfg Config) error {
	var errs steps.ErrorList
	r.values, r.secrets, errs = p.resolveValues(cfg)
	r.mask = newMasker(r.secrets)
	if len(errs) == 0 && p.tls != nil && r.transport != nil {
		r.transport.TLSClientConfig = p.tls.config(p, r.values, &errs)
	}
	if len(errs) == 0 {
		r.authCfgs, r.auths = p.authenticators(r, cfg, &errs)
	}
	return errs.Err()
}

// resolveValues resolves the settings of cfg as Bind does: the values, the
// secret ones (longest first) and every problem.
func (p *Plan) resolveValues(cfg Config) (values map[string]any, secrets []string, errs steps.ErrorList) {
	given := cfg.Values
	values = make(map[string]any, len(p.in.Settings))
	declared := map[string]bool{}
	for _, e := range p.in.Settings {
		declared[e.Key] = true
		def := e.Value
		v, ok := given[e.Key]
		if !ok && def.Env != "" && cfg.LookupEnv != nil {
			v, ok = cfg.LookupEnv(def.Env)
		}
		if !ok && def.Default != nil {
			v, ok = def.Default, true
		}
		if !ok {
			if def.Required {
				hint := "give it in Config.Values"
				if def.Env != "" {
					hint += " or the " + def.Env + " environment variable"
				}
				errs.Add(e.Pos, hint, "required setting %q has no value", e.Key)
			}
			continue
		}
		cv, err := coerceSetting(normalizeValue(v), def.Type)
		if err != nil {
			what := err.Error()
			if def.Secret {
				what = "value is not a " + string(def.Type)
			}
			errs.Add(e.Pos, "", "setting %q: %s", e.Key, what)
			continue
		}
		values[e.Key] = cv
		if def.Secret {
			if s := fmt.Sprint(cv); s != "" {
				secrets = append(secrets, s)
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
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	return values, secrets, errs
}

func coerceSetting(v any, typ steps.SettingType) (any, error) {
	switch typ {
	case steps.SettingNumber:
		return parse.Coerce(v, parse.TypeNumber)
	case steps.SettingBool:
		return parse.Coerce(v, parse.TypeBool)
	case steps.SettingList:
		if _, ok := v.([]any); !ok {
			return nil, fmt.Errorf("expected a list, got %T", v)
		}
	case steps.SettingObject:
		if _, ok := v.(map[string]any); !ok {
			return nil, fmt.Errorf("expected an object, got %T", v)
		}
	case "", steps.SettingString:
		if s, ok := v.(string); ok {
			return s, nil
		}
		return parse.Coerce(v, parse.TypeString)
	}
	return v, nil
}
