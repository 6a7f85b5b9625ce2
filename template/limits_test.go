package template_test

import (
	"strings"
	"testing"

	"github.com/plumbhq/plumb/template"
)

// Issue 13: functions whose allocation follows a lead-supplied count must
// fail instead of exhausting memory.
func TestUnboundedFunctionsAreBounded(t *testing.T) {
	s := newSet()
	huge := map[string]any{"lead": map[string]any{"n": 1 << 40, "neg": -(1 << 40), "s": "abc", "lines": strings.Repeat("\n", 1000)}}
	for _, src := range []string{
		`{{ repeat (int lead.n) "x" }}`,
		`{{ repeat (int lead.n) lead.s }}`,
		`{{ repeat -1 "x" }}`,
		`{{ len (until (int lead.n)) }}`,
		`{{ len (until (int lead.neg)) }}`,
		`{{ len (untilStep 0 (int lead.n) 1) }}`,
		`{{ len (untilStep (int lead.n) (int lead.neg) -1) }}`,
		`{{ seq (int lead.n) }}`,
		`{{ seq 1 (int lead.n) }}`,
		`{{ seq (int lead.neg) 1 (int lead.n) }}`,
		`{{ indent (int lead.n) "x" }}`,
		`{{ nindent 10000 lead.lines | len }}`,
		`{{ randAlpha (int lead.n) }}`,
		`{{ randBytes (int lead.n) }}`,
		`{{ chunk 0 (list 1 2) }}`,
		`{{ range until 10000 }}{{ repeat 1000 "x" }}{{ end }}`,
	} {
		tm := mustCompile(t, s, src, template.Plain)
		out, err := tm.Render(huge)
		if err == nil {
			t.Errorf("Render(%s) = %d bytes, want an error", src, len(out))
			continue
		}
		if !strings.Contains(err.Error(), "more than") && !strings.Contains(err.Error(), "longer than") &&
			!strings.Contains(err.Error(), "negative") && !strings.Contains(err.Error(), "exceeds") && !strings.Contains(err.Error(), "at least 1") {
			t.Errorf("Render(%s): error %q does not name the bound", src, err)
		}
	}
	// Within the bounds, sprig's results are unchanged.
	small := map[string]any{"lead": map[string]any{"n": 3}}
	for src, want := range map[string]string{
		`{{ repeat (int lead.n) "ab" }}`:      "ababab",
		`{{ until (int lead.n) }}`:            "[0 1 2]",
		`{{ until -2 }}`:                      "[0 -1]",
		`{{ untilStep 0 10 (int lead.n) }}`:   "[0 3 6 9]",
		`{{ untilStep 10 0 -4 }}`:             "[10 6 2]",
		`{{ seq (int lead.n) }}`:              "1 2 3",
		`{{ seq -2 }}`:                        "1 0 -1 -2",
		`{{ seq 2 -1 }}`:                      "2 1 0 -1",
		`{{ seq 0 2 (int lead.n) }}`:          "0 2",
		`{{ seq 5 -2 1 }}`:                    "5 3 1",
		`{{ indent 2 "a\nb" }}`:               "  a\n  b",
		`{{ len (randAlpha 10) }}`:            "10",
		`{{ len (until 10000) }}`:             "10000",
		`{{ len (repeat 1048576 "x") }}`:      "1048576",
		`{{ chunk 2 (list 1 2 3) }}`:          "[[1 2] [3]]",
		`{{ range until 3 }}{{ . }}{{ end }}`: "012",
	} {
		out, err := mustCompile(t, s, src, template.Plain).Render(small)
		if err != nil || out != want {
			t.Errorf("Render(%s) = %q, %v; want %q", src, out, err, want)
		}
	}
}
