package serve

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// hookSourceYAML is an integration with a webhook: and a source: section.
var hookSourceYAML = strings.Replace(hookYAML, "steps:\n", `source:
  request: { url: "{{settings.base_url}}/leads?page={{page.number}}" }
  records: { json: data }
  paginate: { type: page }
steps:
`, 1)

// TestCompiledOnce: plumb serve parses and compiles an integration file
// with a webhook and a source once when it starts, and a reload compiles
// only the files whose bytes (or settings) changed; the webhook receiver
// comes from the compiled plan, not from a second read of the file.
func TestCompiledOnce(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "acare.yaml"), []byte(hookSourceYAML), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "acare.settings.yaml"), []byte("base_url: http://127.0.0.1:1\nhook_secret: "+hookSecret+"\n"), 0o600))
	writeIntegration(t, dir, "http://127.0.0.1:1")
	s := testServer(t, Config{Dir: dir})
	compiles := func() int { return int(testutil.ToFloat64(s.metrics.compiles)) }
	if got := compiles(); got != 2 {
		t.Fatalf("%d compiles at start for 2 files, want 2", got)
	}
	if e := s.reg.lookup("acare"); e == nil || e.currentHook() == nil || e.currentHook().path != "/v1/hooks/acare" {
		t.Fatalf("the webhook receiver of the compiled plan is missing")
	}
	for range 3 {
		rep, err := s.Reload()
		must(t, err)
		if len(rep.Kept) != 2 || len(rep.Loaded) != 0 {
			t.Fatalf("reload of unchanged files: %+v", rep)
		}
	}
	if got := compiles(); got != 2 {
		t.Fatalf("%d compiles after three reloads of unchanged files, want still 2", got)
	}
	must(t, os.WriteFile(filepath.Join(dir, "acare.settings.yaml"), []byte("base_url: http://127.0.0.1:2\nhook_secret: "+hookSecret+"\n"), 0o600))
	rep, err := s.Reload()
	must(t, err)
	if got := compiles(); got != 3 || len(rep.Loaded) != 1 || len(rep.Kept) != 1 {
		t.Fatalf("after changing one settings file: %d compiles (want 3), %+v", got, rep)
	}
}

// That no file of the service parses an integration itself is
// engine's TestOneParser (it walks the whole module).
