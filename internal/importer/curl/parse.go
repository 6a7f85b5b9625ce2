// Package curl imports a curl command line — as partners print them in
// their docs — into a draft plumb integration: method, URL, headers, body,
// credentials (moved into secret settings), and one test case that checks
// the generated request is the one the line sends. The words are split by
// mvdan.cc/sh's shell parser, so quotes, $'…', escapes and backslash-newline
// continuations read as a shell reads them; $VARIABLES become settings read
// from that environment variable, and nothing is ever run.
package curl

import (
	"errors"
	"regexp"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"

	"github.com/plumbhq/plumb/internal/importer"
)

// maxLine bounds the curl line read.
const maxLine = 1 << 20

var (
	// trailing blanks after a continuation backslash (copied from web pages)
	looseContinuation = regexp.MustCompile(`\\[ \t]+(\r?\n)`)
	// Windows cmd's ^ continuation
	caretContinuation = regexp.MustCompile(`\^(\r?\n)`)
	// a shell prompt before the command
	prompt = regexp.MustCompile(`(?m)^\s*[$>%#]\s+`)
)

// words splits a curl line into its words, with $VARIABLES marked as
// references. It returns the words after "curl" (the line may leave the
// word curl out).
func words(line string) ([]string, map[string]*importer.Var, error) {
	if len(line) > maxLine {
		return nil, nil, importer.Errorf("import one request at a time", "the curl line is longer than %d bytes", maxLine)
	}
	if strings.ContainsRune(line, 0) {
		return nil, nil, importer.Errorf("paste the line as text", "the curl line holds a NUL byte")
	}
	if err := importer.CheckText("the curl line", line); err != nil {
		return nil, nil, err
	}
	line = strings.TrimSpace(line)
	line = prompt.ReplaceAllString(line, "")
	line = looseContinuation.ReplaceAllString(line, "\\$1")
	line = caretContinuation.ReplaceAllString(line, "\\$1")
	line = strings.ReplaceAll(line, "\\\r\n", "\\\n")
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(line), "")
	if err != nil {
		return nil, nil, importer.Errorf("check its quotes: each ' and \" must be closed", "the curl line cannot be read as a shell command: %s", shellError(err))
	}
	call := findCurl(f)
	if call == nil {
		return nil, nil, importer.Errorf("give the command as the partner's docs print it: curl -X POST https://… -H … -d …", "no curl command found in the line")
	}
	vars := map[string]*importer.Var{}
	cfg := &expand.Config{Env: expand.FuncEnviron(func(name string) string {
		vars[name] = &importer.Var{Env: name}
		return importer.Ref(name)
	})}
	var out []string
	for i, w := range call.Args {
		s, err := expand.Literal(cfg, w)
		if err != nil {
			var cmd expand.UnexpectedCommandError
			if errors.As(err, &cmd) {
				return nil, nil, importer.Errorf("replace $(…) with its value or a $VARIABLE", "the curl line runs a command (word %d), which plumb does not run", i+1)
			}
			return nil, nil, importer.Errorf("replace it with plain text or a $VARIABLE", "word %d of the curl line cannot be read: %v", i+1, err)
		}
		if i == 0 && isCurl(s) {
			continue
		}
		out = append(out, s)
	}
	return out, vars, nil
}

func shellError(err error) string {
	var pe syntax.ParseError
	if errors.As(err, &pe) {
		return pe.Text
	}
	return err.Error()
}

func isCurl(s string) bool {
	s = strings.ToLower(s)
	return s == "curl" || s == "curl.exe" || strings.HasSuffix(s, "/curl")
}

// findCurl returns the first curl command of the line (in a pipeline or a
// list too), or the line's first command when it starts with an option
// or a URL (the word curl left out).
func findCurl(f *syntax.File) *syntax.CallExpr {
	var found, first *syntax.CallExpr
	syntax.Walk(f, func(n syntax.Node) bool {
		c, ok := n.(*syntax.CallExpr)
		if !ok || found != nil || len(c.Args) == 0 {
			return found == nil
		}
		if first == nil {
			first = c
		}
		if lit := c.Args[0].Lit(); isCurl(lit) {
			found = c
		}
		return found == nil
	})
	if found == nil && first != nil {
		if lit := first.Args[0].Lit(); strings.HasPrefix(lit, "-") || strings.HasPrefix(lit, "http") {
			found = first
		}
	}
	return found
}
