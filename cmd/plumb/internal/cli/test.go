package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/testcase"
)

const testDoc = `
Run the stored test cases of integrations: the tests: list of an
integration file, or a sibling NAME.test.yaml file. PATH is an integration
file, a test file, or a directory: its cases and those of every directory
below it (directories named testdata or starting with . or _ are skipped;
DIR/... says the same). Default: the current directory.

Each case runs the whole integration for its lead through the real engine
against a loopback server that answers with the case's recorded responses
(every request goes there, whatever its host), so templates, escaping,
auth, parsing, retries and outcomes run for real; backoff waits take no
time. Then its expectations are checked: outcome, reason, captures, the
final lead, the requests sent, attempts.

Prints PASS or FAIL per case, with one "path: want W, got G" line per
mismatch and a diff for bodies and leads, then "N passed, M failed".

Exit status: 0 every case passed, 1 some case failed, 2 bad usage or a
test or integration file with problems (reported as file:line:col).`

func testCmd(ctx context.Context, s *stdio, args []string) int {
	fs := newFlagSet(s, "test", "[flags] [PATH...]", testDoc)
	junit := fs.String("junit", "", "also write a JUnit XML report to `FILE`")
	asJSON := fs.Bool("json", false, "print the results as JSON on stdout (the summary goes to stderr)")
	run := fs.String("run", "", "run only the cases whose name matches the `regexp`")
	var verbose verbosity
	verbose.register(fs)
	paths, err := parseArgs(s, fs, args)
	if err != nil {
		return exitForParse(err)
	}
	var filter *regexp.Regexp
	if *run != "" {
		if filter, err = regexp.Compile(*run); err != nil {
			s.errorf("test: --run: %v", err)
			return ExitUsage
		}
	}
	if len(paths) == 0 {
		paths = []string{"."}
	}
	for i, p := range paths {
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			paths[i] = filepath.Join(p, "...") // a directory is tested with everything below it
		}
	}

	start := time.Now()
	report := &testcase.Report{}
	loaded, loadErr := testcase.Load(paths...)
	if loadErr != nil {
		fmt.Fprintln(s.stderr, loadErr.Error())
		report.AddError(loadErr)
	}
	if len(loaded.Suites) == 0 && loadErr == nil {
		s.errorf("test: no test cases found in %s", strings.Join(paths, " "))
		return ExitUsage
	}

	opts := testcase.Options{Logger: verbose.logger(s.stderr)}
	if verbose >= 2 {
		p := &exchangePrinter{w: s.stderr}
		opts.Observer = func(_ context.Context, c *testcase.Case, ex *engine.Exchange) { p.print(ex, c.Name) }
	}
	text := !*asJSON
	interrupted := false
	for _, suite := range loaded.Suites {
		if text {
			fmt.Fprintf(s.stdout, "=== %s (%s)\n", suite.File, suite.In.Name.Value)
		}
		var results []*testcase.CaseResult
		for _, c := range suite.Cases {
			if filter != nil && !filter.MatchString(c.Name) {
				continue
			}
			if ctx.Err() != nil {
				interrupted = true
				break
			}
			r := suite.RunCase(ctx, c, opts)
			results = append(results, r)
			if text {
				fmt.Fprint(s.stdout, testcase.FormatCase(r))
			}
		}
		report.Add(suite, results)
	}
	if text {
		for _, f := range loaded.Untested {
			fmt.Fprintf(s.stdout, "?   %s: no test cases\n", f)
		}
	}
	report.Duration = engine.Duration(time.Since(start))

	if *junit != "" {
		f, err := os.Create(*junit)
		if err == nil {
			err = report.WriteJUnit(f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			s.errorf("test: --junit: %v", err)
			return ExitUsage
		}
	}
	summaryTo := s.stdout
	if *asJSON {
		if err := report.WriteJSON(s.stdout); err != nil {
			s.errorf("test: writing JSON: %v", err)
			return ExitUsage
		}
		summaryTo = s.stderr
	}
	fmt.Fprintln(summaryTo, report.Summary())
	switch {
	case interrupted:
		s.errorf("test: interrupted")
		return ExitInterrupt
	case loadErr != nil:
		return ExitUsage
	case report.Failed > 0:
		return ExitLeadError
	}
	return ExitOK
}
