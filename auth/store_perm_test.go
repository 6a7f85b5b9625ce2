//go:build unix

package auth_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/plumbhq/plumb/auth"
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestFileStoreTightensLooseDirectory reproduces issue 13.15: a token
// directory (and token files) that existed before with group/other
// permissions kept them, so other users could list and read the tokens.
func TestFileStoreTightensLooseDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tokens")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	st := auth.NewFileStore(dir)
	if err := st.Save("k", &oauth2.Token{AccessToken: "secret", Expiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("directory mode after Save %#o, want 0700", m)
	}

	// a token file copied in with 0644 into a 0755 directory: reading
	// tightens both
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(st.Path("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := st.Load("k")
	if err != nil || tok == nil || tok.AccessToken != "secret" {
		t.Fatalf("Load: %v %v", tok, err)
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("directory mode after Load %#o, want 0700", m)
	}
	if m := mode(t, st.Path("k")); m != 0o600 {
		t.Errorf("token file mode after Load %#o, want 0600", m)
	}
}

// TestFileStoreRefusesOthersDirectory: a token directory or file owned by
// another user (who could read or replace the tokens) is refused with a
// message saying so. Needs root to make such a directory.
func TestFileStoreRefusesOthersDirectory(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give a directory to another user")
	}
	dir := filepath.Join(t.TempDir(), "tokens")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	st := auth.NewFileStore(dir)
	if err := st.Save("k", &oauth2.Token{AccessToken: "secret"}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(st.Path("k"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Load("k"); err == nil || !strings.Contains(err.Error(), "token file "+st.Path("k")+" belongs to user id 65534, not to you") {
		t.Errorf("Load of another user's token file: %v", err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	want := "token directory " + dir + " belongs to user id 65534, not to you"
	if _, err := st.Load("k"); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Load: %v, want %q", err, want)
	}
	if err := st.Save("k", &oauth2.Token{AccessToken: "new"}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Save: %v, want %q", err, want)
	}
}
