package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/plumbhq/plumb/parse"
	"github.com/plumbhq/plumb/steps"
)

// resolve resolves the plan's settings from cfg.Values, then for each
// setting not given, its env variable (looked up with cfg.LookupEnv, which
// may be nil) and its default (see resolveValues), then the TLS settings
// and the authenticators; the runner's masker gets the secret settings and
// every credential of the auth sections.
func (r *Runner) resolve(cfg Config) error {
	p := r.plan
	var errs steps.ErrorList
	r.values, r.secrets, errs = p.resolveValues(cfg)
	if len(errs) == 0 && p.tls != nil && r.transport != nil {
		r.transport.TLSClientConfig = p.tls.config(p, r.values, &errs)
	}
	if len(errs) == 0 {
		r.authCfgs, r.auths = r.authenticators(cfg, &errs)
		for _, ac := range r.authCfgs {
			r.secrets = append(r.secrets, authSecrets(ac)...)
		}
	}
	r.mask = &masker{sets: []*secretSet{newSecretSet(r.secrets)}, live: r.live}
	return errs.Err()
}

// resolveValues resolves the settings of cfg as Bind does: the values, the
// secret ones (longest first) and every problem. Every missing required
// setting, unknown given name and value of the wrong type is reported: a
// given value at cfg.ValuePos (its place in a settings file) when known,
// anything else at the setting's declaration. No message quotes a value.
func (p *Plan) resolveValues(cfg Config) (values map[string]any, secrets []string, errs steps.ErrorList) {
	given := cfg.Values
	values = make(map[string]any, len(p.in.Settings))
	declared := map[string]bool{}
	for _, e := range p.in.Settings {
		declared[e.Key] = true
		def := e.Value
		pos, from := e.Pos, ""
		v, ok := given[e.Key]
		empty := "it is given empty in Config.Values"
		if gp, known := cfg.ValuePos[e.Key]; ok && known {
			pos, empty = gp, "it is given empty here"
		}
		if !ok && def.Env != "" && cfg.LookupEnv != nil {
			v, ok = cfg.LookupEnv(def.Env)
			from = " (from the " + def.Env + " environment variable)"
			empty = "the " + def.Env + " environment variable is set but empty"
		}
		if !ok && def.Default != nil {
			v, ok, from = def.Default, true, " (its default)"
			empty = "its default is empty"
		}
		if ok && def.Required && emptySetting(v) {
			errs.Add(pos, "a required setting needs a value that is not empty", "required setting %q has no value: %s", e.Key, empty)
			continue
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
		cv, err := coerceSetting(normalizeValue(v), string(def.Type))
		if err != nil {
			errs.Add(pos, "", "setting %q%s: %v", e.Key, from, err)
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
		pos, ok := cfg.ValuePos[k]
		if !ok {
			pos = p.in.Pos
		}
		errs.Add(pos, "declared settings are listed under settings:", "unknown setting %q given", k)
	}
	// longer secrets first so one that contains another is masked whole
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	return values, secrets, errs
}

// emptySetting reports a value that gives a setting nothing: null (a
// settings file's "key:" or "~"), or text that is empty or blank.
func emptySetting(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return strings.TrimSpace(x) == ""
	}
	return false
}

// coerceSetting converts v to the setting type typ. Its errors name the
// kind of value given, never the value: settings hold secrets.
func coerceSetting(v any, typ string) (any, error) {
	want := "a " + typ
	switch typ {
	case "number", "bool":
		switch v.(type) {
		case map[string]any, []any:
		default:
			if cv, err := parse.Coerce(v, typ); err == nil {
				return cv, nil
			}
		}
		if typ == "bool" {
			want = "a boolean (true or false)"
		}
	case "list":
		if _, ok := v.([]any); ok {
			return v, nil
		}
	case "object":
		if _, ok := v.(map[string]any); ok {
			return v, nil
		}
		want = "an object"
	case "", "string":
		want = "a string"
		switch v.(type) {
		case string:
			return v, nil
		case map[string]any, []any:
		default:
			return parse.Coerce(v, "string")
		}
	default:
		return v, nil
	}
	return nil, fmt.Errorf("must be %s, not %s", want, kindOf(v))
}

// kindOf names the kind of a setting value for a message.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case float64, json.Number:
		return "a number"
	}
	return "a value of another kind"
}

// SettingsFile is a settings file as ReadSettings reads it: the value given
// for each setting name, and where it was written (for Config.ValuePos).
type SettingsFile struct {
	Values map[string]any
	Pos    map[string]steps.Pos
}

// ReadSettings reads a settings file (as steps.ReadFile reads: a regular
// file of at most steps.MaxFileBytes): a YAML (or JSON) mapping of setting
// names to values. An empty file gives no values; a missing one an error
// wrapping os.ErrNotExist. Every other problem is reported as
// file:line:col, naming the setting where there is one and never quoting
// a value: the file holds secrets.
func ReadSettings(path string) (*SettingsFile, error) {
	b, err := steps.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	return ParseSettings(path, b)
}

// yamlLine finds the line a YAML syntax error is at and its reason;
// yamlQuoted finds what a reason quotes beyond a single character (it
// could be from a value).
var (
	yamlLine   = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)
	yamlQuoted = regexp.MustCompile("'[^']{2,}'|`[^`]{2,}`|\"[^\"]{2,}\"")
)

// ParseSettings is ReadSettings for the contents b of the file named file.
func ParseSettings(file string, b []byte) (*SettingsFile, error) {
	out := &SettingsFile{Values: map[string]any{}, Pos: map[string]steps.Pos{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), &doc); err != nil {
		pos, why := steps.Pos{File: file, Line: 1, Col: 1}, ""
		if m := yamlLine.FindStringSubmatch(strings.SplitN(err.Error(), "\n", 2)[0]); m != nil {
			if n, err := strconv.Atoi(m[1]); err == nil {
				pos.Line = n
			}
			why = ": " + yamlQuoted.ReplaceAllString(m[2], "…")
		}
		return nil, steps.ErrorList{{Pos: pos, Msg: "invalid YAML" + why,
			Hint: "a settings file is a YAML or JSON mapping of setting names to values"}}
	}
	if doc.Kind == 0 {
		return out, nil // an empty file
	}
	root := &doc
	for root != nil && root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return out, nil // an empty file
		}
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return out, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, steps.ErrorList{{Pos: steps.Pos{File: file, Line: root.Line, Col: root.Column},
			Msg:  fmt.Sprintf("a settings file is a mapping of setting names to values, not %s", nodeKind(root)),
			Hint: "write one name: value per line"}}
	}
	var errs steps.ErrorList
	seen := map[string]bool{}
	for _, kv := range settingPairs(root, 0) {
		k, vn := kv[0], kv[1]
		at := steps.Pos{File: file, Line: k.Line, Col: k.Column}
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			errs.Add(at, "write one name: value per line", "settings: keys must be plain names")
			continue
		}
		name := k.Value
		if seen[name] {
			// not named: a line pasted twice may hold a secret
			errs.Add(at, "give each setting once", "settings: a name given twice")
			continue
		}
		seen[name] = true
		v, err := nodeValue(vn, 0)
		if err != nil {
			errs.Add(steps.Pos{File: file, Line: err.n.Line, Col: err.n.Column}, "", "setting %q: %s", name, err.msg)
			continue
		}
		out.Values[name] = v
		out.Pos[name] = steps.Pos{File: file, Line: vn.Line, Col: vn.Column}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// settingPairs are the key and value nodes of a settings mapping, merge
// keys (<<: *defaults, or a list of them) expanded: the mapping's own keys
// come first, so they win over merged ones (seen first); merged keys a
// later merge repeats are skipped. Nesting is bounded.
func settingPairs(m *yaml.Node, depth int) [][2]*yaml.Node {
	var own, merged [][2]*yaml.Node
	have := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" && depth < maxSettingDepth {
			for _, src := range mergeSources(v) {
				merged = append(merged, settingPairs(src, depth+1)...)
			}
			continue
		}
		own = append(own, [2]*yaml.Node{k, v})
		have[k.Value] = true
	}
	for _, kv := range merged {
		if !have[kv[0].Value] {
			have[kv[0].Value] = true
			own = append(own, kv)
		}
	}
	return own
}

// mergeSources are the mappings a merge key's value names: a mapping, an
// alias of one, or a list of those.
func mergeSources(v *yaml.Node) []*yaml.Node {
	for v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	switch v.Kind {
	case yaml.MappingNode:
		return []*yaml.Node{v}
	case yaml.SequenceNode:
		var out []*yaml.Node
		for _, c := range v.Content {
			for c.Kind == yaml.AliasNode && c.Alias != nil {
				c = c.Alias
			}
			if c.Kind == yaml.MappingNode {
				out = append(out, c)
			}
		}
		return out
	}
	return nil
}

// nodeError is a value that cannot be read, at the node n.
type nodeError struct {
	n   *yaml.Node
	msg string
}

// maxSettingDepth bounds how deeply a setting's value may nest.
const maxSettingDepth = 100

// nodeValue reads the value of a YAML node as plain data: objects with
// string keys, lists, strings, numbers, booleans and null. Timestamps
// and binary stay the text written.
func nodeValue(n *yaml.Node, depth int) (any, *nodeError) {
	if depth > maxSettingDepth {
		return nil, &nodeError{n, fmt.Sprintf("nested more than %d levels deep", maxSettingDepth)}
	}
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return nil, &nodeError{n, "custom YAML tags are not read in settings files (the tag is not shown: it may be part of a secret)"}
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			for k.Kind == yaml.AliasNode {
				k = k.Alias
			}
			if k.Kind != yaml.ScalarNode {
				return nil, &nodeError{k, "the keys of an object must be plain names"}
			}
			if k.Value == "<<" {
				return nil, &nodeError{k, "merge keys (<<) are not read in settings files: write the values out"}
			}
			v, err := nodeValue(n.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, len(n.Content))
		for i, c := range n.Content {
			v, err := nodeValue(c, depth+1)
			if err != nil {
				return nil, err
			}
			l[i] = v
		}
		return l, nil
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, nil
		case "!!bool", "!!int", "!!float":
			var v any
			if n.Decode(&v) == nil {
				return normalizeValue(v), nil
			}
			return nil, &nodeError{n, "not a valid " + n.Tag[2:]}
		}
		return n.Value, nil
	}
	return nil, &nodeError{n, "not a value"}
}

// nodeKind names the kind of a YAML node for a message, without its value.
func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	case yaml.AliasNode:
		return "an alias"
	}
	return "something else"
}
