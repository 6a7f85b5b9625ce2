// Package importtest is test support for the importers: it writes a draft
// integration to a file, loads it as plumb validate does, and runs its
// generated test cases through internal/testcase as plumb test does. Only
// tests import it.
package importtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/importer"
	"github.com/plumbhq/plumb/internal/testcase"
)

// RoundTrip writes in to a temporary file, checks it loads, runs every
// generated test case and fails t unless each passes. It returns the
// file's path and how many cases ran.
func RoundTrip(t testing.TB, in *importer.Integration) (string, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), importer.Kebab(in.Name)+".yaml")
	src := in.YAML()
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Load(path); err != nil {
		t.Fatalf("the generated file does not load: %v\n%s", err, numbered(src))
	}
	if in.NeedsLogin() {
		return path, 0
	}
	loaded, err := testcase.Load(path)
	if err != nil {
		t.Fatalf("the generated test cases do not load: %v\n%s", err, numbered(src))
	}
	n := 0
	for _, s := range loaded.Suites {
		for _, r := range s.Run(context.Background(), testcase.Options{}) {
			n++
			if !r.Passed {
				var fs []string
				for _, f := range r.Failures {
					fs = append(fs, f.String())
				}
				t.Errorf("generated case %q fails:\n  %s\n%s", r.Name, strings.Join(fs, "\n  "), numbered(src))
			}
		}
	}
	return path, n
}

func numbered(src []byte) string {
	lines := strings.Split(string(src), "\n")
	for i, l := range lines {
		lines[i] = strings.Repeat(" ", 4-len(itoa(i+1))) + itoa(i+1) + "  " + l
	}
	return strings.Join(lines, "\n")
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}
