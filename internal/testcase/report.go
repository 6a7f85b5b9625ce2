package testcase

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/steps"
)

// Report collects the results of a `plumb test` run for the JSON and JUnit
// reports.
type Report struct {
	Passed   int             `json:"passed"`
	Failed   int             `json:"failed"`
	Duration engine.Duration `json:"duration_ms"`
	Suites   []*SuiteResult  `json:"suites"`
	// Errors are problems of test or integration files, which kept their
	// cases from running.
	Errors []string `json:"errors,omitempty"`
}

// SuiteResult is the results of the cases of one file.
type SuiteResult struct {
	File        string        `json:"file"`
	Integration string        `json:"integration"`
	Name        string        `json:"name"`
	Cases       []*CaseResult `json:"cases"`
}

// Add records the results of s's cases.
func (r *Report) Add(s *Suite, results []*CaseResult) {
	sr := &SuiteResult{File: s.File, Integration: s.Integration, Name: s.In.Name.Value, Cases: results}
	for _, c := range results {
		if c.Passed {
			r.Passed++
		} else {
			r.Failed++
		}
	}
	r.Suites = append(r.Suites, sr)
}

// AddError records the problems of files that could not be loaded; err is
// usually a steps.ErrorList.
func (r *Report) AddError(err error) {
	var list steps.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			r.Errors = append(r.Errors, e.Error())
		}
		return
	}
	r.Errors = append(r.Errors, err.Error())
}

// Summary is the closing line: `N passed, M failed`.
func (r *Report) Summary() string { return fmt.Sprintf("%d passed, %d failed", r.Passed, r.Failed) }

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// FormatCase renders one case result for people: `PASS name (12ms)`, or
// `FAIL name (12ms)` followed by the case's position, one indented line
// per failure (`path: want W, got G`) with diffs indented further, then
// the notes of its steps (`note: step s: `status`: path … not found in the
// response (keys: …)`), which often say why.
func FormatCase(c *CaseResult) string {
	var b strings.Builder
	status := "PASS"
	if !c.Passed {
		status = "FAIL"
	}
	fmt.Fprintf(&b, "%s %s (%s)\n", status, c.Name, fmtDur(time.Duration(c.Duration)))
	if c.Passed {
		return b.String()
	}
	fmt.Fprintf(&b, "    at %s\n", c.Pos)
	for _, f := range c.Failures {
		fmt.Fprintf(&b, "    %s\n", f)
		if f.Diff != "" {
			for _, line := range strings.Split(f.Diff, "\n") {
				fmt.Fprintf(&b, "        %s\n", line)
			}
		}
	}
	if c.Result != nil {
		for _, sr := range c.Result.Steps {
			for _, n := range sr.Notes {
				fmt.Fprintf(&b, "    note: step %s: %s\n", sr.Name, n)
			}
		}
	}
	return b.String()
}

// fmtDur renders a duration in ms below a second, else in seconds.
func fmtDur(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// JUnit XML, as read by CI systems.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	File      string        `xml:"file,attr,omitempty"`
	Line      int           `xml:"line,attr,omitempty"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func seconds(d engine.Duration) string {
	return fmt.Sprintf("%.3f", time.Duration(d).Seconds())
}

// WriteJUnit writes the report as JUnit XML: one testsuite per file of
// cases, one testcase per case with a failure element for a failed case,
// and a testsuite "load errors" with an error element per problem of a
// file that could not be loaded.
func (r *Report) WriteJUnit(w io.Writer) error {
	out := junitSuites{Name: "plumb test", Tests: r.Passed + r.Failed, Failures: r.Failed, Time: seconds(r.Duration)}
	for _, s := range r.Suites {
		js := junitSuite{Name: s.File, Tests: len(s.Cases)}
		var total engine.Duration
		for _, c := range s.Cases {
			total += c.Duration
			jc := junitCase{Name: c.Name, Classname: s.Name, File: c.Pos.File, Line: c.Pos.Line, Time: seconds(c.Duration)}
			if !c.Passed {
				js.Failures++
				lines := make([]string, 0, len(c.Failures))
				for _, f := range c.Failures {
					line := f.String()
					if f.Diff != "" {
						line += "\n" + f.Diff
					}
					lines = append(lines, line)
				}
				msg := ""
				if len(c.Failures) > 0 {
					msg = c.Failures[0].String()
				}
				jc.Failure = &junitProblem{Message: msg, Type: "expectation", Text: strings.Join(lines, "\n")}
			}
			js.Cases = append(js.Cases, jc)
		}
		js.Time = seconds(total)
		out.Suites = append(out.Suites, js)
	}
	if len(r.Errors) > 0 {
		js := junitSuite{Name: "load errors", Tests: len(r.Errors), Errors: len(r.Errors), Time: "0.000"}
		for _, e := range r.Errors {
			name, _, _ := strings.Cut(e, ": ")
			js.Cases = append(js.Cases, junitCase{Name: name, Classname: "load", Time: "0.000", Error: &junitProblem{Message: e, Type: "load"}})
		}
		out.Errors = len(r.Errors)
		out.Tests += len(r.Errors)
		out.Suites = append(out.Suites, js)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
