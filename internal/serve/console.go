package serve

import (
	"fmt"
	"net/http"

	"github.com/plumbhq/plumb/internal/console"
)

// console makes the test console (Config.Console), nil when it is off.
// front puts it beside the API at /console/. It has a role of its own: with
// console tokens it asks for one of them (an API token does not open it);
// without any tokens it is open on loopback, as the API is, and front and
// the console both refuse a Host that is not a loopback name.
func (s *Server) console() (http.Handler, error) {
	if !s.cfg.Console {
		return nil, nil
	}
	c, err := console.New(console.Config{
		Dir:          s.cfg.Dir,
		Files:        func() ([]string, error) { return Discover(s.cfg.Dir) },
		SettingsFile: SettingsFile,
		SandboxURL:   s.sandboxURL,
		LookupEnv:    s.cfg.LookupEnv,
		Tokens:       s.tokens,
		RequireToken: !s.consoleTokens.empty(),
		Authorize:    s.consoleAuthorized,
		API:          s.opsAPI(),
		Changed: func() {
			if _, err := s.Reload(); err != nil {
				s.log.Error("reload after a console save", "err", err)
			}
		},
		Logger: s.log.With("component", "console"),
	})
	if err != nil {
		return nil, fmt.Errorf("serve: console: %w", err)
	}
	s.log.Info("test console enabled", "path", console.Prefix, "token_login", !s.consoleTokens.empty())
	return c, nil
}
