package schema

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/source"
	"github.com/plumbhq/plumb/steps"
)

// sample is a tiny integration that uses one value of an enum: extra
// settings, top-level keys and keys of its one step (YAML flow style).
type sample struct{ settings, top, step string }

func (s sample) yaml() string {
	return fmt.Sprintf(`version: 1
name: vocab
settings:
  base_url: { default: "http://127.0.0.1:1" }
  hook: { secret: true }
%s
%s
steps:
  - name: a
    request: { url: "{{settings.base_url}}/x" }
%s
`, s.settings, s.top, s.step)
}

// samples returns, for every enum of the vocabulary, the integration that
// uses value v (ok false: the enum has no sample for v, so a value was
// declared that this test does not know how to use yet).
var samples = map[string]func(v string) (sample, bool){
	"setting-type": func(v string) (sample, bool) {
		return sample{settings: "  extra: { type: " + v + " }"}, true
	},
	"auth-type": func(v string) (sample, bool) {
		keys, ok := map[string]string{
			"api_key": "value: k", "basic": "username: u, password: p", "bearer": "token: t",
			"oauth2": "token_url: \"http://127.0.0.1:1/token\", client_id: c, client_secret: s",
			"hmac":   "secret: s", "rotate": "tokens: [a, b]", "none": "",
		}[v]
		return sample{top: "auth: { type: " + v + ", " + keys + " }"}, ok
	},
	"auth-api-key-in":            authKey("api_key, value: k, in: %s"),
	"auth-oauth2-grant":          authKey(`oauth2, token_url: "http://127.0.0.1:1/token", auth_url: "http://127.0.0.1:1/authorize", client_id: c, client_secret: s, grant: %s`),
	"auth-oauth2-auth-style":     authKey(`oauth2, token_url: "http://127.0.0.1:1/token", client_id: c, client_secret: s, auth_style: %s`),
	"auth-hmac-algorithm":        authKey("hmac, secret: s, algorithm: %s"),
	"auth-hmac-encoding":         authKey("hmac, secret: s, encoding: %s"),
	"auth-hmac-timestamp-format": authKey("hmac, secret: s, timestamp_format: %s"),
	"response-format":            stepKey("response: { format: %s }"),
	"capture-type":               stepKey("capture: { c: { json: a, type: %s } }"),
	"on-error":                   stepKey("on_error: %s"),
	"follow-redirects":           stepKey("follow_redirects: %s"),
	"retry-action":               stepKey("retry: [{ on: [500], action: %s }]"),
	"retry-after":                stepKey("retry: [{ on: [429], action: retry, retry_after: %s }]"),
	"tls-version": func(v string) (sample, bool) {
		return sample{top: `http: { tls: { min_version: "` + v + `" } }`}, true
	},
	"paginate-type": func(v string) (sample, bool) {
		keys, ok := map[string]string{"page": "", "offset": ", size: 10", "cursor": ", cursor: { json: next }",
			"next_url": ", next: { json: next }", "link": ""}[v]
		return sample{top: `source: { request: { url: "{{settings.base_url}}/p" }, paginate: { type: ` + v + keys + ` } }`}, ok
	},
	"schedule-missed": func(v string) (sample, bool) {
		return sample{top: `source: { request: { url: "{{settings.base_url}}/p" }, schedule: { cron: "0 2 * * *", timezone: America/New_York, missed: ` + v + ` } }`}, true
	},
	"webhook-preset": func(v string) (sample, bool) {
		return hook("preset: " + v + map[string]string{"hmac": ", header: X-Sig"}[v]), true
	},
	"webhook-algorithm": func(v string) (sample, bool) { return hook("preset: hmac, header: X-Sig, algorithm: " + v), true },
	"webhook-encoding":  func(v string) (sample, bool) { return hook("preset: hmac, header: X-Sig, encoding: " + v), true },
	"callback-event": func(v string) (sample, bool) {
		return sample{top: `callback: { url: "https://hooks.example.com/plumb", secret: "{{settings.hook}}", events: ` + v + ` }`}, true
	},
	"history-exchanges": func(v string) (sample, bool) {
		return sample{top: `history: { exchanges: ` + v + ` }`}, true
	},
	"outcome": nil, // not written in an integration: see TestOutcomesAreTheEngines
}

func stepKey(format string) func(string) (sample, bool) {
	return func(v string) (sample, bool) { return sample{step: "    " + fmt.Sprintf(format, v)}, true }
}

func authKey(format string) func(string) (sample, bool) {
	return func(v string) (sample, bool) {
		return sample{top: "auth: { type: " + fmt.Sprintf(format, v) + " }"}, true
	}
}

func hook(verify string) sample {
	return sample{top: `webhook: { verify: { ` + verify + `, secrets: ["{{settings.hook}}"] } }`}
}

// TestVocabularyIsOneDeclaration fails when a value of an enum of the
// format is added in one place only: every declared value must load
// (validator), compile and bind (engine, auth, source, webhook), and an
// undeclared one must be refused; the JSON Schema must carry exactly the
// declared values (TestVocabDocs checks docs/format.md).
func TestVocabularyIsOneDeclaration(t *testing.T) {
	for _, v := range steps.Vocabulary() {
		use, known := samples[v.Name]
		if !known {
			t.Errorf("enum %s: no sample in vocab_test.go: add one so each value is checked end to end", v.Name)
			continue
		}
		if use == nil {
			continue
		}
		for _, c := range v.Choices {
			s, ok := use(string(c.Value))
			if !ok {
				t.Errorf("%s %q: no sample in vocab_test.go", v.Name, c.Value)
				continue
			}
			if err := loads(s.yaml()); err != nil {
				t.Errorf("%s %q is declared but does not work: %v\n%s", v.Name, c.Value, err, s.yaml())
			}
		}
		if s, _ := use("bogus"); s != (sample{}) {
			if _, err := engine.Parse("bogus.yaml", []byte(s.yaml())); err == nil {
				t.Errorf("%s: the undeclared value bogus loads", v.Name)
			}
		}
	}
}

// loads checks src as every reader of an integration does.
func loads(src string) error {
	p, err := engine.Parse("v.yaml", []byte(src)) // the validator, then the compiler
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	in := p.Model()
	r, err := p.Bind(engine.Config{Values: map[string]any{"hook": "c2VjcmV0LWtleS0xMjM0NTY3OA=="}, // base64: every preset takes it
		Tokens: &auth.MemoryStore{}}) // where an authorization_code login is kept
	if err != nil {
		return fmt.Errorf("engine bind: %w", err)
	}
	defer r.Close(context.Background())
	if in.Source != nil {
		if _, err := source.Compile(p); err != nil {
			return fmt.Errorf("source: %w", err)
		}
	}
	if in.Webhook != nil {
		if _, err := r.Hook(); err != nil {
			return fmt.Errorf("webhook: %w", err)
		}
	}
	return nil
}

// TestOutcomesAreTheEngines checks the declared outcomes are the engine's
// and what test cases accept.
func TestOutcomesAreTheEngines(t *testing.T) {
	var got []string
	for _, o := range []engine.Outcome{engine.Success, engine.Failure, engine.Error, engine.Skip} {
		got = append(got, string(o))
	}
	want := steps.Outcomes.Vocab().Values()
	if !slices.Equal(got, want) {
		t.Errorf("engine outcomes %v, declared %v", got, want)
	}
}

// TestSchemaEnumsAreTheVocabulary checks every key the vocabulary names
// carries exactly its values in the schema, no other key has an enum of
// its own, and every key of the model typed with an enum is declared.
func TestSchemaEnumsAreTheVocabulary(t *testing.T) {
	byField := vocabByField()
	inSchema := map[string]bool{}
	for _, k := range []Kind{Integration, TestFile} {
		out, err := Generate(k)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Defs map[string]struct {
				Properties map[string]map[string]any `json:"properties"`
			} `json:"$defs"`
		}
		if err := json.Unmarshal(out, &doc); err != nil {
			t.Fatal(err)
		}
		for def, d := range doc.Defs {
			for key, p := range d.Properties {
				field := def + "." + key
				inSchema[field] = true
				v, declared := byField[field]
				got := schemaEnum(p)
				switch {
				case declared && !slices.Equal(got, v.Values()):
					t.Errorf("schema %s: enum %v, declared %v", field, got, v.Values())
				case declared && v.Extension != "" && !strings.Contains(fmt.Sprint(p), "^"+v.Extension):
					t.Errorf("schema %s: no pattern for %s values", field, v.Extension)
				case declared && !strings.Contains(fmt.Sprint(p["description"]), v.Choices[0].Doc):
					t.Errorf("schema %s: the description lacks the values' docs", field)
				case !declared && got != nil && enums[field] == nil:
					t.Errorf("schema %s: enum %v is not declared in steps' vocabulary", field, got)
				}
			}
		}
	}
	typed := map[string]bool{}
	modelEnumFields(reflect.TypeFor[steps.Integration](), map[reflect.Type]bool{}, typed)
	for f := range typed {
		if _, ok := byField[f]; !ok {
			t.Errorf("%s has an enum type but no Enum of steps lists it in Fields", f)
		}
	}
	if len(typed) < 8 {
		t.Errorf("found only %d enum-typed keys in the model", len(typed))
	}
	for f := range byField {
		if !inSchema[f] {
			t.Errorf("%s is declared in a vocabulary but the schema has no such key", f)
		}
	}
}

// schemaEnum is the enum of a property schema (plain or in anyOf).
func schemaEnum(p map[string]any) []string {
	e, ok := p["enum"].([]any)
	if alts, isAny := p["anyOf"].([]any); isAny && !ok {
		for _, a := range alts {
			if m, _ := a.(map[string]any); m != nil {
				if e, ok = m["enum"].([]any); ok {
					break
				}
			}
		}
	}
	if !ok {
		return nil
	}
	out := make([]string, len(e))
	for i, x := range e {
		out[i] = fmt.Sprint(x)
	}
	return out
}

// modelEnumFields finds the keys of t (and the types it holds) whose Go
// type is a named string type of package steps: the enums.
func modelEnumFields(t reflect.Type, seen map[reflect.Type]bool, out map[string]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return
	}
	seen[t] = true
	for i := range t.NumField() {
		f := t.Field(i)
		key, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if key == "-" || !f.IsExported() {
			continue
		}
		if f.Type.Kind() == reflect.String && f.Type.PkgPath() == reflect.TypeFor[steps.Pos]().PkgPath() {
			out[t.Name()+"."+key] = true
		}
		if opts == "inline" {
			modelEnumFields(f.Type, seen, out)
			continue
		}
		if f.Type.Name() == "" || f.Type.Kind() == reflect.Struct || f.Type.Kind() == reflect.Pointer {
			modelEnumFields(f.Type, seen, out)
		}
		if orderedMapElemOK(f.Type) {
			elem, _ := orderedMapElem(f.Type)
			modelEnumFields(elem, seen, out)
		}
	}
}

func orderedMapElemOK(t reflect.Type) bool { _, ok := orderedMapElem(t); return ok }

// retryBehaviour is what each retry action makes of a 500 the rule
// matches (max_attempts 2 where it applies): the outcome and the tries.
// A declared action the engine does not act on fails here.
var retryBehaviour = map[steps.RetryAction]struct {
	outcome engine.Outcome
	tries   int64
}{
	steps.ActionRetry: {engine.Error, 2}, steps.ActionReauth: {engine.Error, 1}, steps.ActionFail: {engine.Failure, 1},
	steps.ActionFallback: {engine.Error, 1}, steps.ActionIgnore: {engine.Success, 1}, steps.ActionStop: {engine.Error, 1},
}

// TestRetryActionsRun runs every declared retry action against a real
// server answering 500.
func TestRetryActionsRun(t *testing.T) {
	for _, a := range steps.RetryActions.Values() {
		want, ok := retryBehaviour[a]
		if !ok {
			t.Errorf("retry action %s: no expected behaviour in vocab_test.go", a)
			continue
		}
		var hits atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			hits.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
		}))
		max := ""
		if a == steps.ActionRetry {
			max = ", max_attempts: 2, backoff: { initial: 1ms, max: 1ms }"
		}
		src := fmt.Sprintf("version: 1\nname: r\nsteps:\n  - name: a\n    deadline: 10s\n    request: { url: %q }\n    retry: [{ on: [500], action: %s%s }]\n", srv.URL, a, max)
		p, err := engine.Parse("r.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		r, err := p.Bind(engine.Config{})
		if err != nil {
			t.Fatal(err)
		}
		res := r.Run(context.Background(), map[string]any{})
		if res.Outcome != want.outcome || hits.Load() != want.tries {
			t.Errorf("action %s: outcome %s after %d tries, want %s after %d (%s)", a, res.Outcome, hits.Load(), want.outcome, want.tries, res.Reason)
		}
		r.Close(context.Background())
		srv.Close()
	}
}
