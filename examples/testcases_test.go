package examples_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/plumbhq/plumb/internal/testcase"
)

// TestStoredTestCases runs the stored test cases of every example (its
// integration.test.yaml) through the testcase runner, as `plumb test
// examples/...` does, and requires every example to ship some.
func TestStoredTestCases(t *testing.T) {
	loaded, err := testcase.Load("./...")
	if err != nil {
		t.Fatalf("loading the examples' test cases:\n%v", err)
	}
	if len(loaded.Untested) > 0 {
		t.Errorf("examples without test cases: %v", loaded.Untested)
	}
	dirs, err := filepath.Glob(filepath.Join("*", "integration.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded.Suites) < len(dirs) {
		t.Errorf("%d suites of test cases for %d examples", len(loaded.Suites), len(dirs))
	}
	for _, s := range loaded.Suites {
		t.Run(filepath.Dir(s.File), func(t *testing.T) {
			t.Parallel()
			if len(s.Cases) < 3 {
				t.Errorf("%s has %d test cases; every example tests a success, a failure and an error or retry path", s.File, len(s.Cases))
			}
			for _, r := range s.Run(context.Background(), testcase.Options{}) {
				if !r.Passed {
					t.Errorf("%s", testcase.FormatCase(r))
				}
			}
		})
	}
}
