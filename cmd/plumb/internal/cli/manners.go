package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
)

// flagName spells a flag as the docs do: --name, and -v (and -vv) for a
// one-letter flag.
func flagName(name string) string {
	if len(name) == 1 || name == "vv" {
		return "-" + name
	}
	return "--" + name
}

// printFlags writes fs's flags as flag.PrintDefaults does, each spelled as
// the docs spell it (--lead FILE, -v).
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		var b strings.Builder
		fmt.Fprintf(&b, "  %s", flagName(f.Name))
		name, usage := flag.UnquoteUsage(f)
		if name != "" {
			b.WriteString(" " + name)
		}
		if b.Len() <= 4 { // a one-letter flag without a value: usage on the same line
			b.WriteString("\t")
		} else {
			b.WriteString("\n    \t")
		}
		b.WriteString(strings.ReplaceAll(usage, "\n", "\n    \t"))
		if !isZeroValue(f) {
			if reflect.TypeOf(f.Value).String() == "*flag.stringValue" {
				fmt.Fprintf(&b, " (default %q)", f.DefValue)
			} else {
				fmt.Fprintf(&b, " (default %v)", f.DefValue)
			}
		}
		fmt.Fprintln(w, b.String())
	})
}

// isZeroValue reports whether f's default is its type's zero value (not
// worth printing), as package flag decides.
func isZeroValue(f *flag.Flag) (zero bool) {
	defer func() {
		if recover() != nil {
			zero = f.DefValue == ""
		}
	}()
	t := reflect.TypeOf(f.Value)
	var z reflect.Value
	if t.Kind() == reflect.Pointer {
		z = reflect.New(t.Elem())
	} else {
		z = reflect.Zero(t)
	}
	v, ok := z.Interface().(flag.Value)
	if !ok {
		return f.DefValue == ""
	}
	return f.DefValue == v.String()
}

// flagProblem turns a parse error of package flag into one line that
// spells flags as the docs do and, for an unknown flag, suggests the
// nearest one.
func flagProblem(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		name = strings.TrimPrefix(name, "-")
		line := "unknown flag " + flagName(name)
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		if near := nearest(name, names); near != "" {
			line += " (did you mean " + flagName(near) + "?)"
		}
		return line
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return flagName(strings.TrimPrefix(name, "-")) + " needs a value"
	}
	// invalid value "x" for flag -name: why
	if i := strings.Index(msg, " for flag -"); i >= 0 {
		rest := msg[i+len(" for flag -"):]
		name, why, _ := strings.Cut(rest, ": ")
		out := msg[:i] + " for " + flagName(name)
		if why != "" {
			out += ": " + why
		}
		return out
	}
	return msg
}

// nearest returns the name of names closest to s when it is close enough
// to be a slip (edit distance at most a third of its length, at least 1;
// or a prefix), else "".
func nearest(s string, names []string) string {
	best, bestD := "", -1
	for _, n := range names {
		d := editDistance(strings.ToLower(s), strings.ToLower(n))
		if len(s) >= 3 && strings.HasPrefix(n, s) {
			d = min(d, 1)
		}
		if bestD < 0 || d < bestD || (d == bestD && n < best) {
			best, bestD = n, d
		}
	}
	if bestD < 0 || bestD > max(1, len(s)/3) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, with a swap of two
// neighbouring letters counted as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range rb {
		d[0][j+1] = j + 1
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// unknownCommand reports a command plumb does not have in one line, with
// the nearest command when it looks like a slip, and where the list is.
func unknownCommand(s *stdio, name string) int {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	line := fmt.Sprintf("unknown command %q", name)
	if near := nearest(name, names); near != "" {
		line += fmt.Sprintf(" (did you mean %s?)", near)
	}
	s.errorf("%s", line)
	fmt.Fprintln(s.stderr, "Run 'plumb help' for the list of commands.")
	return ExitUsage
}

// cmdFlags is one command's flags for shell completion.
type cmdFlags struct {
	name, summary string
	flags         []*flag.Flag
	subs          []string // subcommands (auth login, …) or fixed words
}

// completionWords lists every command with its flags, read from the
// commands themselves (each is run with -h and its flag set kept), so
// completion never goes stale.
func completionWords() []cmdFlags {
	var out []cmdFlags
	subs := map[string][]string{
		"auth": {"login", "status", "logout"}, "webhook": {"sign", "replay"}, "webhooks": {"sign", "replay"},
		"sync": {"status"}, "completion": {"bash", "zsh", "fish"},
	}
	for _, c := range commands() {
		cf := cmdFlags{name: c.name, summary: c.summary, subs: subs[c.name]}
		if c.name == "help" {
			for _, o := range commands() {
				cf.subs = append(cf.subs, o.name)
			}
		}
		if c.run != nil && c.name != "completion" {
			var sets []*flag.FlagSet
			quiet := &stdio{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard,
				env: func(string) (string, bool) { return "", false }, flagSets: &sets}
			c.run(context.Background(), quiet, []string{"-h"})
			seen := map[string]bool{}
			for _, fs := range sets {
				fs.VisitAll(func(f *flag.Flag) {
					if !seen[f.Name] {
						seen[f.Name] = true
						cf.flags = append(cf.flags, f)
					}
				})
			}
		}
		out = append(out, cf)
	}
	return out
}

const completionDoc = `
Print a shell completion script for plumb: commands, their subcommands
and flags (file names complete as usual).

  bash   source <(plumb completion bash)      (e.g. in ~/.bashrc)
  zsh    source <(plumb completion zsh)       (after compinit, e.g. in ~/.zshrc)
  fish   plumb completion fish | source       (or save it as ~/.config/fish/completions/plumb.fish)`

func completionCmd(_ context.Context, s *stdio, args []string) int {
	fs := newFlagSet(s, "completion", "bash|zsh|fish", completionDoc)
	pos, err := parseArgs(s, fs, args)
	if err != nil {
		return exitForParse(err)
	}
	bad := usageError(s, "completion")
	if len(pos) != 1 {
		return bad("name one shell: bash, zsh or fish")
	}
	words := completionWords()
	switch pos[0] {
	case "bash":
		writeBash(s.stdout, words)
	case "zsh":
		writeZsh(s.stdout, words)
	case "fish":
		writeFish(s.stdout, words)
	default:
		return bad("unknown shell %q: bash, zsh or fish", pos[0])
	}
	return ExitOK
}

func flagWords(cf cmdFlags) []string {
	var out []string
	for _, f := range cf.flags {
		out = append(out, flagName(f.Name))
	}
	sort.Strings(out)
	return out
}

func writeBash(w io.Writer, words []cmdFlags) {
	var names []string
	for _, c := range words {
		names = append(names, c.name)
	}
	fmt.Fprintf(w, `# bash completion for plumb; load it with: source <(plumb completion bash)
_plumb() {
	local cur=${COMP_WORDS[COMP_CWORD]} words="" subs=""
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W %q -- "$cur"))
		return
	fi
	case "${COMP_WORDS[1]}" in
`, strings.Join(names, " "))
	for _, c := range words {
		fmt.Fprintf(w, "\t%s) words=%q; subs=%q ;;\n", c.name, strings.Join(flagWords(c), " "), strings.Join(c.subs, " "))
	}
	fmt.Fprint(w, `	esac
	if [[ "$cur" == -* ]]; then
		COMPREPLY=($(compgen -W "$words" -- "$cur"))
	elif [ "$COMP_CWORD" -eq 2 ] && [ -n "$subs" ]; then
		COMPREPLY=($(compgen -W "$subs" -- "$cur"))
	fi
}
complete -o default -F _plumb plumb
`)
}

// zshQuote quotes s for a single-quoted zsh word.
func zshQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func writeZsh(w io.Writer, words []cmdFlags) {
	fmt.Fprint(w, "#compdef plumb\n# zsh completion for plumb; load it with: source <(plumb completion zsh)\n_plumb() {\n\tlocal -a commands flags subs\n\tcommands=(\n")
	for _, c := range words {
		fmt.Fprintf(w, "\t\t%s\n", zshQuote(c.name+":"+c.summary))
	}
	fmt.Fprint(w, "\t)\n\tif (( CURRENT == 2 )); then\n\t\t_describe command commands\n\t\treturn\n\tfi\n\tcase $words[2] in\n")
	for _, c := range words {
		fmt.Fprintf(w, "\t\t(%s) flags=(%s); subs=(%s) ;;\n", c.name, strings.Join(flagWords(c), " "), strings.Join(c.subs, " "))
	}
	fmt.Fprint(w, "\tesac\n\tif [[ $PREFIX == -* ]]; then\n\t\tcompadd -a flags\n\telif (( CURRENT == 3 && ${#subs} > 0 )); then\n\t\tcompadd -a subs\n\telse\n\t\t_files\n\tfi\n}\ncompdef _plumb plumb\n")
}

// fishQuote quotes s for a single-quoted fish word.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'"
}

func writeFish(w io.Writer, words []cmdFlags) {
	fmt.Fprintln(w, "# fish completion for plumb; load it with: plumb completion fish | source")
	fmt.Fprintln(w, "complete -c plumb -e")
	for _, c := range words {
		fmt.Fprintf(w, "complete -c plumb -f -n __fish_use_subcommand -a %s -d %s\n", c.name, fishQuote(c.summary))
	}
	for _, c := range words {
		cond := fishQuote("__fish_seen_subcommand_from " + c.name)
		for _, sub := range c.subs {
			fmt.Fprintf(w, "complete -c plumb -f -n %s -a %s\n", cond, sub)
		}
		for _, f := range c.flags {
			kind := "-l" // --name
			switch {
			case len(f.Name) == 1:
				kind = "-s" // -v
			case f.Name == "vv":
				kind = "-o" // -vv
			}
			_, usage := flag.UnquoteUsage(f)
			line := fmt.Sprintf("complete -c plumb -n %s %s %s -d %s", cond, kind, f.Name, fishQuote(firstLine(usage)))
			if name, _ := flag.UnquoteUsage(f); name != "" {
				line += " -r"
			}
			fmt.Fprintln(w, line)
		}
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
