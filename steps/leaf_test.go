package steps

import (
	"bufio"
	"fmt"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// modulePath is the module this package belongs to, read from go.mod.
func modulePath(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	t.Fatal("go.mod names no module")
	return ""
}

// TestModelIsALeaf fails when a file of the package (tests aside, every
// build tag included) imports another package of the module: the file
// model is the vocabulary the rest of plumb is built on, so it depends on
// none of it.
func TestModelIsALeaf(t *testing.T) {
	mod := modulePath(t)
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			if path == mod || strings.HasPrefix(path, mod+"/") {
				t.Errorf("%s: imports %s; package steps imports nothing of plumb's (build runtime values in the engine)", fset.Position(imp.Pos()), path)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no source files found")
	}
}

// TestNoYAMLInTheAPI fails when an exported name of the package mentions
// a YAML package: the type of an exported var or const, the signature of
// an exported function or of an exported method of an exported type, an
// exported field of an exported struct (embedded ones included), the
// methods of an exported interface, or the definition of another exported
// type. The file model is read through Value; how it is parsed is its own
// business.
func TestNoYAMLInTheAPI(t *testing.T) {
	// the package's API as compiled: its export data, which go list
	// builds (or finds in the build cache) with its dependencies'
	out, err := exec.Command("go", "list", "-export", "-deps", "-f", "{{.ImportPath}}={{.Export}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	exports := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, file, _ := strings.Cut(line, "=")
		exports[path] = file
	}
	imp := importer.ForCompiler(token.NewFileSet(), "gc", func(path string) (io.ReadCloser, error) {
		if exports[path] == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(exports[path])
	})
	pkg, err := imp.Import(modulePath(t) + "/steps")
	if err != nil {
		t.Fatal(err)
	}
	if pkg.Scope().Lookup("Integration") == nil {
		t.Fatal("the export data holds no Integration")
	}
	for _, p := range yamlInAPI(pkg) {
		t.Errorf("%s mentions %s: keep YAML out of the API (offer it through Value)", p.name, p.pkg)
	}
}

type apiMention struct{ name, pkg string }

// yamlInAPI lists the exported names of pkg whose types mention a package
// with yaml in its path.
func yamlInAPI(pkg *types.Package) []apiMention {
	var out []apiMention
	check := func(name string, typ types.Type) {
		types.TypeString(typ, func(p *types.Package) string {
			if strings.Contains(strings.ToLower(p.Path()), "yaml") {
				out = append(out, apiMention{name, p.Path()})
			}
			return p.Name()
		})
	}
	scope := pkg.Scope()
	for _, name := range scope.Names() {
		obj := scope.Lookup(name)
		if !obj.Exported() {
			continue
		}
		tn, ok := obj.(*types.TypeName)
		if !ok {
			check(name, obj.Type()) // funcs, vars, consts
			continue
		}
		switch u := tn.Type().Underlying().(type) {
		case *types.Struct:
			for i := range u.NumFields() {
				if f := u.Field(i); f.Exported() {
					check(name+"."+f.Name(), f.Type())
				}
			}
		case *types.Interface:
			for i := range u.NumMethods() {
				check(name+"."+u.Method(i).Name(), u.Method(i).Type())
			}
		default:
			check(name, u)
		}
		if named, ok := tn.Type().(*types.Named); ok {
			for i := range named.NumMethods() {
				if m := named.Method(i); m.Exported() {
					check(name+"."+m.Name(), m.Type())
				}
			}
		}
	}
	return out
}
