package serve

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFilesConfinedToDir: plumb serve trusts only what is under --dir. A
// file there that includes a fragment outside it (by an absolute path, by
// .. or through a symlink) does not load, and the error quotes nothing of
// the outside file; a fragment inside --dir still works.
func TestFilesConfinedToDir(t *testing.T) {
	outside := t.TempDir()
	secret := "outside-secret-line-7c1e"
	must(t, os.WriteFile(filepath.Join(outside, "frag.yaml"), []byte("vars: { x: "+secret+" }\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(outside, "notes.yaml"), []byte(secret+": [\n"), 0o600))
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "inside.yaml"), []byte("vars: { y: 1 }\n"), 0o600))
	must(t, os.Symlink(filepath.Join(outside, "frag.yaml"), filepath.Join(dir, "link.yaml")))
	rel, err := filepath.Rel(dir, filepath.Join(outside, "notes.yaml"))
	must(t, err)
	file := func(name, include string) {
		src := "version: 1\nname: " + name + "\ninclude: [" + include + "]\nsettings: { base_url: { default: \"http://127.0.0.1:9\" } }\n" +
			"steps:\n  - name: s\n    request: { url: \"{{settings.base_url}}/x\" }\n"
		must(t, os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(src), 0o600))
	}
	file("abs", filepath.Join(outside, "frag.yaml"))
	file("dotdot", rel)
	file("symlink", "link.yaml")
	file("ok", "inside.yaml")
	s := testServer(t, Config{Dir: dir})
	rep, err := s.Reload()
	must(t, err)
	for _, name := range []string{"abs", "dotdot", "symlink"} {
		msg, failed := rep.Failed[filepath.Join(dir, name+".yaml")]
		if !failed {
			t.Errorf("%s: loaded, want refused (it includes a file outside --dir)", name)
		}
		if strings.Contains(msg, secret) {
			t.Errorf("%s: the error quotes the outside file: %s", name, msg)
		}
	}
	if msg, failed := rep.Failed[filepath.Join(dir, "ok.yaml")]; failed {
		t.Errorf("a fragment inside --dir: %s", msg)
	}
}
