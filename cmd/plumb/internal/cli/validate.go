package cli

import (
	"context"
	"fmt"

	"github.com/plumbhq/plumb/engine"
)

const validateDoc = `
Load and compile each integration file: its YAML, keys, templates,
conditions, XPath expressions and regexes. Prints "FILE: ok" on stdout for a
good file and every problem of a bad one on stderr as file:line:col: message.
Exits 2 if any file has a problem.`

func validateCmd(_ context.Context, s *stdio, args []string) int {
	fs := newFlagSet(s, "validate", "FILE...", validateDoc)
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
		if _, err := engine.Load(f); err != nil {
			fmt.Fprintln(s.stderr, err.Error())
			code = ExitUsage
			continue
		}
		fmt.Fprintf(s.stdout, "%s: ok\n", f)
	}
	return code
}
