package console_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/plumbhq/plumb/internal/console"
	"github.com/plumbhq/plumb/internal/sandbox"
)

// env is a console over a temporary copy of some examples, with the
// sandbox partner API as every base_url (as plumb serve --sandbox --console
// runs it).
type env struct {
	t       testing.TB
	dir     string
	srv     *httptest.Server
	c       *console.Console
	changed int
}

// newEnv copies the named examples under a temporary directory and serves
// the console over them. cfg tweaks the console's Config.
func newEnv(t testing.TB, examples []string, cfg func(*console.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	for _, ex := range examples {
		copyDir(t, filepath.Join("..", "..", "examples", ex), filepath.Join(dir, ex))
	}
	sb := httptest.NewServer(sandbox.Handler())
	t.Cleanup(sb.Close)
	e := &env{t: t, dir: dir}
	c := console.Config{
		Dir:          dir,
		Files:        func() ([]string, error) { return discover(dir) },
		SettingsFile: func(f string) string { return filepath.Join(filepath.Dir(f), "settings.yaml") },
		SandboxURL:   sb.URL,
		Changed:      func() { e.changed++ },
	}
	if cfg != nil {
		cfg(&c)
	}
	h, err := console.New(c)
	if err != nil {
		t.Fatal(err)
	}
	e.c = h
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

// discover lists DIR/NAME/integration.yaml, as serve.Discover does for the
// examples' layout.
func discover(dir string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(dir, "*", "integration.yaml"))
	sort.Strings(m)
	return m, err
}

func copyDir(t testing.TB, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// do sends a request to the console and returns the status and body.
func (e *env) do(method, path, body string, hdr ...string) (int, string) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Plumb-Console", "1")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
