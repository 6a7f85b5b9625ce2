package engine

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// forbiddenDeps are modules the engine must not link: their adapters live
// in engine/prommetrics and engine/oteltrace, so an embedder who wants
// neither does not build them.
var forbiddenDeps = []string{"github.com/prometheus/", "go.opentelemetry.io/"}

// TestEngineLinksNoTelemetry runs `go list -deps` on this package (not its
// tests) and fails when a Prometheus or OpenTelemetry package appears.
func TestEngineLinksNoTelemetry(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	// go test puts the go tool that runs it first in PATH (Go 1.19+)
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !slices.Contains(deps, "github.com/plumbhq/plumb/engine") {
		t.Fatalf("go list -deps listed too little to judge: %q", deps)
	}
	if bad := forbidden(deps); len(bad) > 0 {
		t.Fatalf("the engine links %s: keep them in the adapters (engine/prommetrics, engine/oteltrace)", strings.Join(bad, ", "))
	}
}

// forbidden are the packages of deps from a forbidden module.
func forbidden(deps []string) []string {
	var bad []string
	for _, d := range deps {
		for _, f := range forbiddenDeps {
			if strings.HasPrefix(d, f) {
				bad = append(bad, d)
			}
		}
	}
	return bad
}
