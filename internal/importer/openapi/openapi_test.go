package openapi

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plumbhq/plumb/internal/importer"
	"github.com/plumbhq/plumb/internal/importer/importtest"
)

// specs are the vendored public documents (testdata/README.md) and the
// test's own partner.yaml.
var specs = []string{
	"oai/petstore.yaml", "oai/petstore.json", "oai/uspto.yaml", "oai/api-with-examples.yaml",
	"redocly/museum.yaml", "partner.yaml",
}

func importSpec(t *testing.T, spec string, opts Options) (*importer.Integration, error) {
	t.Helper()
	path := filepath.Join("testdata", spec)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return Import(path, b, opts)
}

func mustImport(t *testing.T, spec string, opts Options) (*importer.Integration, string) {
	t.Helper()
	in, err := importSpec(t, spec, opts)
	if err != nil {
		t.Fatalf("%s %+v: %v", spec, opts, err)
	}
	return in, string(in.YAML())
}

// Every operation of every vendored spec imports into a file plumb loads,
// whose generated test cases all pass under internal/testcase (plumb test).
func TestEveryOperationRoundTrips(t *testing.T) {
	total := 0
	for _, spec := range specs {
		path := filepath.Join("testdata", spec)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := importSpec(t, spec, Options{Operation: "no such operation"})
		var ie *importer.Error
		if doc != nil || !errors.As(err, &ie) {
			t.Fatalf("%s: want the operations listed, got %v", spec, err)
		}
		for _, line := range ie.Detail {
			fields := strings.Fields(line)
			opts := Options{Path: fields[1] + " " + fields[2]}
			t.Run(spec+" "+opts.Path, func(t *testing.T) {
				in, err := Import(path, b, opts)
				if err != nil {
					t.Fatal(err)
				}
				_, n := importtest.RoundTrip(t, in)
				if n == 0 && !in.NeedsLogin() {
					t.Errorf("no test cases generated")
				}
				total += n
			})
		}
	}
	if total < 25 {
		t.Errorf("only %d generated cases ran", total)
	}
}

func contains(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

func lacks(t *testing.T, out string, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(out, b) {
			t.Errorf("output holds %q:\n%s", b, out)
		}
	}
}

// The Petstore's createPets: lead fields named after the schema's
// properties, required ones read as they are, the optional one commented.
func TestPetstoreBody(t *testing.T) {
	for _, spec := range []string{"oai/petstore.yaml", "oai/petstore.json"} {
		_, out := mustImport(t, spec, Options{Operation: "createPets"})
		contains(t, out,
			`url: "{{settings.base_url}}/pets"`,
			`base_url: { default: "http://petstore.swagger.io/v1" }`,
			`id: "{{lead.id}}"  # required: integer, int64`,
			`name: "{{lead.name}}"  # required: string`,
			`# tag: "{{lead.tag}}"  # optional: string; uncomment`,
			"method: POST",
		)
	}
	_, out := mustImport(t, "oai/petstore.yaml", Options{Path: "GET /pets/{petId}"})
	contains(t, out, `url: "{{settings.base_url}}/pets/{{lead.petId}}"`, "name: { json: name }", "id: { json: id, type: int }",
		"error_message: { json: message }", `reason: "{{captured.error_message}}"`)
}

// Optional values: the spec's default, null where the schema allows it,
// else commented out; read-only properties are not sent; parameters go
// where the spec puts them.
func TestPartnerRequest(t *testing.T) {
	_, out := mustImport(t, "partner.yaml", Options{Operation: "createLead"})
	contains(t, out,
		`channel: "{{ lead.channel | default \"web\" }}"`,
		`dry_run: "{{ lead.dry_run | default false }}"`,
		`Idempotency-Key: "{{lead.Idempotency_Key}}"  # required`,
		`phone: "{{ lead.phone | default nil }}"  # optional: string; null when the lead has none`,
		`# address:  # optional object`,
		`# city: "{{lead.address.city}}"`,
		`consent: "{{lead.consent}}"  # required: boolean`,
		`base_url: { default: "https://eu.partner.example/v2" }`,
		`- { on: [429], action: retry, max_attempts: 5 }`,
		`- { on: [503], action: retry }`,
		`- { on: [400, 409], action: fail }`,
		`error_message: { json: error.message }`,
		`access_token: { json: access_token, redact: true }`,
		"name: a 503 answer is retried", "name: a 429 answer is retried",
		"reason: email is not deliverable",
		`name: "example complete: the documented request succeeds"`,
	)
	lacks(t, out, `"{{lead.id}}"`)

	// a PATCH whose body properties are all optional sends those the lead has
	_, out = mustImport(t, "redocly/museum.yaml", Options{Operation: "updateSpecialEvent"})
	contains(t, out, `json: "{{ pick lead \"name\" \"location\" \"eventDescription\" \"dates\" \"price\" }}"`,
		"lead: { eventId: dad4bce8-f5cb-4078-a211-995864315e39, location: On the beach., price: 15 }",
		"body: { location: On the beach., price: 15 }")
}

// Each security scheme becomes plumb auth with secret settings; the
// test requests carry the placeholder credentials.
func TestSecuritySchemes(t *testing.T) {
	cases := []struct {
		spec, op string
		want     []string
	}{
		{"partner.yaml", "createLead", []string{`auth: { type: api_key, in: header, name: X-API-Key, value: "{{settings.api_key}}" }`,
			"api_key: { required: true, secret: true, env: CREATE_LEAD_API_KEY }", "X-API-Key: test-api-key"}},
		{"partner.yaml", "searchLeads", []string{`auth: { type: api_key, in: query, name: api_key, value: "{{settings.api_key}}" }`,
			"query: { q: example q, api_key: test-api-key }", "# the spec also accepts: partnerOAuth"}},
		{"partner.yaml", "validateEmail", []string{`auth: { type: bearer, token: "{{settings.token}}" }`,
			"token: { required: true, secret: true", "Authorization: Bearer test-token"}},
		{"partner.yaml", "getLead", []string{"grant: client_credentials", `token_url: { default: "https://auth.partner.example/oauth/token" }`,
			"scopes: [leads.read]", "client_secret: { required: true, secret: true", "POST /oauth/token:", "Authorization: Bearer test-access-token"}},
		{"partner.yaml", "exportLeads", []string{"grant: authorization_code", `auth_url: { default: "https://eu.partner.example/oauth/authorize" }`,
			`token_url: { default: "https://eu.partner.example/oauth/token" }`, "No test cases: plumb test cannot log in"}},
		{"partner.yaml", "legacySubmit", []string{`Cookie: "SESSION={{settings.session}}"`, "TODO(import): the scheme sessionCookie", "session: { required: true, secret: true"}},
		{"redocly/museum.yaml", "buyMuseumTickets", []string{`auth: { type: basic, username: "{{settings.username}}", password: "{{settings.password}}" }`,
			"password: { required: true, secret: true", `Authorization: "Basic dGVzdC11c2VyOnRlc3QtcGFzc3dvcmQ="`}},
	}
	for _, c := range cases {
		_, out := mustImport(t, c.spec, Options{Operation: c.op})
		contains(t, out, c.want...)
	}
}

// Documented examples become cases: request and answer examples paired by
// name, captures expected from the answer.
func TestExamplesBecomeCases(t *testing.T) {
	in, out := mustImport(t, "redocly/museum.yaml", Options{Operation: "buyMuseumTickets"})
	contains(t, out, `name: "example general_entry: the documented request succeeds"`,
		`name: "example event_entry: the documented request succeeds"`,
		"confirmation_code: ticket-event-9c55eg-8v82a", "confirmation_code: ticket-general-e5e5c6-dce78",
		"the example also gives email, eventId: optional fields this file does not send")
	if len(in.Tests) != 3 {
		t.Errorf("want 3 cases (2 examples, 1 error), got %d", len(in.Tests))
	}
	_, out = mustImport(t, "oai/uspto.yaml", Options{Operation: "perform-search"})
	contains(t, out, "form:", `criteria: "{{lead.criteria}}"  # required`, `start: "{{ lead.start | default 0 }}"`,
		`# rows: "{{lead.rows}}"`, `form: { criteria: "*:*", start: "0" }`)
}
