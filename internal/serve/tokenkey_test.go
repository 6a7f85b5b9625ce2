package serve

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoTokenKeyNamesTheVariable reproduces issue 26.6's wording: without
// a token key an authorization_code integration does not load, and says
// which variable to set (not a Go option); the service itself starts.
func TestNoTokenKeyNamesTheVariable(t *testing.T) {
	t.Parallel()
	p := newPartner(t)
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "crm.yaml"), []byte(crmYAML), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "crm.settings.yaml"), []byte("base_url: "+p.URL+"\n"), 0o600))
	s := testServer(t, Config{Dir: dir})
	rep, err := s.Reload()
	must(t, err)
	msg := rep.Failed[filepath.Join(dir, "crm.yaml")]
	if !strings.Contains(msg, "PLUMB_TOKEN_KEY") || strings.Contains(msg, "WithTokenStore") {
		t.Fatalf("crm without a token key: %+v", rep)
	}
}
