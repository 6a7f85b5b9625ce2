package postman

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plumbhq/plumb/internal/importer"
	"github.com/plumbhq/plumb/internal/importer/importtest"
)

var collectionFile = filepath.Join("testdata", "partner.postman_collection.json")

func importCollection(t *testing.T, opts Options) (*importer.Integration, string) {
	t.Helper()
	b, err := os.ReadFile(collectionFile)
	if err != nil {
		t.Fatal(err)
	}
	in, err := Import(collectionFile, b, opts)
	if err != nil {
		t.Fatalf("%+v: %v", opts, err)
	}
	return in, string(in.YAML())
}

// Every request and every folder of the collection imports into a file
// plumb loads whose generated cases pass; variables, auth blocks and
// saved answers map as the docs say, and no secret value is copied.
func TestCollection(t *testing.T) {
	cases := []struct {
		opts  Options
		steps int
		cases int
		want  []string
	}{
		{Options{Request: "Create lead"}, 1, 2, []string{
			`base_url: { default: "https://api.partner.example/v1" }`, "api_key: { required: true, secret: true",
			`auth: { type: api_key, in: header, name: X-API-Key, value: "{{settings.api_key}}" }`,
			`email: "{{lead.email}}"`, `first_name: "{{lead.firstName}}"`, `source: "{{settings.source}}"`, "source: { default: web }",
			`age: "{{lead.age}}"`, "consent: true", `requested_at: "{{now | date`,
			"name: saved example Duplicate of Create lead (409)", "outcome: failure", "create_lead: { id: L-1001, status: accepted, score: 87 }",
			`X-Partner-Ref: "{{settings.partner_ref}}"`, "partner_ref: { required: true, secret: true", "X-Partner-Ref: test-partner-ref"}},
		{Options{Folder: "Leads"}, 2, 2, []string{"- name: create_lead", "- name: get_lead",
			`url: "{{settings.base_url}}/leads/{{lead.leadId}}"`, "leadId: L-1001", "get_lead: { id: L-1001, status: qualified }", "get_lead: []"}},
		{Options{Request: "Admin/Stats"}, 1, 1, []string{`auth: { type: bearer, token: "{{settings.admin_token}}" }`,
			`from: "{{lead.from}}"`, "granularity: day", "Authorization: Bearer test-admin-token"}},
		{Options{Request: "Reindex"}, 1, 1, []string{"form:", `scope: "{{lead.scope}}"`, `client_secret: "{{settings.client_secret}}"`}},
		{Options{Folder: "Admin"}, 2, 1, []string{"- name: stats", "- name: reindex"}},
		{Options{Request: "Accounts"}, 1, 1, []string{"grant: client_credentials", `token_url: { default: "https://auth.partner.example/oauth/token" }`,
			"scopes: [accounts.read, leads.read]", "auth_style: body", "POST /oauth/token:", "client_id: { required: true }"}},
		{Options{Request: "Ping"}, 1, 1, []string{`base_url: { default: "https://status.partner.example" }`, "body: pong"}},
	}
	for _, c := range cases {
		in, out := importCollection(t, c.opts)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%+v: output lacks %q:\n%s", c.opts, w, out)
			}
		}
		for _, secret := range []string{"pk_live_5f0c2a9d", "adm_9d8c7b6a", "cs_live_77aa", "ref-7788", `consent: "{{lead.consent}}"`} {
			if strings.Contains(out, secret) {
				t.Errorf("%+v: the secret %s was copied:\n%s", c.opts, secret, out)
			}
		}
		if len(in.Steps) != c.steps {
			t.Errorf("%+v: want %d steps, got %d", c.opts, c.steps, len(in.Steps))
		}
		if _, n := importtest.RoundTrip(t, in); n != c.cases {
			t.Errorf("%+v: want %d cases, got %d", c.opts, c.cases, n)
		}
	}
	if _, out := importCollection(t, Options{Request: "Ping"}); strings.Contains(out, "auth:") {
		t.Errorf("a noauth request has auth:\n%s", out)
	}
}

// Bad input: one line with a hint; several requests are listed.
func TestBadCollections(t *testing.T) {
	b, _ := os.ReadFile(collectionFile)
	cases := []struct {
		src  string
		opts Options
		want string
	}{
		{"not json", Options{}, "is not a Postman collection"},
		{`{"openapi": "3.0.0"}`, Options{}, "is not a Postman collection (no info.schema)"},
		{`{"info": {"name": "x", "schema": "https://schema.getpostman.com/json/collection/v1.0.0/collection.json"}}`, Options{}, "is a Postman v1 collection"},
		{`{"info": {"name": "x", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"}, "item": []}`, Options{}, "has no requests"},
		{string(b), Options{}, "has 6 requests (choose one with --request NAME"},
		{string(b), Options{Request: "Nope"}, `has no request "Nope"`},
		{string(b), Options{Folder: "Nope"}, `has no folder "Nope"`},
	}
	for _, c := range cases {
		in, err := Import("c.json", []byte(c.src), c.opts)
		var ie *importer.Error
		if in != nil || !errors.As(err, &ie) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") || ie.Hint == "" {
			t.Errorf("%q: want one line with %q and a hint, got %v", c.want, c.want, err)
		}
	}
	_, err := Import("c.json", b, Options{})
	var ie *importer.Error
	if errors.As(err, &ie) && !strings.Contains(strings.Join(ie.Detail, "\n"), "POST    Leads/Create lead") {
		t.Errorf("the requests are not listed: %q", ie.Detail)
	}
}

// A folder of more requests than a flow holds is refused with a hint.
func TestFolderFlowSizeBounded(t *testing.T) {
	var items []string
	for i := range importer.MaxFlowSteps + 1 {
		items = append(items, fmt.Sprintf(`{"name": "r%d", "request": {"method": "GET", "url": "https://api.example.com/r/%d"}}`, i, i))
	}
	c := `{"info": {"name": "many", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
  "item": [{"name": "All", "item": [` + strings.Join(items, ",") + `]}]}`
	_, err := Import("c.json", []byte(c), Options{Folder: "All"})
	if err == nil || !strings.Contains(err.Error(), "a flow holds at most") {
		t.Fatalf("want the folder refused, got %v", err)
	}
}

// A pre-request script (of the collection, a folder or the request) is a
// TODO on the request it runs before: plumb runs no scripts, and a
// signature or token it computed would otherwise be missed silently. A
// script of only comments is none, and so is a test script (run after).
func TestPreRequestScriptsAreTODOs(t *testing.T) {
	script := func(lines string) string {
		return `"event": [{"listen": "prerequest", "script": {"exec": [` + lines + `]}}]`
	}
	c := `{"info": {"name": "s", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"}, ` +
		script(`"pm.variables.set('sig', CryptoJS.HmacSHA256(pm.request.body.raw, 'k').toString());"`) + `,
  "item": [{"name": "F", "event": [{"listen": "prerequest", "script": {"exec": ["// nothing", "  "]}},
    {"listen": "test", "script": {"exec": ["pm.test('ok', () => pm.response.to.have.status(200));"]}}], "item": [
    {"name": "signed", ` + script(`"pm.variables.set('ts', Date.now());"`) + `,
     "request": {"method": "GET", "url": "https://api.example.com/a", "header": [{"key": "X-Signature", "value": "{{sig}}"}]}}]}]}`
	in, err := Import("c.json", []byte(c), Options{Request: "F/signed"})
	if err != nil {
		t.Fatal(err)
	}
	out := string(in.YAML())
	for _, want := range []string{"a pre-request script of the collection runs", "a pre-request script of the request runs"} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "of the folder F") {
		t.Errorf("a script of comments only, or a test script, is none:\n%s", out)
	}
	importtest.RoundTrip(t, in)
}
