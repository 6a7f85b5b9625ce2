package serve

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/plumbhq/plumb/internal/telemetry"
	"github.com/plumbhq/plumb/steps"
)

// Run serves cfg until SIGTERM or SIGINT (or ctx ends), reloading the
// integrations on SIGHUP, then shuts down gracefully. It returns nil after a
// clean shutdown.
func Run(ctx context.Context, cfg Config) error {
	s, err := New(cfg)
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(stop)
	if err := s.Start(); err != nil {
		s.closeAll()
		return err
	}
	for {
		select {
		case <-hup:
			s.log.Info("SIGHUP: reloading integrations", "dir", s.cfg.Dir)
			rep, err := s.Reload()
			if err == nil {
				s.log.Info("reloaded", "loaded", len(rep.Loaded), "unchanged", len(rep.Kept), "failed", len(rep.Failed), "removed", len(rep.Removed))
			}
			continue
		case sig := <-stop:
			s.log.Info("shutting down", "signal", sig.String(), "drain_timeout_ms", telemetry.Millis(s.cfg.DrainTimeout))
		case <-ctx.Done():
			s.log.Info("shutting down", "reason", context.Cause(ctx).Error())
		case err := <-s.serveErr:
			s.serveErr <- err // Shutdown reads it
			s.log.Error("http server stopped", "err", err)
		}
		break
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	return s.Shutdown(sctx)
}

// ReadTokens reads bearer tokens, one per line; blank lines and lines
// starting with # are ignored. PLUMB_SERVE_TOKENS holds tokens the same way
// (newline- or comma-separated).
func ReadTokens(text string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		for _, t := range strings.Split(sc.Text(), ",") {
			t = strings.TrimSpace(t)
			if t != "" && !strings.HasPrefix(t, "#") {
				out = append(out, t)
			}
		}
	}
	return out
}

// ReadTokenFile reads a token file, refusing one that other users can read.
func ReadTokenFile(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by other users (mode %v); chmod 600 it", path, st.Mode().Perm())
	}
	b, err := steps.ReadFile(path)
	if err != nil {
		return nil, err
	}
	toks := ReadTokens(string(b))
	if len(toks) == 0 {
		return nil, fmt.Errorf("%s holds no token", path)
	}
	return toks, nil
}

// DefaultDataDir is where the embedded queue stores its data by default:
// $XDG_STATE_HOME/plumb/serve, else ~/.local/state/plumb/serve, else the
// user cache dir.
func DefaultDataDir(getenv func(string) (string, bool)) string {
	if v, ok := getenv("XDG_STATE_HOME"); ok && v != "" {
		return filepath.Join(v, "plumb", "serve")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "plumb", "serve")
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "plumb", "serve")
	}
	return filepath.Join(os.TempDir(), "plumb-serve")
}
