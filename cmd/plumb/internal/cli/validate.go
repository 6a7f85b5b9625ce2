package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/testcase"
	"github.com/plumbhq/plumb/steps"
)

const validateDoc = `
Check each file as what it is, and report every problem of a file in one run:
  - an integration: its YAML, keys, templates, conditions, XPath expressions,
    regexes and includes;
  - a test file (NAME.test.yaml): its cases and the integration they test;
  - a settings file (settings.yaml, NAME.settings.yaml): a mapping of values;
    with --integration FILE, checked against that integration's settings:
    (required, types, unknown names).
Prints "FILE: ok" on stdout for a good file and every problem of a bad one on
stderr as file:line:col: message. With -v, also each step's effective retry
policy (timeouts, rules in the order they are matched, fallbacks).
Exits 2 if any file has a problem.`

func validateCmd(_ context.Context, s *stdio, args []string) int {
	fs := newFlagSet(s, "validate", "[-v] [--integration FILE] FILE...", validateDoc)
	verbose := fs.Bool("v", false, "print each step's effective retry policy")
	integration := fs.String("integration", "", "check settings files against this integration's settings:")
	files, err := parseArgs(s, fs, args)
	if err != nil {
		return exitForParse(err)
	}
	if len(files) == 0 {
		s.errorf("validate: no files given")
		fs.Usage()
		return ExitUsage
	}
	code := ExitOK
	for _, f := range files {
		var ok bool
		switch kindOf(f) {
		case "test":
			ok = validateTests(s, f)
		case "settings":
			ok = validateSettings(s, f, *integration)
		default:
			ok = validateIntegration(s, f, *verbose)
		}
		if !ok {
			code = ExitUsage
		}
	}
	return code
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

func validateIntegration(s *stdio, f string, verbose bool) bool {
	plan, err := engine.Load(f)
	if err != nil {
		fmt.Fprintln(s.stderr, err.Error())
		return false
	}
	fmt.Fprintf(s.stdout, "%s: ok\n", f)
	if verbose {
		for _, p := range plan.Policies() {
			fmt.Fprintf(s.stdout, "  step %s: timeout %s per try", p.Step, p.Timeout)
			if p.Deadline > 0 {
				fmt.Fprintf(s.stdout, ", deadline %s", p.Deadline)
			}
			if p.MaxAttempts > 0 {
				fmt.Fprintf(s.stdout, ", at most %s", pluralOf(p.MaxAttempts, "try", "tries"))
			}
			fmt.Fprintln(s.stdout)
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

func validateSettings(s *stdio, f, integration string) bool {
	sf, err := engine.ReadSettings(f)
	if err != nil {
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
	plan, err := engine.Load(integration)
	if err != nil {
		fmt.Fprintln(s.stderr, err.Error())
		return false
	}
	r, err := plan.Bind(engine.Config{Values: sf.Values, ValuePos: sf.Pos})
	if err != nil {
		fmt.Fprintln(s.stderr, cliHints(err.Error()))
		return false
	}
	r.Close(context.Background())
	fmt.Fprintf(s.stdout, "%s: ok (settings for %s)\n", f, integration)
	return true
}
