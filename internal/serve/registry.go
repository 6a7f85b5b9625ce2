package serve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/engine/eventlog"
	"github.com/plumbhq/plumb/internal/oauthflow"
	"github.com/plumbhq/plumb/steps"
)

// Discover lists the integration files of dir, sorted:
//
//   - every DIR/*.yaml and DIR/*.yml, except test files (*.test.yaml) and
//     settings files (any name containing "settings");
//   - every DIR/NAME/integration.yaml (or .yml), the layout of examples/.
//
// Each file's settings file is SettingsFile(path).
func Discover(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		if e.IsDir() {
			for _, f := range []string{"integration.yaml", "integration.yml"} {
				p := filepath.Join(dir, name, f)
				if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
					out = append(out, p)
					break
				}
			}
			continue
		}
		ext := filepath.Ext(name)
		if ext != ".yaml" && ext != ".yml" {
			continue
		}
		base := strings.TrimSuffix(name, ext)
		if strings.HasSuffix(base, ".test") || strings.Contains(base, "settings") {
			continue
		}
		out = append(out, filepath.Join(dir, name))
	}
	sort.Strings(out)
	return out, nil
}

// SettingsFile is where the settings of the integration file path are read
// from, when that file exists: NAME/settings.yaml beside NAME/integration.yaml,
// and X.settings.yaml beside X.yaml.
func SettingsFile(path string) string {
	dir, name := filepath.Split(path)
	ext := filepath.Ext(name)
	base := strings.TrimSuffix(name, ext)
	if base == "integration" {
		return filepath.Join(dir, "settings"+ext)
	}
	return filepath.Join(dir, base+".settings"+ext)
}

// entry is one integration file and the version of it that runs.
type entry struct {
	file string

	mu       sync.RWMutex
	name     string // the running plan's name ("" until one loaded)
	runner   *engine.Runner
	hook     *boundHook // the webhook receiver (hooks.go), nil without one
	steps    []string
	version  string // sha256 prefix of the file and settings that loaded
	loadedAt time.Time
	loadErr  string // the last load's error ("" when it loaded)
	failedAt time.Time
}

// loadError is the last load's error ("" when it loaded).
func (e *entry) loadError() string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.loadErr
}

// current returns the running runner (nil if none).
func (e *entry) current() *engine.Runner {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.runner
}

// IntegrationInfo is what GET /v1/integrations reports per file.
type IntegrationInfo struct {
	Name     string    `json:"name,omitempty"`
	File     string    `json:"file"`
	Version  string    `json:"version,omitempty"`
	Steps    []string  `json:"steps"`
	Health   string    `json:"health"` // ok, stale (an older version runs; the file does not load) or failed
	LoadedAt time.Time `json:"loaded_at,omitzero"`
	Error    string    `json:"error,omitempty"`
	FailedAt time.Time `json:"failed_at,omitzero"`
	// Hook is the path of the integration's webhook receiver, if it has one.
	Hook string `json:"hook,omitempty"`
}

func (e *entry) info() IntegrationInfo {
	e.mu.RLock()
	defer e.mu.RUnlock()
	in := IntegrationInfo{Name: e.name, File: e.file, Version: e.version, Steps: e.steps,
		LoadedAt: e.loadedAt, Error: e.loadErr, FailedAt: e.failedAt}
	if in.Steps == nil {
		in.Steps = []string{}
	}
	if e.hook != nil {
		in.Hook = e.hook.path
	}
	switch {
	case e.runner == nil:
		in.Health = "failed"
	case e.loadErr != "":
		in.Health = "stale"
	default:
		in.Health = "ok"
	}
	return in
}

// registry holds the integrations by file and by name.
type registry struct {
	mu      sync.RWMutex
	entries map[string]*entry // by file
	byName  map[string]*entry
}

func (r *registry) lookup(name string) *entry {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byName[name]
}

func (r *registry) list() []*entry {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*entry, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].file < out[j].file })
	return out
}

// loaded reports whether every file has a running version.
func (r *registry) loaded() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, e := range r.entries {
		if e.current() == nil {
			return false
		}
	}
	return true
}

// fileSet is an integration file's bytes and its settings file's, read
// once per reload, and the version they make together.
type fileSet struct {
	src      []byte
	settings []byte // nil when there is no settings file
	version  string // the first 12 hex digits of their SHA-256
}

// readFiles reads an integration file and its settings file.
func readFiles(file string) (*fileSet, error) {
	src, err := steps.ReadFile(file)
	if err != nil {
		return nil, err
	}
	fs := &fileSet{src: src}
	h := sha256.New()
	h.Write(src)
	b, err := steps.ReadFile(SettingsFile(file))
	switch {
	case err == nil:
		h.Write([]byte{0})
		h.Write(b)
		fs.settings = b
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("settings: %w", err)
	}
	fs.version = hex.EncodeToString(h.Sum(nil))[:12]
	return fs, nil
}

// bind compiles and binds one file with its settings, and its webhook
// receiver if it has one. The file is parsed once, here.
func (s *Server) bind(file string, fs *fileSet) (*engine.Runner, *boundHook, error) {
	values, pos := map[string]any{}, map[string]steps.Pos(nil)
	if fs.settings != nil {
		// the library's reader: errors are positioned and never quote
		// the file (it holds secrets)
		sf, err := engine.ParseSettings(SettingsFile(file), fs.settings)
		if err != nil {
			return nil, nil, err
		}
		values, pos = sf.Values, sf.Pos
	}
	l := s.log.With("component", "engine")
	opts := []engine.Option{engine.WithLogger(l), engine.WithEvents(eventlog.New(l))}
	opts = append(opts, s.engineOptions()...)
	s.metrics.compiles.Inc()
	plan, err := engine.Parse(file, fs.src, opts...)
	if err != nil {
		return nil, nil, err
	}
	if s.sandboxURL != "" {
		if _, ok := plan.Setting("base_url"); ok {
			values["base_url"] = s.sandboxURL
		}
	}
	cfg := engine.Config{Values: values, ValuePos: pos, LookupEnv: s.cfg.LookupEnv,
		LoginHint: "log in through the service's /v1/oauth/" + plan.Name() + "/start"}
	if s.tokens != nil {
		cfg.Tokens = s.tokens
	}
	s.shareInCluster(&cfg)
	r, err := plan.Bind(cfg)
	if err != nil {
		return nil, nil, err
	}
	hook, err := bindHook(r)
	if err != nil {
		r.Close(context.Background())
		return nil, nil, err
	}
	return r, hook, nil
}

// ReloadReport says what a Reload did.
type ReloadReport struct {
	Loaded  []string          // files (re)loaded
	Kept    []string          // files unchanged
	Failed  map[string]string // file → error (an older version keeps running if there was one)
	Removed []string          // files gone from the directory (their runners closed)
}

// Reload re-reads the directory: new and changed files are loaded and bound
// and replace the running version; a file that fails to load keeps its old
// version running and is reported (GET /v1/integrations, the log); files
// that disappeared are dropped. Old runners are closed once their running
// leads finish (their partial batches are sent at once). Unchanged files
// (same bytes, same settings file) keep their runner and its caches.
func (s *Server) Reload() (ReloadReport, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	rep := ReloadReport{Failed: map[string]string{}}
	files, err := Discover(s.cfg.Dir)
	if err != nil {
		s.log.Error("reload: reading the directory", "dir", s.cfg.Dir, "err", err)
		return rep, fmt.Errorf("serve: reading %s: %w", s.cfg.Dir, err)
	}
	seen := map[string]bool{}
	cands := make([]*candidate, 0, len(files))
	for _, f := range files {
		seen[f] = true
		s.reg.mu.RLock()
		e := s.reg.entries[f]
		s.reg.mu.RUnlock()
		if e == nil {
			e = &entry{file: f}
		}
		cands = append(cands, s.candidate(e))
	}
	refuseSharedClaims(cands)
	var toClose []*engine.Runner
	for _, c := range cands {
		e, f, r, hook, version, err := c.e, c.e.file, c.r, c.hook, c.version, c.err
		if err == nil && c.kept {
			rep.Kept = append(rep.Kept, f)
			s.register(e)
			continue
		}
		if err != nil {
			msg := err.Error()
			e.mu.Lock()
			e.loadErr, e.failedAt = msg, time.Now().UTC()
			running := e.runner != nil
			e.mu.Unlock()
			rep.Failed[f] = msg
			s.metrics.loadErrors.WithLabelValues(f).Inc()
			if running {
				s.log.Error("integration did not load; the previous version keeps running", "file", f, "err", msg)
			} else {
				s.log.Error("integration did not load", "file", f, "err", msg)
			}
			s.register(e)
			continue
		}
		e.mu.Lock()
		old, oldName := e.runner, e.name
		e.runner, e.name, e.steps, e.version = r, r.Plan().Name(), r.Plan().StepNames(), version
		e.hook = hook
		e.loadedAt, e.loadErr, e.failedAt = time.Now().UTC(), "", time.Time{}
		e.mu.Unlock()
		if old != nil {
			toClose = append(toClose, old)
		}
		s.reg.mu.Lock()
		if oldName != "" && oldName != e.name && s.reg.byName[oldName] == e {
			delete(s.reg.byName, oldName)
		}
		s.reg.mu.Unlock()
		s.register(e)
		rep.Loaded = append(rep.Loaded, f)
		s.log.Info("integration loaded", "file", f, "integration", e.name, "version", version, "steps", e.steps)
		s.warnLoginCallback(f, e.name, r)
	}
	s.reg.mu.Lock()
	for f, e := range s.reg.entries {
		if seen[f] {
			continue
		}
		delete(s.reg.entries, f)
		if s.reg.byName[e.name] == e {
			delete(s.reg.byName, e.name)
		}
		if r := e.current(); r != nil {
			toClose = append(toClose, r)
		}
		rep.Removed = append(rep.Removed, f)
		s.log.Info("integration removed", "file", f, "integration", e.name)
	}
	s.reg.mu.Unlock()
	for _, r := range toClose {
		s.closing.Add(1)
		go func() {
			defer s.closing.Done()
			r.Close(context.Background()) // waits for its running leads; new ones use the new runner
		}()
	}
	s.updateHealthMetrics()
	s.refreshSyncs()
	return rep, nil
}

// candidate is one file of a Reload: the version just bound (or why it
// did not bind) and the entry it would replace.
type candidate struct {
	e       *entry
	r       *engine.Runner
	hook    *boundHook
	version string
	err     error
	// kept: the files are unchanged and their running version loaded
	// cleanly, so r and hook are the running ones (not compiled again,
	// never closed here)
	kept bool
}

// candidate reads e's files and compiles them only when their bytes
// changed since the running version (or it did not load cleanly).
func (s *Server) candidate(e *entry) *candidate {
	c := &candidate{e: e}
	fs, err := readFiles(e.file)
	if err != nil {
		c.err = err
		return c
	}
	c.version = fs.version
	if r := e.current(); r != nil && fs.version == e.version && e.loadError() == "" {
		c.kept, c.r, c.hook = true, r, e.currentHook()
		return c
	}
	c.r, c.hook, c.err = s.bind(e.file, fs)
	return c
}

// refuseSharedClaims fails every candidate whose integration name or hook
// path another file also claims: the candidates that bound, and the
// running versions of files that did not (they keep running). Every file
// of a clash is refused, each error naming the others, so the order files
// load in never decides which one is served.
func refuseSharedClaims(cands []*candidate) {
	claims := map[string][]string{} // "name x" or "webhook path /p" → files
	claim := func(key, file string) {
		if !slices.Contains(claims[key], file) {
			claims[key] = append(claims[key], file)
		}
	}
	for _, c := range cands {
		name, hook := "", (*boundHook)(nil)
		if c.err == nil {
			name, hook = c.r.Plan().Name(), c.hook
		} else if c.e.current() != nil {
			c.e.mu.RLock()
			name, hook = c.e.name, c.e.hook
			c.e.mu.RUnlock()
		}
		if name != "" {
			claim("integration name "+strconv.Quote(name), c.e.file)
		}
		if hook != nil {
			claim("webhook path "+hook.path, c.e.file)
		}
	}
	for _, c := range cands {
		if c.err != nil {
			continue
		}
		keys := []string{"integration name " + strconv.Quote(c.r.Plan().Name())}
		if c.hook != nil {
			keys = append(keys, "webhook path "+c.hook.path)
		}
		var errs []error
		for _, k := range keys {
			if files := claims[k]; len(files) > 1 {
				errs = append(errs, fmt.Errorf("%s: %s is claimed by %s: each of them is refused until one changes; a version already running keeps running (give each file its own name and each webhook its own path:)",
					c.e.file, k, strings.Join(files, " and ")))
			}
		}
		if len(errs) > 0 {
			if !c.kept {
				c.r.Close(context.Background())
			}
			c.r, c.hook, c.kept, c.err = nil, nil, false, errors.Join(errs...)
		}
	}
}

// register files e under its file and its name.
func (s *Server) register(e *entry) {
	s.reg.mu.Lock()
	defer s.reg.mu.Unlock()
	s.reg.entries[e.file] = e
	e.mu.RLock()
	name := e.name
	e.mu.RUnlock()
	if name != "" {
		if cur := s.reg.byName[name]; cur == nil || cur == e {
			s.reg.byName[name] = e
		}
	}
}

// warnLoginCallback warns, at load, about an authorization_code section
// whose redirect_url the file sets: that is the loopback callback of
// plumb auth login; the service's install flow sends the partner to its
// own callback instead, and both must be registered with the partner.
func (s *Server) warnLoginCallback(file, name string, r *engine.Runner) {
	base := s.cfg.PublicURL
	if base == "" {
		base = "http://" + s.cfg.Addr
	}
	for _, c := range r.OAuth2Configs() {
		if c.Type != auth.TypeOAuth2 || c.Grant != auth.GrantAuthorizationCode || c.RedirectURL == "" {
			continue
		}
		s.log.Warn("auth: redirect_url is plumb auth login's callback; the install flow uses the service's callback instead (register both with the partner)",
			"file", file, "integration", name, "redirect_url", c.RedirectURL,
			"callback", strings.TrimRight(base, "/")+oauthflow.Prefix+url.PathEscape(name)+"/callback")
	}
}
