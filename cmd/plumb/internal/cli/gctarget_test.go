package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// gcPercentAfter runs args through Main and returns the GC target it left
// (the previous target is restored).
func gcPercentAfter(t *testing.T, args ...string) int {
	t.Helper()
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	limit := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(limit)
	var stdout, stderr bytes.Buffer
	if code := Main(args, strings.NewReader(""), &stdout, &stderr, nil); code != 0 {
		t.Fatalf("%v: exit %d\n%s", args, code, stderr.String())
	}
	return debug.SetGCPercent(100)
}

// plumb run takes the batch GC target unless GOGC is set, in which case
// Go's own setting stands.
func TestRunGCTarget(t *testing.T) {
	dir := filepath.Join(examplesDir, "blacklist")
	lead := filepath.Join(t.TempDir(), "lead.json")
	if err := os.WriteFile(lead, []byte(`{"email":"a@b.example","phone":"5125550142","ip_address":"192.0.2.1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"run", "--sandbox", "--settings", filepath.Join(dir, "settings.yaml"),
		"--lead", lead, filepath.Join(dir, "integration.yaml")}
	t.Setenv("GOGC", "")
	if got := gcPercentAfter(t, args...); got != batchGCPercent {
		t.Errorf("GC target after run: %d, want %d", got, batchGCPercent)
	}
	t.Setenv("GOGC", "150")
	if got := gcPercentAfter(t, args...); got != 100 {
		t.Errorf("GC target after run with GOGC set: %d, want it untouched (100)", got)
	}
}
