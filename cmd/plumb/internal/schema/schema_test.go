package schema_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/plumbhq/plumb/cmd/plumb/internal/schema"
)

// root is the repository root, from this package's directory.
var root = filepath.Join("..", "..", "..", "..")

// TestCommittedSchemasAreCurrent fails when the model types changed and the
// committed schemas were not regenerated.
func TestCommittedSchemasAreCurrent(t *testing.T) {
	for _, k := range []schema.Kind{schema.Integration, schema.TestFile} {
		got, err := schema.Generate(k)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(root, "schema", schema.FileName(k))
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			flag := ""
			if k == schema.TestFile {
				flag = " --tests"
			}
			t.Errorf("schema/%s is stale; regenerate it from the repository root with:\n\tgo run ./cmd/plumb schema%s > schema/%s",
				schema.FileName(k), flag, schema.FileName(k))
		}
	}
}

func compile(t *testing.T, k schema.Kind) *jsonschema.Schema {
	t.Helper()
	b, err := schema.Generate(k)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schema.ID(k), doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(schema.ID(k))
	if err != nil {
		t.Fatalf("the generated schema does not compile: %v", err)
	}
	return sch
}

// yamlDoc reads a YAML file as the JSON value a validator sees.
func yamlDoc(t *testing.T, path string) any {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return yamlValue(t, src)
}

func yamlValue(t *testing.T, src []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestExamplesValidate checks every example integration and test file
// against the generated schemas.
func TestExamplesValidate(t *testing.T) {
	integ, tests := compile(t, schema.Integration), compile(t, schema.TestFile)
	files, err := filepath.Glob(filepath.Join(root, "examples", "*", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		var sch *jsonschema.Schema
		switch {
		case strings.HasSuffix(f, ".test.yaml"):
			sch = tests
		case filepath.Base(f) == "integration.yaml":
			sch = integ
		default:
			continue
		}
		n++
		if err := sch.Validate(yamlDoc(t, f)); err != nil {
			t.Errorf("%s does not validate against its schema:\n%v", f, err)
		}
	}
	if n < 14 {
		t.Errorf("validated only %d example files", n)
	}
}

// TestSchemaRejects shows the schema catches what plumb validate catches:
// unknown keys, wrong kinds, bad durations, missing required keys.
func TestSchemaRejects(t *testing.T) {
	sch := compile(t, schema.Integration)
	for name, src := range map[string]string{
		"unknown key":      "version: 1\nname: x\nsteps:\n  - name: a\n    request: { url: u }\n    retries: 3\n",
		"missing steps":    "version: 1\nname: x\n",
		"bad duration":     "version: 1\nname: x\nsteps:\n  - name: a\n    request: { url: u }\n    timeout: soon\n",
		"bool expected":    "version: 1\nname: x\nsettings: { k: { secret: maybe } }\nsteps:\n  - name: a\n    request: { url: u }\n",
		"bad retry action": "version: 1\nname: x\nsteps:\n  - name: a\n    request: { url: u }\n    retry: [{ on: [429], action: pray }]\n",
		"bad test key":     "version: 1\nname: x\nsteps:\n  - name: a\n    request: { url: u }\ntests:\n  - name: t\n    expect: { outcom: success }\n",
	} {
		if err := sch.Validate(yamlValue(t, []byte(src))); err == nil {
			t.Errorf("%s: the schema accepts\n%s", name, src)
		}
	}
	ok := "version: 1\nname: x\nsteps:\n  - name: a\n    request: { url: u }\n    timeout: 1m30s\n"
	if err := sch.Validate(yamlValue(t, []byte(ok))); err != nil {
		t.Errorf("the schema rejects a good file: %v", err)
	}
}
