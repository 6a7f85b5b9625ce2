package openapi

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plumbhq/plumb/internal/importer"
)

// Bad input is one line naming the problem, with a hint; never a panic.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	remote := filepath.Join(dir, "remote.yaml")
	os.WriteFile(remote, []byte("openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    get:\n      responses:\n        '200': {$ref: 'http://169.254.169.254/r.yaml'}\n"), 0o644)
	cases := []struct {
		name, src string
		opts      Options
		want      string
	}{
		{"not yaml", "{ nope: [", Options{}, "is not JSON or YAML"},
		{"not a spec", "name: my integration\nsteps: []\n", Options{}, "is not an OpenAPI document (no openapi: key)"},
		{"swagger 2", "swagger: '2.0'\ninfo: {title: t, version: '1'}\npaths: {}\n", Options{}, "Swagger 2.0 document"},
		{"version 4", "openapi: 4.0.0\n", Options{}, "is OpenAPI 4.0.0"},
		{"no operations", "openapi: 3.1.0\ninfo: {title: t, version: '1'}\nwebhooks:\n  x:\n    post:\n      responses: {'200': {description: ok}}\n", Options{}, "has no operations (it describes only webhooks"},
		{"broken ref", "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    get:\n      responses:\n        '200': {$ref: '#/components/responses/Nope'}\n", Options{}, "spec.yaml:"},
		{"unknown operation", "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    get: {operationId: getX, responses: {'200': {description: ok}}}\n", Options{Operation: "postY"}, `has no operation "postY" (choose one of the operations below)`},
		{"path without method", "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    get: {responses: {'200': {description: ok}}}\n", Options{Path: "/x"}, `--path "/x" has no method`},
		{"unknown path", "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    get: {responses: {'200': {description: ok}}}\n", Options{Path: "POST /x"}, "has no operation POST /x"},
		{"bad server", "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    get: {responses: {'200': {description: ok}}}\n", Options{Server: "ftp://x"}, `--server "ftp://x" is not an absolute http(s) URL`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in, err := Import(filepath.Join(dir, "spec.yaml"), []byte(c.src), c.opts)
			var ie *importer.Error
			if in != nil || !errors.As(err, &ie) {
				t.Fatalf("want an import error, got %v, %v", in, err)
			}
			if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") || ie.Hint == "" {
				t.Errorf("want one line with %q and a hint, got %q", c.want, err)
			}
		})
	}
	b, _ := os.ReadFile(remote)
	if _, err := Import(remote, b, Options{}); err == nil || !strings.Contains(err.Error(), "reads only local files") {
		t.Errorf("a remote $ref: want it refused, got %v", err)
	}
}

// Several operations and no choice: the error lists them to choose from.
func TestSeveralOperationsListed(t *testing.T) {
	_, err := importSpec(t, "oai/petstore.yaml", Options{})
	var ie *importer.Error
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "has 3 operations (choose one with --operation ID or --path 'METHOD /path')") {
		t.Fatalf("got %v", err)
	}
	joined := strings.Join(ie.Detail, "\n")
	for _, want := range []string{"listPets", "createPets", "showPetById", "GET     /pets/{petId}"} {
		if !strings.Contains(joined, want) {
			t.Errorf("the list lacks %q:\n%s", want, joined)
		}
	}
	if _, out := mustImport(t, "oai/petstore.yaml", Options{Operation: "CREATEPETS"}); !strings.Contains(out, "name: create-pets") {
		t.Errorf("operation ids match without case when nothing matches exactly")
	}
}

// A $ref is read from the spec's directory or below only: a spec that
// names ../outside.yaml or an absolute path is refused (a downloaded spec
// would copy a local file into the draft), one beside it is read.
func TestRefsStayBesideTheSpec(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "spec")
	os.MkdirAll(filepath.Join(dir, "schemas"), 0o755)
	const canary = "CANARY-outside-3b7f"
	lead := "Lead:\n  type: object\n  properties:\n    email: { type: string, example: " + canary + " }\n"
	os.WriteFile(filepath.Join(base, "outside.yaml"), []byte(lead), 0o644)
	os.WriteFile(filepath.Join(dir, "schemas", "lead.yaml"), []byte(strings.Replace(lead, canary, "in@x.example", 1)), 0o644)
	spec := func(ref string) []byte {
		return []byte("openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /leads:\n    post:\n      operationId: add\n" +
			"      requestBody: {content: {application/json: {schema: {$ref: '" + ref + "'}}}}\n      responses: {'200': {description: ok}}\n")
	}
	for _, ref := range []string{"../outside.yaml#/Lead", filepath.Join(base, "outside.yaml") + "#/Lead"} {
		_, err := Import(filepath.Join(dir, "spec.yaml"), spec(ref), Options{})
		if err == nil || !strings.Contains(err.Error(), "outside the spec's directory") || strings.Contains(err.Error(), canary) {
			t.Errorf("$ref %s: want it refused, got %v", ref, err)
		}
	}
	in, err := Import(filepath.Join(dir, "spec.yaml"), spec("schemas/lead.yaml#/Lead"), Options{})
	if err != nil || in == nil {
		t.Fatalf("a $ref below the spec: %v", err)
	}
}
