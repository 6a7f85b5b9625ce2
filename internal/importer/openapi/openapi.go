// Package openapi imports one operation of an OpenAPI 3.0 or 3.1 document
// (JSON or YAML, $refs resolved by github.com/getkin/kin-openapi, which
// reads both versions) into a draft plumb integration: the request
// templated from the operation's parameters and body schema, auth from its
// security schemes, captures from the success answer's schema, rules from
// the documented statuses, and a test case per documented example.
package openapi

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"gopkg.in/yaml.v3"

	"github.com/plumbhq/plumb/internal/importer"
	"github.com/plumbhq/plumb/steps"
)

// Options select the operation and shape the output.
type Options struct {
	// Operation is an operationId; Path is "METHOD /path" as the spec
	// writes it. Without either, a spec with one operation imports it and
	// one with several is an error listing them.
	Operation, Path string
	// Server is the base URL (default: the operation's or the spec's first
	// server, variables at their defaults).
	Server string
	// Name is the integration's name (default: from the operation).
	Name string
}

// maxRefFile bounds each file a $ref names.
const maxRefFile = 16 << 20

// op is one operation of the spec.
type op struct {
	method, path string
	item         *openapi3.PathItem
	o            *openapi3.Operation
}

func (o *op) String() string { return o.method + " " + o.path }

// Import reads the spec in data (file names it, for relative $refs) and
// returns the draft integration of the selected operation.
func Import(file string, data []byte, opts Options) (in *importer.Integration, err error) {
	defer func() {
		if p := recover(); p != nil {
			in, err = nil, importer.Errorf("check the document with an OpenAPI validator", "%s could not be read as OpenAPI (the reader failed: %v)", file, p)
		}
	}()
	doc, err := load(file, data)
	if err != nil {
		return nil, err
	}
	o, err := choose(file, doc, opts)
	if err != nil {
		return nil, err
	}
	return build(file, doc, o, opts)
}

// load sniffs the version and loads the document with its $refs.
func load(file string, data []byte) (*openapi3.T, error) {
	var head struct {
		OpenAPI any `yaml:"openapi"`
		Swagger any `yaml:"swagger"`
	}
	if err := yaml.Unmarshal(data, &head); err != nil {
		return nil, importer.Errorf("give an OpenAPI 3.0 or 3.1 document, JSON or YAML", "%s is not JSON or YAML: %s", file, firstLine(err.Error()))
	}
	if head.Swagger != nil {
		return nil, importer.Errorf("convert it to OpenAPI 3 first (for example with swagger2openapi), then import that", "%s is a Swagger %v document; plumb imports OpenAPI 3.0 and 3.1", file, head.Swagger)
	}
	v := fmt.Sprint(head.OpenAPI)
	if head.OpenAPI == nil {
		return nil, importer.Errorf("give an OpenAPI 3.0 or 3.1 document: its first key is openapi: 3.x.y", "%s is not an OpenAPI document (no openapi: key)", file)
	}
	if !strings.HasPrefix(v, "3.0") && !strings.HasPrefix(v, "3.1") {
		return nil, importer.Errorf("plumb imports OpenAPI 3.0 and 3.1", "%s is OpenAPI %s", file, v)
	}
	loader := openapi3.NewLoader()
	loader.Context = context.Background()
	loader.IsExternalRefsAllowed = true
	loader.IncludeOrigin = true
	abs, _ := filepath.Abs(file)
	loader.ReadFromURIFunc = readLocal(filepath.Dir(abs))
	doc, err := loader.LoadFromDataWithPath(data, &url.URL{Path: filepath.ToSlash(abs)})
	if err != nil {
		return nil, importer.Errorf("fix the document (an OpenAPI validator shows where) and import again", "%s: %s", file, firstLine(err.Error()))
	}
	return doc, nil
}

// readLocal reads the files a spec's $refs name, under dir (the spec's
// directory) only: a spec comes from elsewhere, and a $ref to
// ../../.ssh/id_rsa or /etc/passwd would copy a local file into the draft.
// Remote $refs are refused; a file is read as plumb reads the files it
// loads (regular files only, never blocking), at most maxRefFile bytes.
func readLocal(dir string) func(*openapi3.Loader, *url.URL) ([]byte, error) {
	return func(_ *openapi3.Loader, u *url.URL) ([]byte, error) {
		if u.Scheme != "" && u.Scheme != "file" {
			return nil, fmt.Errorf("$ref %s is remote: plumb import reads only local files (download it beside the spec)", u.Redacted())
		}
		name := filepath.FromSlash(u.Path)
		if rel, err := filepath.Rel(dir, name); err != nil || !filepath.IsLocal(rel) {
			return nil, fmt.Errorf("$ref %s is outside the spec's directory %s: plumb import reads only files beside the spec or below it", u.Path, dir)
		}
		return steps.ReadFileMax(name, maxRefFile)
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

var methods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"}

// operations lists the spec's operations by path, then method.
func operations(doc *openapi3.T) []*op {
	var out []*op
	if doc.Paths == nil {
		return nil
	}
	paths := doc.Paths.Keys()
	sort.Strings(paths)
	for _, p := range paths {
		item := doc.Paths.Value(p)
		if item == nil {
			continue
		}
		for _, m := range methods {
			if o := item.GetOperation(m); o != nil {
				out = append(out, &op{method: m, path: p, item: item, o: o})
			}
		}
	}
	return out
}

// choose picks the operation opts name, or the only one.
func choose(file string, doc *openapi3.T, opts Options) (*op, error) {
	ops := operations(doc)
	if len(ops) == 0 {
		hint := "plumb imports operations you call (paths:)"
		if len(doc.Webhooks) > 0 {
			hint = "it describes only webhooks the partner sends; receive them with a webhook: section (docs/webhooks.md)"
		}
		return nil, importer.Errorf(hint, "%s has no operations", file)
	}
	switch {
	case opts.Operation != "":
		for _, o := range ops {
			if o.o.OperationID == opts.Operation {
				return o, nil
			}
		}
		for _, o := range ops {
			if strings.EqualFold(o.o.OperationID, opts.Operation) {
				return o, nil
			}
		}
		return nil, listError(ops, "choose one of the operations below", "%s has no operation %q", file, opts.Operation)
	case opts.Path != "":
		method, path, ok := strings.Cut(strings.TrimSpace(opts.Path), " ")
		if !ok {
			return nil, importer.Errorf("write it as --path 'POST /leads'", "--path %q has no method", opts.Path)
		}
		for _, o := range ops {
			if strings.EqualFold(o.method, method) && o.path == strings.TrimSpace(path) {
				return o, nil
			}
		}
		return nil, listError(ops, "choose one of the operations below", "%s has no operation %s", file, opts.Path)
	case len(ops) == 1:
		return ops[0], nil
	}
	return nil, listError(ops, "choose one with --operation ID or --path 'METHOD /path'", "%s has %d operations", file, len(ops))
}

// listError is an error whose detail lists the operations.
func listError(ops []*op, hint, format string, args ...any) error {
	e := &importer.Error{Msg: fmt.Sprintf(format, args...), Hint: hint}
	for _, o := range ops {
		id := o.o.OperationID
		if id == "" {
			id = "-"
		}
		e.Detail = append(e.Detail, fmt.Sprintf("%-28s %-7s %s  %s", id, o.method, o.path, oneLine(o.o.Summary, 60)))
	}
	return e
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		s = string(r[:n-1]) + "…"
	}
	return s
}
