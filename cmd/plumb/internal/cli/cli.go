// Package cli implements the plumb command line: run, try, test, validate,
// new, schema, sandbox, version and help. Main is the whole program minus os.Exit, so tests can
// drive it with real argv, stdin, stdout, stderr and environment.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// Exit codes of plumb.
const (
	ExitOK        = 0   // every lead ran and none ended in error
	ExitLeadError = 1   // some lead ended in error (including malformed input rows)
	ExitUsage     = 2   // bad usage, config or input file
	ExitInterrupt = 130 // interrupted by SIGINT or SIGTERM; leads already read were still reported
)

// env looks up an environment variable.
type env func(string) (string, bool)

// command is one plumb subcommand.
type command struct {
	name, args, summary string
	run                 func(ctx context.Context, io *stdio, args []string) int
}

// stdio is where a command reads and writes.
type stdio struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	env            env
	// flagSets, when set, collects every flag set a command makes (for
	// shell completion, which runs each command with -h).
	flagSets *[]*flag.FlagSet
}

func (s *stdio) errorf(format string, args ...any) {
	fmt.Fprintf(s.stderr, "plumb: "+format+"\n", args...)
}

func commands() []command {
	return []command{
		{"run", "[flags] INTEGRATION.yaml", "run an integration for one lead or a file of leads", runCmd},
		{"sync", "[flags] INTEGRATION.yaml", "pull a source's records page by page through the steps; state kept between syncs", syncCmd},
		{"try", "[flags] INTEGRATION.yaml", "send one step's request for a lead and show request, response, timings, captures", tryCmd},
		{"test", "[flags] [PATH...]", "run stored test cases against recorded responses; report pass/fail with diffs", testCmd},
		{"auth", "login|status|logout [flags] INTEGRATION.yaml", "log in to an OAuth2 authorization_code integration, show or delete its token", authCmd},
		{"bench", "[flags] INTEGRATION.yaml", "run N synthetic leads with C workers; report leads/s, latency percentiles, allocs/lead, RSS", benchCmd},
		{"validate", "FILE...", "check integration files and report every problem with file:line:col", validateCmd},
		{"new", "[--dir DIR] [--webhook] NAME", "scaffold an integration directory with tests, a lead and settings", newCmd},
		{"import", "openapi|curl|postman|har [flags] INPUT", "write a draft integration with test cases from an OpenAPI spec, a curl line, a Postman collection or a HAR file", importCmd},
		{"schema", "[--tests]", "print the JSON Schema of integration files (for editors)", schemaCmd},
		{"serve", "--dir DIR [flags]", "serve a directory of integrations over HTTP with a durable queue, metrics and health checks", serveCmd},
		{"webhook", "sign|replay [flags] ...", "print the signature headers of a webhook body; replay dead-lettered webhook events", webhookCmd},
		{"webhooks", "sign|replay [flags] ...", "the same as webhook", webhookCmd},
		{"sandbox", "[--addr HOST:PORT]", "serve the examples' fake partner API in the foreground", sandboxCmd},
		{"version", "", "print the plumb version", versionCmd},
		{"completion", "bash|zsh|fish", "print a shell completion script", completionCmd},
		{"help", "[COMMAND]", "show help for plumb or a command", nil},
	}
}

// Main runs plumb with args (without the program name) and returns the exit
// code. getenv looks up environment variables (os.LookupEnv in production);
// settings declared with `env:` are read through it. An interrupt (SIGINT,
// or SIGTERM as a service manager sends it) stops reading leads, lets the
// leads in flight finish, reports them, ends the output validly and exits
// ExitInterrupt (130) for either signal.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) (string, bool)) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if getenv == nil {
		getenv = func(string) (string, bool) { return "", false }
	}
	s := &stdio{stdin: stdin, stdout: stdout, stderr: stderr, env: getenv}
	if len(args) == 0 {
		usage(stderr)
		return ExitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help":
		usage(stdout)
		return ExitOK
	case "help":
		return helpCmd(s, rest)
	case "--version", "-version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name == name && c.run != nil {
			return c.run(ctx, s, rest)
		}
	}
	return unknownCommand(s, name)
}

func usage(w io.Writer) {
	fmt.Fprint(w, "plumb runs declarative HTTP integrations against leads.\n\nUsage:\n  plumb COMMAND [ARGS]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun `plumb help COMMAND` or `plumb COMMAND -h` for a command's flags.\n")
}

func helpCmd(s *stdio, args []string) int {
	if len(args) == 0 {
		usage(s.stdout)
		return ExitOK
	}
	if args[0] == "help" {
		usage(s.stdout)
		return ExitOK
	}
	for _, c := range commands() {
		if c.name == args[0] && c.run != nil {
			return c.run(context.Background(), s, []string{"-h"})
		}
	}
	return unknownCommand(s, args[0])
}

// newFlagSet returns a flag set that reports parse errors on stderr and
// leaves usage printing to parseArgs.
func newFlagSet(s *stdio, name, args, doc string) *flag.FlagSet {
	fs := flag.NewFlagSet("plumb "+name, flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: plumb %s %s\n\n%s\n", name, args, strings.TrimSpace(doc))
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprint(w, "\nFlags:\n")
			printFlags(w, fs)
		}
	}
	if s.flagSets != nil {
		*s.flagSets = append(*s.flagSets, fs)
	}
	return fs
}

// errHelp is returned by parseArgs after -h printed the usage.
var errHelp = flag.ErrHelp

// parseArgs parses flags that may appear before, between or after
// positional arguments (`plumb run x.yaml --lead l.json`); "--" ends the
// flags. On -h it prints usage to stdout and returns errHelp; on a bad flag
// it prints the problem in one line (an unknown flag with the nearest
// one) and where the usage is on stderr, and returns the error.
func parseArgs(s *stdio, fs *flag.FlagSet, args []string) ([]string, error) {
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard) // package flag's own messages: parseArgs writes its own
	defer func() { fs.Usage = usage; fs.SetOutput(out) }()
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(s.stdout)
			usage()
			return nil, errHelp
		}
		if err != nil {
			cmd := strings.TrimPrefix(fs.Name(), "plumb ")
			s.errorf("%s: %s", cmd, flagProblem(fs, err))
			fmt.Fprintf(s.stderr, "Run 'plumb %s -h' for usage.\n", cmd)
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// exitForParse maps a parseArgs error to an exit code.
func exitForParse(err error) int {
	if errors.Is(err, errHelp) {
		return ExitOK
	}
	return ExitUsage
}

func versionCmd(_ context.Context, s *stdio, args []string) int {
	fs := newFlagSet(s, "version", "", "Print the plumb version (the module version it was built from).")
	if _, err := parseArgs(s, fs, args); err != nil {
		return exitForParse(err)
	}
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	fmt.Fprintf(s.stdout, "plumb %s\n", v)
	return ExitOK
}
