package template

import (
	"strings"
	"testing"
)

// TestRenderErrorPositionIsOne (issue 14.10): a render error of a template
// named by its file position reads as one position in the file, never
// f.yaml:45:27:1:3.
func TestRenderErrorPositionIsOne(t *testing.T) {
	s := New()
	for src, want := range map[string]string{
		"{{lead.x}}":          "template f.yaml:45:29: header value contains CR/LF",
		"ab{{lead.x}}":        "template f.yaml:45:31: header value contains CR/LF",
		"{{ lead.x | trim }}": "template f.yaml:45:",
	} {
		tm, err := s.Compile("f.yaml:45:27", src, Header)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tm.Render(map[string]any{"lead": map[string]any{"x": "a\r\nb"}})
		if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Count(strings.SplitN(err.Error(), ": ", 2)[0], ":") != 2 {
			t.Errorf("%q: %v, want it to start %q with one position", src, err, want)
		}
	}
	tm, _ := s.Compile("plain-name", "{{lead.x}}", Header)
	if _, err := tm.Render(map[string]any{"lead": map[string]any{"x": "a\nb"}}); err == nil || !strings.HasPrefix(err.Error(), "template plain-name:1:") {
		t.Errorf("plain name: %v", err)
	}
}
