package serve

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/plumbhq/plumb/internal/console"
)

// mountConsole puts the test console (Config.Console) in front of the
// API's routes: /console/ goes to it, everything else to the API.
func (s *Server) mountConsole() error {
	if !s.cfg.Console {
		return nil
	}
	c, err := console.New(console.Config{
		Dir:          s.cfg.Dir,
		Files:        func() ([]string, error) { return Discover(s.cfg.Dir) },
		SettingsFile: SettingsFile,
		SandboxURL:   s.sandboxURL,
		LookupEnv:    s.cfg.LookupEnv,
		Tokens:       s.tokens,
		RequireToken: len(s.cfg.Tokens) > 0,
		Authorize:    s.authorized,
		Changed: func() {
			if _, err := s.Reload(); err != nil {
				s.log.Error("reload after a console save", "err", err)
			}
		},
		Logger: s.log.With("component", "console"),
	})
	if err != nil {
		return fmt.Errorf("serve: console: %w", err)
	}
	api := s.handler
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/console" || strings.HasPrefix(r.URL.Path, console.Prefix) {
			if r.URL.Path == "/console" {
				http.Redirect(w, r, console.Prefix, http.StatusMovedPermanently)
				return
			}
			c.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
	s.log.Info("test console enabled", "path", console.Prefix, "token_login", len(s.cfg.Tokens) > 0)
	return nil
}
