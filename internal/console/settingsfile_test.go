package console

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSettingsFileNeverQuoted: a settings file that is not a mapping of
// names to values (a bare secret, a list, broken YAML) is reported by its
// position only, never by its content.
func TestSettingsFileNeverQuoted(t *testing.T) {
	const secret = "sk_live_51HxQ9cKtQ7x9Rm2Lp4Kd8Vn3"
	for _, body := range []string{secret + "\n", "- " + secret + "\n", "key: \"" + secret + "\n", secret + ": a\n" + secret + ": b\n"} {
		dir := t.TempDir()
		c := &Console{cfg: Config{Dir: dir, SettingsFile: func(f string) string { return strings.TrimSuffix(f, ".yaml") + ".settings.yaml" }}}
		file := filepath.Join(dir, "p.yaml")
		if err := os.WriteFile(filepath.Join(dir, "p.settings.yaml"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := c.settingsValues(file)
		if err == nil || strings.Contains(err.Error(), secret[:10]) || !strings.Contains(err.Error(), "p.settings.yaml:") {
			t.Errorf("%q: %v", body, err)
		}
	}
}
