package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/importer"
	"github.com/plumbhq/plumb/internal/importer/curl"
	"github.com/plumbhq/plumb/internal/importer/har"
	"github.com/plumbhq/plumb/internal/importer/openapi"
	"github.com/plumbhq/plumb/internal/importer/postman"
	"github.com/plumbhq/plumb/internal/testcase"
	"github.com/plumbhq/plumb/steps"
)

const importDoc = `
Write a draft integration, with test cases, from what a partner publishes:

  plumb import openapi SPEC [--operation ID | --path 'POST /leads'] [--server URL]
  plumb import curl 'curl -X POST https://… -H … -d …'     (or - to read the line from stdin)
  plumb import postman COLLECTION.json [--request NAME | --folder NAME]
  plumb import har FILE [--entry N]... [--url REGEXP]

The file goes to stdout, or to -o FILE. Credentials found in the input are
never copied: they become secret settings. Lines marked "# TODO(import):"
are what the importer could not decide; check them, then
plumb validate FILE and plumb test FILE (the generated test cases pass as
written). docs/import.md says what each format maps to.`

// importFlags are the flags every import shares.
type importFlags struct {
	out, name string
	force     bool
}

// importFormats are what plumb import reads.
var importFormats = map[string]bool{"openapi": true, "curl": true, "postman": true, "har": true}

func importCmd(ctx context.Context, s *stdio, args []string) int {
	if len(args) > 0 && strings.HasPrefix(args[0], "-") {
		// flags before the format: plumb import -o x.yaml curl '…'
		for i, a := range args {
			if importFormats[a] && (i == 0 || args[i-1] != "-o" && args[i-1] != "--name") {
				args = append(append([]string{a}, args[:i:i]...), args[i+1:]...)
				break
			}
		}
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs := newFlagSet(s, "import", "openapi|curl|postman|har [flags] INPUT", importDoc)
		if _, err := parseArgs(s, fs, args); err != nil {
			return exitForParse(err)
		}
		s.errorf("import: say what to import: openapi, curl, postman or har")
		return ExitUsage
	}
	switch args[0] {
	case "openapi":
		return importOpenAPI(ctx, s, args[1:])
	case "curl":
		return importCurl(ctx, s, args[1:])
	case "postman":
		return importPostman(ctx, s, args[1:])
	case "har":
		return importHAR(ctx, s, args[1:])
	}
	s.errorf("import: unknown format %q (openapi, curl, postman or har)", args[0])
	return ExitUsage
}

func (f *importFlags) register(fsName string, s *stdio, args, doc string) *flag.FlagSet {
	fs := newFlagSet(s, fsName, args, doc)
	fs.StringVar(&f.out, "o", "", "write the integration to `FILE` instead of stdout")
	fs.StringVar(&f.name, "name", "", "the integration's `name` (default: from the input)")
	fs.BoolVar(&f.force, "force", false, "overwrite the -o file if it exists")
	return fs
}

// importInput reads the file an import names ("-": stdin), bounded.
func importInput(s *stdio, what, name string) ([]byte, error) {
	if name != "-" {
		b, err := steps.ReadFileMax(name, maxImportInput) // a regular file, never blocking
		var tl *steps.TooLargeError
		if errors.As(err, &tl) {
			return nil, importer.Errorf("import a smaller "+what, "%s is larger than %d MiB", name, maxImportInput>>20)
		}
		return b, err
	}
	b, err := io.ReadAll(io.LimitReader(s.stdin, maxImportInput+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxImportInput {
		return nil, importer.Errorf("import a smaller "+what, "%s is larger than %d MiB", name, maxImportInput>>20)
	}
	return b, nil
}

// readDataFile reads a file a curl line names (-d @FILE): as plumb reads
// the files it imports, at most maxImportInput bytes.
func readDataFile(name string) ([]byte, error) { return steps.ReadFileMax(name, maxImportInput) }

// maxImportInput bounds the files plumb import reads.
const maxImportInput = 64 << 20

func importCurl(_ context.Context, s *stdio, args []string) int {
	var f importFlags
	fs := f.register("import curl", s, "[-o FILE] [--name NAME] 'curl …' | -", `
Turn a curl command line into an integration: method, URL, headers, body
(JSON and form fields become lead fields), credentials (-u, Authorization,
API-key headers and query parameters, secret-looking body fields) moved into
secret settings, and one test case checking the request is the line's.
Quote the whole line; - reads it from stdin. $VARIABLES in the line become
settings read from those environment variables.`)
	pos, err := parseArgs(s, fs, args)
	if err != nil {
		return exitForParse(err)
	}
	if len(pos) == 0 {
		s.errorf("import curl: give the curl line in quotes, or - to read it from stdin")
		return ExitUsage
	}
	line := strings.Join(pos, " ")
	if line == "-" {
		b, err := importInput(s, "curl line", "-")
		if err != nil {
			s.errorf("import curl: %v", err)
			return ExitUsage
		}
		line = string(b)
	}
	in, err := curl.Import(line, curl.Options{Name: f.name, ReadFile: readDataFile})
	if err != nil {
		importError(s, "curl", err)
		return ExitUsage
	}
	return writeImport(s, &f, in)
}

func importOpenAPI(_ context.Context, s *stdio, args []string) int {
	var f importFlags
	fs := f.register("import openapi", s, "[-o FILE] [--operation ID | --path 'METHOD /path'] [--server URL] SPEC", `
Turn one operation of an OpenAPI 3.0 or 3.1 document (JSON or YAML, $refs
resolved) into an integration: the request templated from its parameters
and body schema (lead fields named after the properties; required ones read
as they are, optional ones with the spec's default, null, or commented out),
auth from its security schemes as secret settings, captures from the
success answer's schema, rules for the documented statuses, and a test case
per documented example. A spec with several operations lists them: choose
one with --operation or --path.`)
	op := fs.String("operation", "", "the operation to import, by its operationId")
	path := fs.String("path", "", "the operation to import, as 'METHOD /path' (the spec's path template)")
	server := fs.String("server", "", "the base URL (default: the spec's first server)")
	pos, err := parseArgs(s, fs, args)
	if err != nil {
		return exitForParse(err)
	}
	if len(pos) != 1 {
		s.errorf("import openapi: give one SPEC file (JSON or YAML)")
		return ExitUsage
	}
	b, err := importInput(s, "spec", pos[0])
	if err != nil {
		s.errorf("import openapi: %v", err)
		return ExitUsage
	}
	in, err := openapi.Import(pos[0], b, openapi.Options{Operation: *op, Path: *path, Server: *server, Name: f.name})
	if err != nil {
		importError(s, "openapi", err)
		return ExitUsage
	}
	return writeImport(s, &f, in)
}

func importPostman(_ context.Context, s *stdio, args []string) int {
	var f importFlags
	fs := f.register("import postman", s, "[-o FILE] [--request NAME | --folder NAME] COLLECTION.json", `
Turn a request of a Postman collection (v2.1), or a folder's requests as a
flow of steps, into an integration: collection variables become settings
(secret ones, and credentials, without their value), other {{variables}} in
paths, queries and bodies lead fields; auth blocks map onto plumb auth;
saved example answers become test cases. A collection with several
requests lists them: choose with --request or --folder.`)
	req := fs.String("request", "", "the request to import, by `name` (or Folder/Name)")
	folder := fs.String("folder", "", "import the requests of this folder as one flow")
	pos, err := parseArgs(s, fs, args)
	if err != nil {
		return exitForParse(err)
	}
	if len(pos) != 1 {
		s.errorf("import postman: give one COLLECTION.json file")
		return ExitUsage
	}
	b, err := importInput(s, "collection", pos[0])
	if err != nil {
		s.errorf("import postman: %v", err)
		return ExitUsage
	}
	in, err := postman.Import(pos[0], b, postman.Options{Request: *req, Folder: *folder, Name: f.name})
	if err != nil {
		importError(s, "postman", err)
		return ExitUsage
	}
	return writeImport(s, &f, in)
}

// entryList is a repeatable --entry flag (N, or N,M,…).
type entryList []int

func (e *entryList) String() string { return fmt.Sprint([]int(*e)) }

func (e *entryList) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 {
			return fmt.Errorf("--entry %q: give entry numbers from 1", v)
		}
		*e = append(*e, n)
	}
	return nil
}

func importHAR(_ context.Context, s *stdio, args []string) int {
	var f importFlags
	fs := f.register("import har", s, "[-o FILE] [--entry N]... [--url REGEXP] FILE.har", `
Turn entries of a HAR file (saved from a browser's network panel) into an
integration: one step per picked entry, in recorded order, with browser
noise left out and credentials moved into secret settings (a token an
earlier entry's answer returned is read from that step's capture). The
recorded answers become the test case. A file with several API requests
lists them: pick with --entry (repeatable) or --url.`)
	var entries entryList
	fs.Var(&entries, "entry", "import entry `N` (1-based; repeat it, or N,M, for a flow)")
	urlRE := fs.String("url", "", "import the entries whose URL matches `REGEXP`")
	pos, err := parseArgs(s, fs, args)
	if err != nil {
		return exitForParse(err)
	}
	if len(pos) != 1 {
		s.errorf("import har: give one HAR file")
		return ExitUsage
	}
	b, err := importInput(s, "HAR file", pos[0])
	if err != nil {
		s.errorf("import har: %v", err)
		return ExitUsage
	}
	in, err := har.Import(pos[0], b, har.Options{Entries: entries, URL: *urlRE, Name: f.name})
	if err != nil {
		importError(s, "har", err)
		return ExitUsage
	}
	return writeImport(s, &f, in)
}

// importError prints an import error: one line, and the choices it lists.
func importError(s *stdio, format string, err error) {
	s.errorf("import %s: %v", format, err)
	var ie *importer.Error
	if errors.As(err, &ie) {
		for _, d := range ie.Detail {
			fmt.Fprintln(s.stderr, "  "+d)
		}
	}
}

// writeImport checks the draft loads, and writes it to -o or stdout.
func writeImport(s *stdio, f *importFlags, in *importer.Integration) int {
	if f.name != "" {
		in.Name = f.name
	}
	out := in.YAML()
	file := f.out
	if file == "" {
		file = importer.Kebab(in.Name) + ".yaml"
	}
	if _, err := engine.Parse(file, out); err != nil {
		s.errorf("import: the generated file does not load (a bug in plumb import; please report it with the input):\n%v", err)
		return ExitLeadError
	}
	if f.out == "" {
		s.stdout.Write(out)
		return ExitOK
	}
	if _, err := os.Stat(f.out); err == nil && !f.force {
		s.errorf("import: %s exists (pass --force to overwrite it)", f.out)
		return ExitUsage
	}
	if err := os.WriteFile(f.out, out, 0o644); err != nil {
		s.errorf("import: %v", err)
		return ExitUsage
	}
	cases := len(in.Tests)
	if in.NeedsLogin() {
		cases = 0
	} else if _, err := testcase.Load(f.out); err != nil {
		s.errorf("import: the generated test cases do not load (a bug in plumb import; please report it):\n%v", err)
		return ExitLeadError
	}
	todos := strings.Count(string(out), "TODO(import):")
	fmt.Fprintf(s.stderr, "plumb: wrote %s: integration %s, %d step(s), %d test case(s)", f.out, in.Name, len(in.Steps), cases)
	if todos > 0 {
		fmt.Fprintf(s.stderr, "; %d TODO(import) comment(s) to check", todos)
	}
	fmt.Fprintln(s.stderr)
	for _, st := range in.Settings {
		if st.Secret {
			fmt.Fprintf(s.stderr, "plumb: secret setting %s: give it in a settings file, with --set, or in $%s\n", st.Name, st.Env)
		}
	}
	fmt.Fprintf(s.stderr, "Next:\n  plumb validate %s\n  plumb test %s\n", f.out, f.out)
	return ExitOK
}
