package steps

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every integration under examples/ still loads with the stricter checks.
func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob("../examples/*/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".test.yaml") || strings.Contains(f, "leads") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(src), "\nsteps:") {
			continue
		}
		n++
		if _, err := parse(f, src); err != nil {
			t.Errorf("%v", err)
		}
	}
	if n == 0 {
		t.Skip("no example integrations found")
	}
	t.Logf("%d example integrations load", n)
}
