package cli

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/plumbhq/plumb/engine"
)

// TestTextOutputDetail (issues 13.11, 14.12): partner text cannot drive the
// terminal; errors show their class; a step that never sent shows its
// reason on its own text line (issue 31); variants, timeouts and the
// matched rule show.
func TestTextOutputDetail(t *testing.T) {
	var buf bytes.Buffer
	o := &textOutput{w: bufio.NewWriter(&buf)}
	r := &engine.Result{Outcome: engine.Error, Step: "b", Reason: "vars: lead.x is missing", Class: engine.ClassTemplate,
		Steps: []engine.StepResult{
			{Name: "a", Outcome: engine.Success, Method: "GET", URL: "http://h/a", Attempts: 2, Variant: 2, Timeout: engine.Duration(2 * time.Second), Rule: "retry (default rule)",
				Captured: map[string]any{"msg": "\x1b[2Jfake\nlead 9: success"}},
			{Name: "b", Outcome: engine.Error, Reason: "vars: lead.x is missing", Class: engine.ClassTemplate},
		}}
	if err := o.result(item{index: 1}, r); err != nil {
		t.Fatal(err)
	}
	o.w.Flush()
	out := buf.String()
	for _, want := range []string{
		"b: vars: lead.x is missing [template]\n",
		"variant: 2 (timeout 2.00s)",
		"rule: retry (default rule)",
		"\n  b  error    0.0ms  vars: lead.x is missing [template]\n",
		`\u001b[2Jfake\nlead 9: success`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") || strings.Contains(out, "\nlead 9") {
		t.Errorf("raw control characters reached the output:\n%q", out)
	}
}
