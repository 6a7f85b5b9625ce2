package cli

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/jsonw"
)

// dryRun is the rendered requests of one lead.
type dryRun struct {
	Index    int               `json:"index"`
	Line     int               `json:"line,omitempty"`
	Error    string            `json:"error,omitempty"`
	Requests []engine.Rendered `json:"requests"`
}

// dryRunLeads renders the requests of every lead of src and prints them
// (text, json or ndjson) without sending anything. A malformed row is
// reported with its line and makes the exit code 1, as in a real run.
func dryRunLeads(s *stdio, settings *engine.Runner, src leadSource, format string) int {
	w := bufio.NewWriter(s.stdout)
	n, malformed, unbuildable := 0, 0, 0
	if format == "json" {
		w.WriteString("[")
	}
	for {
		it, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			w.Flush()
			s.errorf("run: reading leads: %v", err)
			return ExitUsage
		}
		d := dryRun{Index: it.index, Line: it.line, Requests: []engine.Rendered{}}
		if it.err != nil {
			malformed++
			d.Error = it.err.Error()
		} else {
			d.Requests = settings.DryRun(it.lead)
			for _, r := range d.Requests {
				if r.Err != "" && !r.NeedsCaptures {
					unbuildable++
					break
				}
			}
		}
		switch format {
		case "json", "ndjson":
			b, err := jsonw.MarshalIndent(d, "")
			if err != nil {
				s.errorf("run: lead %d: %v", it.index, err)
				return ExitUsage
			}
			if format == "json" {
				if n > 0 {
					w.WriteString(",")
				}
				w.WriteString("\n")
			}
			w.Write(b)
			if format == "ndjson" {
				w.WriteString("\n")
			}
		default:
			fmt.Fprintf(w, "lead %d", d.Index)
			if d.Line > 0 && d.Line != d.Index {
				fmt.Fprintf(w, " (line %d)", d.Line)
			}
			if d.Error != "" {
				fmt.Fprintf(w, ": error: %s\n", d.Error)
			} else {
				fmt.Fprintln(w, ":")
				writeRendered(w, d.Requests, "  ")
			}
		}
		n++
	}
	if format == "json" {
		w.WriteString("\n]\n")
	}
	if err := w.Flush(); err != nil {
		s.errorf("run: writing: %v", err)
		return ExitUsage
	}
	fmt.Fprintf(s.stderr, "dry run: %s rendered, nothing sent\n", plural(n, "lead"))
	if malformed > 0 || unbuildable > 0 {
		return ExitLeadError // as a real run would: those leads would end in error
	}
	return ExitOK
}

// writeRendered prints rendered requests for people: the step and its
// request line, then headers and body indented, or why there is none.
func writeRendered(w io.Writer, rs []engine.Rendered, indent string) {
	width := 0
	for _, r := range rs {
		width = max(width, len(r.Step))
	}
	for _, r := range rs {
		switch {
		case r.Err != "":
			fmt.Fprintf(w, "%s%-*s  error: %s\n", indent, width, r.Step, r.Err)
		case r.Skipped != "":
			fmt.Fprintf(w, "%s%-*s  skipped: %s\n", indent, width, r.Step, r.Skipped)
		default:
			fmt.Fprintf(w, "%s%-*s  %s %s\n", indent, width, r.Step, r.Method, r.URL)
			in := indent + "    "
			for _, k := range slices.Sorted(maps.Keys(r.Header)) {
				for _, v := range r.Header[k] {
					fmt.Fprintf(w, "%s%s: %s\n", in, k, v)
				}
			}
			if r.Body != "" {
				fmt.Fprintln(w, strings.TrimRight(in, " "))
				for _, line := range strings.Split(strings.TrimRight(r.Body, "\n"), "\n") {
					fmt.Fprintf(w, "%s%s\n", in, line)
				}
			}
		}
	}
}
