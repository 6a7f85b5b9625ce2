// Package schema generates the JSON Schema (draft 2020-12) of plumb's file
// formats by reflection over the model types: steps.Integration for
// integration files and the testcase types for test cases. `plumb schema`
// prints it; the committed copies in the repository's schema/ directory are
// what editors load through yaml-language-server, and a test keeps them in
// sync with the types.
//
// Mapping: YAML keys come from yaml struct tags (",inline" merges a struct,
// ",required" makes a key required); structs are closed objects
// (additionalProperties: false), because plumb rejects unknown keys; Map[T]
// is an object of T; Value and any accept anything; time.Duration is a Go
// duration string; strings accept any scalar, as plumb does.
package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/plumbhq/plumb/internal/testcase"
	"github.com/plumbhq/plumb/steps"
)

// Kind selects which file format a schema describes.
type Kind string

// The file formats.
const (
	Integration Kind = "integration" // an integration file (tests: included)
	TestFile    Kind = "tests"       // a NAME.test.yaml file
)

// Base is where the committed schemas are published; each schema's $id is
// Base + its file name.
const Base = "https://raw.githubusercontent.com/plumbhq/plumb/main/schema/"

// FileName is the name of the committed schema of kind k.
func FileName(k Kind) string {
	if k == TestFile {
		return "plumb-test.schema.json"
	}
	return "plumb.schema.json"
}

// ID is the $id of the schema of kind k.
func ID(k Kind) string { return Base + FileName(k) }

// Generate returns the schema of kind k as indented JSON ending in a
// newline. The output is deterministic.
func Generate(k Kind) ([]byte, error) {
	g := &gen{defs: map[string]any{}}
	var root map[string]any
	var title, desc string
	switch k {
	case Integration:
		root = g.object(reflect.TypeFor[steps.Integration]())
		title, desc = "plumb integration", "An integration file of plumb: the settings it needs and the HTTP steps it runs for each lead. Checked strictly by `plumb validate`."
	case TestFile:
		root = g.object(reflect.TypeFor[testFile]())
		title, desc = "plumb test cases", "A NAME.test.yaml file: stored test cases for the integration NAME.yaml, run by `plumb test`."
	default:
		return nil, fmt.Errorf("unknown schema kind %q (want %s or %s)", k, Integration, TestFile)
	}
	out := map[string]any{
		"$schema":     "https://json-schema.org/draft/2020-12/schema",
		"$id":         ID(k),
		"title":       title,
		"description": desc,
		"$defs":       g.defs,
	}
	for key, v := range root {
		out[key] = v
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// testFile mirrors the top level of a NAME.test.yaml file.
type testFile struct {
	Integration string           `yaml:"integration"`
	Tests       []*testcase.Case `yaml:"tests,required"`
}

type gen struct {
	defs map[string]any
}

var (
	durationType  = reflect.TypeFor[time.Duration]()
	stringType    = reflect.TypeFor[steps.String]()
	valueType     = reflect.TypeFor[steps.Value]()
	tcValueType   = reflect.TypeFor[testcase.Value]()
	sequenceType  = reflect.TypeFor[testcase.Sequence]()
	integrationTy = reflect.TypeFor[steps.Integration]()
)

// scalar is what plumb accepts where it reads text: any YAML scalar.
func scalar() map[string]any { return map[string]any{"type": []string{"string", "number", "boolean"}} }

// durationPattern matches Go durations such as 500ms, 2s, 1m30s.
const durationPattern = `^(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`

func (g *gen) schema(t reflect.Type) map[string]any {
	switch t {
	case durationType:
		return map[string]any{"type": "string", "pattern": durationPattern, "description": "a Go duration such as 500ms, 2s or 1m30s"}
	case stringType:
		return scalar()
	case valueType, tcValueType:
		return map[string]any{}
	case sequenceType:
		resp := g.schema(reflect.TypeFor[testcase.Response]())
		return map[string]any{"oneOf": []any{resp, map[string]any{"type": "array", "minItems": 1, "items": resp}}}
	}
	if elem, ok := orderedMapElem(t); ok {
		return map[string]any{"type": "object", "additionalProperties": g.schema(elem)}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.schema(t.Elem())
	case reflect.Struct:
		name := defName(t)
		if _, done := g.defs[name]; !done {
			g.defs[name] = true // placeholder against recursion
			g.defs[name] = g.object(t)
		}
		return map[string]any{"$ref": "#/$defs/" + name}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.String:
		return scalar()
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Interface:
		return map[string]any{}
	}
	panic(fmt.Sprintf("schema: no mapping for %s", t))
}

// defName names t's definition; test case types get a Test prefix so
// they do not clash with the integration's (Response).
func defName(t reflect.Type) string {
	if strings.HasSuffix(t.PkgPath(), "/testcase") {
		return "Test" + t.Name()
	}
	return t.Name()
}

// orderedMapElem recognises steps.Map[T] (testcase.Map[T] is an alias): slices of
// entries with Key, Pos and Value fields.
func orderedMapElem(t reflect.Type) (reflect.Type, bool) {
	if t.Kind() != reflect.Slice || t.Elem().Kind() != reflect.Struct || !strings.HasPrefix(t.Name(), "Map[") {
		return nil, false
	}
	f, ok := t.Elem().FieldByName("Value")
	if !ok {
		return nil, false
	}
	return f.Type, true
}

// object is the schema of a struct: its tagged fields, closed.
func (g *gen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	g.fields(t, defName(t), props, &required)
	out := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if d, ok := descriptions[defName(t)]; ok {
		out["description"] = d
	}
	if len(required) > 0 {
		sort.Strings(required)
		out["required"] = required
	}
	return out
}

func (g *gen) fields(t reflect.Type, owner string, props map[string]any, required *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "inline" {
			g.fields(f.Type, owner, props, required)
			continue
		}
		var s map[string]any
		if t == integrationTy && name == "tests" {
			s = map[string]any{"type": "array", "minItems": 1, "items": g.schema(reflect.TypeFor[testcase.Case]())}
		} else {
			s = g.schema(f.Type)
		}
		s = copyMap(s)
		key := owner + "." + name
		if e, ok := enums[key]; ok {
			delete(s, "type")
			s["enum"] = e
		}
		if d, ok := descriptions[key]; ok {
			if _, isRef := s["$ref"]; isRef {
				s = map[string]any{"allOf": []any{s}}
			}
			s["description"] = d
		}
		props[name] = s
		if opts == "required" {
			*required = append(*required, name)
		}
	}
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// enums lists the fields whose values are a fixed set.
var enums = map[string][]any{
	"Setting.type":            {"string", "number", "bool", "list", "object"},
	"Step.on_error":           {"stop", "continue"},
	"Response.format":         {"json", "xml", "text"},
	"Capture.type":            {"string", "number", "int", "bool"},
	"RetryRule.action":        {"retry", "reauth", "fail", "fallback", "ignore", "stop"},
	"Step.follow_redirects":   {"same_origin", "none", "any"},
	"TLS.min_version":         {"1.2", "1.3"},
	"RetryRule.retry_after":   {"honor", "ignore"},
	"TestExpect.outcome":      {"success", "failure", "error", "skip"},
	"Paginate.type":           {"page", "offset", "cursor", "next_url", "link"},
	"WebhookVerify.preset":    {"actuallycare", "standard-webhooks", "svix", "github", "stripe", "hmac"},
	"WebhookVerify.algorithm": {"sha256", "sha1", "sha512"},
	"WebhookVerify.encoding":  {"hex", "base64", "base64url"},
	"TestExpect.status":       {200, 400, 401, 413, 415},
}

// descriptions document the main types and keys, for editor hovers. A
// key is "Type" or "Type.yaml_key".
var descriptions = map[string]string{
	"Integration.version":            "The file format version; always 1.",
	"Integration.name":               "The integration's name.",
	"Integration.settings":           "What the integration needs configured (credentials schema), by setting name. Templates read them as settings.NAME.",
	"Integration.auth":               "Signs every request of every step unless a step says otherwise.",
	"Integration.deadline":           "Bounds the whole flow for one lead.",
	"Integration.steps":              "The HTTP calls made for each lead, in order.",
	"Integration.tests":              "Stored test cases, run by `plumb test`.",
	"Integration.source":             "Pulls records from an API page by page (plumb sync); each record then runs through steps: as the lead.",
	"Source":                         "The request of every page, described like a step's (request, auth, timeout, retry, capture, outcome; templates may read state.cursor and page.*), and how to read records and the next page.",
	"Source.records":                 "Where the records are in a page: exactly one of json (a gjson path to an array) or xpath (one node per record). Default: the body is a JSON array.",
	"Source.paginate":                "How to get the next page; without it the source is one page.",
	"Source.stop_when":               "Condition over captured, response, page and state; when it holds for a page, that page is the last (e.g. captured.has_more == false).",
	"Source.max_pages":               "Most pages of one sync (default 10000); the next sync goes on where this one stopped.",
	"Source.incremental":             "Keep the highest cursor_field value between syncs; the next sync reads it as state.cursor.",
	"Source.rate":                    "Client-side budget for page requests: N/s, N/m, N/h or N/DURATION (e.g. 5/s, 500/15m).",
	"Source.key":                     "Record field (dotted) that identifies a record: the retry list keeps one entry per key, and repeated pages are told by it.",
	"Records.json":                   "gjson path to the array of records (e.g. data.leads).",
	"Records.xpath":                  "XPath selecting one node per record (its attributes and child elements become the record's fields).",
	"Paginate":                       "page: page.number (from start, default 1) and page.size; offset: page.offset (+ records read) and page.limit; cursor: page.cursor from the last page; next_url: the URL from the last page; link: the Link rel=\"next\" header. Stops on stop_when, an empty page, a missing cursor or link, or max_pages; a cursor or link that repeats is an error.",
	"Paginate.start":                 "First page number (page, default 1) or offset (offset, default 0).",
	"Paginate.size":                  "Page size: page.size (page) or page.limit (offset, required).",
	"Paginate.cursor":                "Where the next cursor is (type cursor): exactly one of json, xpath or header.",
	"Paginate.next":                  "Where the next page's URL is (type next_url): exactly one of json, xpath or header; it must stay on the source's origin or http.allow_hosts.",
	"Incremental.cursor_field":       "Record field (dotted, e.g. updated_at) whose highest value is saved once the records of its page all ran.",
	"Incremental.start":              "state.cursor of the first sync.",
	"Incremental.lookback":           "A Go duration (e.g. 1h) taken off the saved cursor before the next sync reads it (seconds off a number), to catch late writes.",
	"Setting":                        "One configuration value the integration needs.",
	"Setting.required":               "The setting must have a value (given, from env, or default) before any lead runs.",
	"Setting.secret":                 "The value is masked (****) in everything plumb prints.",
	"Setting.env":                    "Environment variable the value is read from when none is given.",
	"Setting.default":                "Value used when none is given.",
	"Step":                           "One HTTP call and what to make of its answer.",
	"Step.name":                      "Letters, digits and _; later steps read its captures as steps.NAME.FIELD.",
	"Step.when":                      "Condition (expr) over lead, settings and steps; when false the step is skipped.",
	"Step.timeout":                   "Bounds one try (connect, send, read the whole response).",
	"Step.deadline":                  "Bounds all tries of the step, waits and fallbacks included.",
	"Step.retry":                     "Retry rules, matched in order before the documented defaults.",
	"Step.fallback":                  "Fallback links, tried in order once the primary request gives up.",
	"Step.capture":                   "Values extracted from the response, by name; read as captured.NAME.",
	"Step.append":                    "Lead fields to write (dotted names nest), as structured templates.",
	"Request":                        "The step's HTTP request; every string is a template.",
	"Request.method":                 "Default GET, or POST when there is a body.",
	"Request.query":                  "Query parameters; values are URL-encoded.",
	"Body":                           "The request body: exactly one of json, form, xml or text.",
	"Capture":                        "One value read from the response: exactly one of json, xpath, split, regex, header or status.",
	"Step.max_attempts":              "Tries of this step's request whatever the rules say, the first included; 1 never retries.",
	"Step.limits":                    "Client-side limits of this step's requests, on top of the integration's.",
	"Step.breaker":                   "Fail fast, straight to the fallback chain, after consecutive errors, until a cool-down has passed.",
	"Step.follow_redirects":          "same_origin (default), none, or any (dropping credentials and body on a host change).",
	"Integration.include":            "Shared fragment files (settings, auth, http, vars, retry, deadline), relative to this file.",
	"Integration.retry":              "Retry rules for every step, after each step's own and before the defaults.",
	"Integration.limits":             "Client-side limits of all the integration's requests together (a partner's contract).",
	"Limits.rate":                    "Requests per s, m or h: 10/s, 600/m.",
	"Limits.burst":                   "Requests that may go at once when the rate allows (default 1).",
	"Limits.max_in_flight":           "Requests waiting for an answer at once.",
	"Breaker.failures":               "Consecutive step errors that open the breaker (default 5).",
	"Breaker.cooldown":               "How long it stays open before one probe (default 30s).",
	"RetryRule.retry_after_max":      "Longest Retry-After honoured (default 60s); a longer ask ends the retries.",
	"HTTP.allow_hosts":               "Origins lead data may name in a request URL: [http(s)://]host[:port] or *.suffix; without a scheme or port an entry means https on 443.",
	"HTTP.tls":                       "CA bundle, client certificate (mTLS), minimum version, server name.",
	"Capture.redact":                 "A secret (a token): masked in results, logs and dumps, in every encoding, for the rest of the lead.",
	"Outcome":                        "Without rules a 2xx answer is a success, a 4xx a failure and anything else an error.",
	"Outcome.failure_when":           "Condition that makes the step a failure (the partner said no).",
	"Outcome.error_when":             "Condition that makes the step an error (no usable answer).",
	"Outcome.reason":                 "Template for the reason reported with a failure or error.",
	"RetryRule":                      "What to do when a try ends a certain way.",
	"RetryRule.on":                   "Status codes (429), classes (5xx), timeout, connection, tls, error_when, failure_when.",
	"RetryRule.max_attempts":         "Tries of the request, the first included (retry only; default 3).",
	"Fallback":                       "One link of a fallback chain: exactly one of request, cache, defaults (with flag) or skip.",
	"TestCase":                       "A stored test case: a lead, settings, recorded responses and expectations.",
	"TestCase.lead":                  "The lead, a mapping.",
	"TestCase.lead_file":             "A JSON file holding the lead, relative to this file.",
	"TestCase.settings":              "Setting values; base_url is pointed at the test server unless given. The environment is not read.",
	"TestCase.now":                   "Fixes the clock (RFC 3339) for template time helpers.",
	"TestCase.responses":             "Recorded answers per step name, or per route (\"POST /oauth/token\", \"/path\"). A list is served in order; its last answer repeats.",
	"TestResponse.status":            "HTTP status; default 200.",
	"TestResponse.body":              "Text as is, or a structured value sent as JSON.",
	"TestResponse.body_file":         "A file holding the body, relative to this file.",
	"TestResponse.delay":             "Hold the answer back this long (real time).",
	"TestResponse.error":             "No HTTP answer: connection closes the connection, timeout never answers.",
	"TestExpect":                     "What must come of the case; every key is optional.",
	"TestExpect.reason":              "Text the flow's reason must contain.",
	"TestExpect.reason_matches":      "Regular expression the flow's reason must match.",
	"TestExpect.step":                "The step that decided a failure or error.",
	"TestExpect.steps":               "Outcomes per step name.",
	"TestExpect.captured":            "Captured values per step; objects match by a subset of keys.",
	"TestExpect.lead":                "Fields the final lead must contain (dotted keys read nested fields).",
	"TestExpect.requests":            "Matchers for the requests each step sent, in order; as many as were sent.",
	"TestExpect.attempts":            "Tries per step, retries included.",
	"TestRequestMatch.url_matches":   "Regular expression the whole URL must match.",
	"TestRequestMatch.body":          "JSON value the body must contain (objects: a subset of keys).",
	"TestRequestMatch.form":          "Values the urlencoded body must hold.",
	"TestRequestMatch.body_contains": "Text the body must contain.",
	"Integration.webhook":            "Receive signed webhook deliveries (plumb serve): verified over the raw body, deduplicated, stored in the queue and answered 200 at once; each event then runs through steps: as the lead.",
	"Webhook.path":                   "The route the partner posts to (default /v1/hooks/NAME); not one of plumb serve's own routes.",
	"Webhook.verify":                 "How deliveries are signed: a preset and its secrets.",
	"Webhook.dedupe":                 "What makes two deliveries the same event, and how long it is remembered.",
	"Webhook.max_bytes":              "Largest body accepted (default 512 KiB, at most 960 KiB); more is a 413.",
	"Webhook.meta":                   "A lead field that receives {id, type, preset, received} of the delivery.",
	"WebhookVerify.preset":           "The signature scheme: actuallycare (X-Webhook-Signature, hex HMAC-SHA256 of the body), standard-webhooks, svix, github (X-Hub-Signature-256), stripe (Stripe-Signature) or hmac (generic).",
	"WebhookVerify.secrets":          "Active secrets, newest first, each a reference to a secret setting: [\"{{settings.hook_secret}}\"]. Unset ones are skipped (the old secret after a rotation).",
	"WebhookVerify.tolerance":        "How far a signed timestamp may be from now, either way (default 5m); only for schemes that sign one.",
	"WebhookVerify.header":           "hmac: the signature header.",
	"WebhookVerify.prefix":           "hmac: text before the signature, e.g. sha256=.",
	"WebhookVerify.signed":           "hmac: the signed content with {body}, {timestamp} and {id}, e.g. {timestamp}.{body} (default {body}).",
	"WebhookVerify.timestamp_header": "hmac: the header carrying the signed unix timestamp (needs {timestamp} in signed).",
	"WebhookVerify.id_header":        "hmac: the header carrying the event id (signed when signed uses {id}).",
	"WebhookDedupe.key":              "Template over the event (lead) and settings, e.g. \"{{lead.event}}:{{lead.timestamp}}\". Default: the scheme's event id; actuallycare: the body's event and timestamp.",
	"WebhookDedupe.window":           "How long a key is remembered (default 24h); a copy within it is answered 200 with duplicate: true and not run.",
	"TestCase.webhook":               "An inbound delivery to the integration's webhook receiver instead of a lead: signed with the case's secret, checked like plumb serve checks it, and run when accepted.",
	"TestWebhookCase.body":           "The event: a mapping (sent as JSON) or text sent as is.",
	"TestWebhookCase.body_file":      "A file holding the event, relative to this file.",
	"TestWebhookCase.content_type":   "Default application/json.",
	"TestWebhookCase.headers":        "Headers added after signing; they win over the signature's.",
	"TestWebhookCase.id":             "The event id the sender signs or sends (default evt_test).",
	"TestWebhookCase.timestamp":      "The signed time, RFC 3339 (default the case's now).",
	"TestWebhookCase.sign":           "false sends the delivery unsigned.",
	"TestWebhookCase.secret":         "Sign with this secret instead of the hook's (a forged delivery).",
	"TestExpect.status":              "The webhook receiver's answer (default 200): 401 signature, 413 size, 415 content type, 400 not a JSON object.",
}
