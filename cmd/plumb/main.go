// Command plumb runs declarative HTTP integrations against leads.
//
// Run `plumb help` for the commands; docs/cli.md documents them all.
package main

import (
	"io"
	"log"
	"os"
	"strings"

	"github.com/plumbhq/plumb/cmd/plumb/internal/cli"
	"github.com/plumbhq/plumb/internal/termtext"
)

func main() {
	os.Exit(plumb(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.LookupEnv))
}

// plumb is the program: it routes the standard logger through stdlibLog
// on stderr, then runs cli.Main. The tests' plumb commands run it too.
func plumb(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) (string, bool)) int {
	log.SetFlags(0)
	log.SetPrefix("")
	log.SetOutput(stdlibLog{stderr})
	return cli.Main(args, stdin, stdout, stderr, getenv)
}

// idleWarning is what stdlibLog writes in place of net/http's
// "Unsolicited response received on idle HTTP channel starting with …"
// line, which quotes the partner's bytes: a partner that echoes the
// request would put its API key or token on stderr.
const idleWarning = "plumb: warning: a partner sent bytes on an idle connection, not in answer to any request (contents not shown)\n"

// stdlibLog is where the standard library's log lines go (net/http's
// Transport logs through package log). Such lines may quote bytes a
// partner sent, so none is passed through as it is: the idle-connection
// line becomes idleWarning, and any other loses whatever it quotes (cut
// to "…") and has its control characters escaped. log.Logger calls Write
// once per line, serialised.
type stdlibLog struct{ w io.Writer }

// Write implements io.Writer.
func (l stdlibLog) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	out := idleWarning
	if !strings.HasPrefix(line, "Unsolicited response received on idle HTTP channel") {
		out = "plumb: warning: " + termtext.Escape(cutQuoted(line), false) + "\n"
	}
	if _, err := io.WriteString(l.w, out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// cutQuoted replaces what each "…" or `…` span of s holds (as %q and %#q
// write it, backslash escapes included) with "…"; a span never closed is
// cut to the end.
func cutQuoted(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '"' && c != '`' {
			b.WriteByte(c)
			continue
		}
		b.WriteString(string(c) + "…" + string(c))
		j := i + 1
		for ; j < len(s) && s[j] != c; j++ {
			if c == '"' && s[j] == '\\' {
				j++
			}
		}
		i = j
	}
	return b.String()
}
