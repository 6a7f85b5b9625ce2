package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/store"
)

// cacheLockWait is how long --cache waits for another process's lock on
// the file before giving up.
const cacheLockWait = 2 * time.Second

// storeFlags are the flags naming where answers and tokens are kept,
// shared by run and try.
type storeFlags struct {
	cache    string
	cacheBad string
	tokenDir string
}

func (f *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.cache, "cache", "", "keep the answers fallback cache: links and response cache: reuse in the bbolt database `FILE`, across runs")
	fs.StringVar(&f.cacheBad, "cache-bad", "fail", "when the --cache file is damaged: fail (exit 2, the file is left alone) or move (rename it to FILE.corrupt-TIME and start with an empty cache)")
	registerTokenDir(fs, &f.tokenDir)
}

func registerTokenDir(fs *flag.FlagSet, dir *string) {
	fs.StringVar(dir, "token-dir", "", "`DIR` holding OAuth2 tokens from plumb auth login (default $PLUMB_TOKEN_DIR, else <user config dir>/plumb/tokens)")
}

// tokenDir returns the token directory: flag, else $PLUMB_TOKEN_DIR, else
// os.UserConfigDir()/plumb/tokens.
func tokenDir(s *stdio, flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if d, ok := s.env("PLUMB_TOKEN_DIR"); ok && d != "" {
		return d, nil
	}
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no token directory: give --token-dir or set PLUMB_TOKEN_DIR (%v)", err)
	}
	return filepath.Join(base, "plumb", "tokens"), nil
}

// stores are the opened --cache and token store of a run.
type stores struct {
	cache  *store.Bolt
	tokens *loginTokens
}

// open opens the --cache file (waiting at most cacheLockWait for another
// process's lock) and the token store. Call close when done, also after an
// error.
func (f *storeFlags) open(s *stdio) (*stores, error) {
	st := &stores{}
	if f.cacheBad != "fail" && f.cacheBad != "move" {
		return st, fmt.Errorf("--cache-bad must be fail or move, got %q", f.cacheBad)
	}
	if f.cache != "" {
		db, err := store.OpenBoltWith(f.cache, store.BoltOptions{Timeout: cacheLockWait, MoveCorrupt: f.cacheBad == "move"})
		var ce *store.CorruptError
		if errors.As(err, &ce) {
			return st, fmt.Errorf("--cache: %w; plumb will not use it: delete it or move it away to start with an empty cache, or give --cache-bad=move to have plumb rename it to %s.corrupt-TIME", err, f.cache)
		}
		if err != nil {
			return st, fmt.Errorf("--cache: %w", err)
		}
		if db.MovedTo() != "" {
			s.errorf("warning: --cache: %s was damaged; moved it to %s and started with an empty cache", f.cache, db.MovedTo())
		}
		st.cache = db
	}
	if dir, err := tokenDir(s, f.tokenDir); err == nil {
		st.tokens = &loginTokens{files: auth.NewFileStore(dir)}
	} else if f.tokenDir != "" {
		return st, err
	}
	// Without a token directory an authorization_code integration reports
	// that it needs a token store when its settings are resolved.
	return st, nil
}

// use tells the token store which auth sections' tokens come from plumb
// auth login: only those are read from and written to the token
// directory.
func (st *stores) use(settings *engine.Runner) {
	if st.tokens != nil {
		st.tokens.allow(settings.OAuth2Configs())
	}
}

func (st *stores) close() {
	if st.cache != nil {
		_ = st.cache.Close()
	}
}

// loginTokens is the token store of run and try: the token directory for
// the tokens of OAuth2 authorization_code sections (which `plumb auth login`
// put there, and which a refresh rotates), nothing for any other key.
// client_credentials tokens are fetched once per run and kept in memory, as
// without a token store, so a run never writes them to disk.
type loginTokens struct {
	files *auth.FileStore

	mu      sync.Mutex
	allowed map[string]bool
}

func (t *loginTokens) allow(cfgs []auth.Config) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.allowed = map[string]bool{}
	for _, c := range cfgs {
		if c.Type == auth.TypeOAuth2 && c.Grant == auth.GrantAuthorizationCode {
			t.allowed[auth.StoreKey(c)] = true
		}
	}
}

func (t *loginTokens) ok(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.allowed[key]
}

// Load implements auth.TokenStore.
func (t *loginTokens) Load(key string) (*oauth2.Token, error) {
	if !t.ok(key) {
		return nil, nil
	}
	return t.files.Load(key)
}

// Save implements auth.TokenStore.
func (t *loginTokens) Save(key string, tok *oauth2.Token) error {
	if !t.ok(key) {
		if tok == nil {
			return errors.New("auth: token store: nil token")
		}
		return nil
	}
	return t.files.Save(key, tok)
}

// Delete implements auth.TokenStore.
func (t *loginTokens) Delete(key string) error {
	if !t.ok(key) {
		return nil
	}
	return t.files.Delete(key)
}
