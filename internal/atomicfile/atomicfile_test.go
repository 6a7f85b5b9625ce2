package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteAndReplace(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "token.json")
	if err := Write(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(want string, mode os.FileMode) {
		t.Helper()
		b, err := os.ReadFile(p)
		st, err2 := os.Stat(p)
		if err != nil || err2 != nil || string(b) != want || st.Mode().Perm() != mode {
			t.Fatalf("%q %v, %v %v; want %q %v", b, st.Mode().Perm(), err, err2, want, mode)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Fatalf("the directory holds %d files, want only the file (no temporary left)", len(ents))
		}
	}
	check("one", 0o600)

	// Replace keeps the file's mode; perm is only for a new file
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := Replace(p, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	check("two", 0o640)

	q := filepath.Join(dir, "new.yaml")
	if err := Replace(q, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(q); err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("new file: %v %v", st, err)
	}

	// a directory that is not there: an error, and nothing written
	if err := Write(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600); err == nil {
		t.Fatal("wrote into a missing directory")
	}
}
