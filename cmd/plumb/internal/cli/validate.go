package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/serve"
	"github.com/plumbhq/plumb/internal/testcase"
	"github.com/plumbhq/plumb/steps"
)

const validateDoc = `
Check each file as what it is, and report every problem of a file in one run:
  - an integration: its YAML, keys, templates, conditions, XPath expressions,
    regexes, includes and inline tests: (as plumb test reads them);
  - a test file (NAME.test.yaml): its cases and the integration they test;
  - a settings file (settings.yaml, NAME.settings.yaml): a mapping of values;
    with --integration FILE, checked against that integration's settings:
    (required, types, unknown names).
A directory is checked with everything below it (directories named
testdata or starting with . or _ are skipped): its integration files (YAML
with version: or steps:), test files and settings files; a settings file
beside an integration (settings.yaml beside integration.yaml,
X.settings.yaml beside X.yaml, as plumb serve pairs them) is checked
with it: the integration is ok only if it also binds with those settings,
and the pair's problems are printed once, with the integration. Other YAML (fragments an integration includes) is checked
through the integrations that include it.
Prints "FILE: ok" on stdout for a good file and every problem of a bad one on
stderr as file:line:col: message. With -v, also the source's and each step's
effective policy (timeouts, rules in the order they are matched, fallbacks;
for the source its pages and rate).
Exits 2 if any file has a problem.`

func validateCmd(_ context.Context, s *stdio, args []string) int {
	fs := newFlagSet(s, "validate", "[-v] [--integration FILE] FILE|DIR...", validateDoc)
	verbose := fs.Bool("v", false, "print the source's and each step's effective retry policy")
	integration := fs.String("integration", "", "check settings files against this integration's settings:")
	paths, err := parseArgs(s, fs, args)
	if err != nil {
		return exitForParse(err)
	}
	if len(paths) == 0 {
		return usageError(s, "validate")("no files given")
	}
	code := ExitOK
	pairs := pairChecks{}
	for _, p := range paths {
		files, against, err := validateTargets(p, *integration)
		beside := map[string]string{} // integration → the settings file beside it, in a directory
		for f, in := range against {
			if in != "" && *integration == "" {
				beside[in] = f
			}
		}
		if err == nil && len(files) == 0 {
			err = fmt.Errorf("%s: no integration, test or settings files in it", p)
		}
		if err != nil {
			s.errorf("validate: %v", err)
			code = ExitUsage
			continue
		}
		for _, f := range files {
			var ok bool
			switch kindOf(f) {
			case "test":
				ok = validateTests(s, f)
			case "settings":
				ok = validateSettings(s, f, against[f], beside[against[f]] == f, pairs)
			default:
				ok = validateIntegration(s, f, beside[f], *verbose, pairs)
			}
			if !ok {
				code = ExitUsage
			}
		}
	}
	return code
}

// validateTargets lists the files path names: itself, or for a directory
// every integration, test and settings file below it, in path order. For
// each settings file it gives the integration to check it against:
// integration when given, else (in a directory) the integration beside
// it, if any.
func validateTargets(path, integration string) ([]string, map[string]string, error) {
	against := map[string]string{}
	if st, err := os.Stat(path); err != nil || !st.IsDir() {
		against[path] = integration
		return []string{path}, against, nil
	}
	var files []string
	integrations := map[string]bool{}
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != path && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		ext := strings.ToLower(filepath.Ext(name))
		if (ext != ".yaml" && ext != ".yml") || !d.Type().IsRegular() {
			return nil
		}
		switch kindOf(p) {
		case "test", "settings":
			files = append(files, p)
		default:
			if looksLikeIntegration(p) {
				files = append(files, p)
				integrations[p] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for _, f := range files {
		if kindOf(f) != "settings" {
			continue
		}
		against[f] = integration
		if integration != "" {
			continue
		}
		for in := range integrations {
			if serve.SettingsFile(in) == f {
				against[f] = in
			}
		}
	}
	return files, against, nil
}

// looksLikeIntegration tells an integration file from a fragment it
// includes: a mapping with version: or steps:. A file that does not read
// as a YAML mapping is taken as an integration, so its problem is shown.
func looksLikeIntegration(path string) bool {
	src, err := steps.ReadFile(path)
	if err != nil {
		return true
	}
	var top map[string]yaml.Node
	if yaml.Unmarshal(src, &top) != nil {
		return true
	}
	_, v := top["version"]
	_, st := top["steps"]
	return v || st || len(top) == 0
}

// kindOf tells integration, test and settings files apart: by name, and
// for other names by content (a mapping without version: and steps: that
// is not a fragment someone includes is taken as settings only by name).
func kindOf(file string) string {
	base := strings.ToLower(filepath.Base(file))
	switch {
	case strings.HasSuffix(base, ".test.yaml") || strings.HasSuffix(base, ".test.yml"):
		return "test"
	case base == "settings.yaml" || base == "settings.yml" || strings.HasSuffix(base, ".settings.yaml") ||
		strings.HasSuffix(base, ".settings.yml") || strings.HasPrefix(base, "settings."):
		return "settings"
	}
	return "integration"
}

// pairChecks remembers what binding an integration with the settings file
// beside it said, so the pair's problems are printed once, with the
// integration, and the settings file's line refers to them.
type pairChecks map[[2]string]*pairCheck

type pairCheck struct {
	plan    *engine.Plan
	loadErr error  // the integration does not load
	readErr error  // the settings file does not read
	bindErr string // they do not bind together (hints added)
}

// check loads integration and binds it with the settings of settingsFile
// ("": none), once per pair.
func (pc pairChecks) check(integration, settingsFile string) *pairCheck {
	key := [2]string{integration, settingsFile}
	if c, ok := pc[key]; ok {
		return c
	}
	c := &pairCheck{}
	pc[key] = c
	if c.plan, c.loadErr = engine.Load(integration); c.loadErr == nil {
		c.loadErr = testcase.CheckInline(integration, c.plan) // its tests: as plumb test reads them
	}
	if c.loadErr != nil || settingsFile == "" {
		return c
	}
	sf, err := engine.ReadSettings(settingsFile)
	if err != nil {
		c.readErr = err
		return c
	}
	// a token store only so that an authorization_code section binds: no
	// token is read, nothing is sent
	r, err := c.plan.Bind(engine.Config{Values: sf.Values, ValuePos: sf.Pos, Tokens: &auth.MemoryStore{}})
	if err != nil {
		c.bindErr = cliHints(err.Error())
		return c
	}
	r.Close(context.Background())
	return c
}

// validateIntegration checks f, and in a directory the settings file
// beside it with it (settingsFile): f is ok only if it loads and, with
// those settings, binds (auth, settings' types and required values).
func validateIntegration(s *stdio, f, settingsFile string, verbose bool, pairs pairChecks) bool {
	c := pairs.check(f, settingsFile)
	if c.loadErr != nil {
		fmt.Fprintln(s.stderr, c.loadErr.Error())
		return false
	}
	if c.bindErr != "" {
		fmt.Fprintln(s.stderr, c.bindErr)
		fmt.Fprintf(s.stderr, "%s: does not run with %s (the problems above)\n", f, settingsFile)
		return false
	}
	plan := c.plan
	fmt.Fprintf(s.stdout, "%s: ok\n", f)
	if verbose {
		for _, p := range plan.Policies() {
			what := "step " + p.Step
			if p.Source {
				what = "source"
			}
			fmt.Fprintf(s.stdout, "  %s: timeout %s per try", what, p.Timeout)
			if p.Deadline > 0 {
				fmt.Fprintf(s.stdout, ", deadline %s", p.Deadline)
			}
			if p.MaxAttempts > 0 {
				fmt.Fprintf(s.stdout, ", at most %s", pluralOf(p.MaxAttempts, "try", "tries"))
			}
			fmt.Fprintln(s.stdout)
			if p.Pages != "" {
				fmt.Fprintf(s.stdout, "    %s\n", p.Pages)
			}
			for _, r := range p.Rules {
				fmt.Fprintf(s.stdout, "    %s\n", r)
			}
			if len(p.Fallback) > 0 {
				fmt.Fprintf(s.stdout, "    fallback: %s\n", strings.Join(p.Fallback, " → "))
			}
		}
	}
	return true
}

func validateTests(s *stdio, f string) bool {
	if _, err := testcase.Load(f); err != nil {
		fmt.Fprintln(s.stderr, err.Error())
		return false
	}
	fmt.Fprintf(s.stdout, "%s: ok (test cases)\n", f)
	return true
}

// validateSettings checks settings file f, and against integration when
// one is given; paired says the integration is validated with f (in a
// directory), which then prints the pair's problems.
func validateSettings(s *stdio, f, integration string, paired bool, pairs pairChecks) bool {
	if _, err := engine.ReadSettings(f); err != nil {
		var list steps.ErrorList
		if errors.As(err, &list) {
			fmt.Fprintln(s.stderr, err.Error())
		} else {
			s.errorf("validate: %v", err)
		}
		return false
	}
	if integration == "" {
		fmt.Fprintf(s.stdout, "%s: ok (settings; add --integration FILE to check them against an integration)\n", f)
		return true
	}
	c := pairs.check(integration, f)
	switch {
	case c.loadErr != nil && paired:
		fmt.Fprintf(s.stderr, "%s: not checked: %s does not load\n", f, integration)
		return false
	case c.loadErr != nil:
		fmt.Fprintln(s.stderr, c.loadErr.Error())
		return false
	case c.bindErr != "" && paired:
		fmt.Fprintf(s.stderr, "%s: does not fit %s (the problems listed with it)\n", f, integration)
		return false
	case c.bindErr != "":
		fmt.Fprintln(s.stderr, c.bindErr)
		return false
	}
	fmt.Fprintf(s.stdout, "%s: ok (settings for %s)\n", f, integration)
	return true
}
