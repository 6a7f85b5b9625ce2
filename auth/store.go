package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/oauth2"

	"github.com/plumbhq/plumb/internal/atomicfile"
)

// TokenStore persists OAuth2 tokens: authorization_code tokens (required)
// and, when given to a client_credentials Authenticator, its cached token.
// Implementations must be safe for concurrent use.
type TokenStore interface {
	// Load returns the token saved under key, or (nil, nil) when absent.
	Load(key string) (*oauth2.Token, error)
	// Save stores t under key, replacing what was there.
	Save(key string, t *oauth2.Token) error
	// Delete removes the token under key; deleting an absent key is not an
	// error.
	Delete(key string) error
}

// SharedTokenStore is a TokenStore several processes use at once (the
// instances of a cluster). An oauth2 authenticator over one re-reads the
// store before renewing a token — another instance may have renewed it —
// and renews under the store's lock, so the whole cluster fetches about one
// token per expiry window; a token the API rejects (401) anywhere is
// replaced once, and the others pick the new one up from the store.
type SharedTokenStore interface {
	TokenStore
	// Lock holds key's renewal lock until unlock is called (a store with
	// leases may also let it expire). It honours ctx while waiting.
	Lock(ctx context.Context, key string) (unlock func(), err error)
}

// StoreKey is the identity under which the tokens of cfg are stored: a
// SHA-256 hex digest of the type, grant, token URL, client ID and sorted
// scopes. The client secret is not part of it (rotating the secret keeps a
// login), and no input can be read back from the key.
func StoreKey(cfg Config) string {
	grant := cfg.Grant
	if cfg.Type == TypeOAuth2 && grant == "" {
		grant = GrantClientCredentials
	}
	scopes := slices.Clone(cfg.Scopes)
	slices.Sort(scopes)
	h := sha256.New()
	// Length-prefixed fields so no two inputs collide by concatenation.
	for _, f := range []string{"plumb-auth-v1", cfg.Type, grant, cfg.TokenURL, cfg.ClientID, strings.Join(scopes, " ")} {
		fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// FileStore is a TokenStore keeping one JSON file per key in a directory.
// The directory is created with mode 0700 and files with mode 0600; writes
// are atomic (temporary file, fsync, rename), so a reader never sees a
// partial token. A directory or token file that already exists with looser
// permissions is tightened to 0700 / 0600 before use, and one owned by
// another user is refused (on Unix), so tokens are never kept where others
// can read or replace them.
type FileStore struct {
	dir string
	mu  sync.Mutex    // serialises writers within this process
	gen atomic.Uint64 // Version: saves and deletes through this value
}

var (
	_ VersionedTokenStore = (*FileStore)(nil)
	_ SwappingTokenStore  = (*FileStore)(nil)
)

// NewFileStore returns a FileStore under dir. Nothing is created until the
// first Save.
func NewFileStore(dir string) *FileStore { return &FileStore{dir: dir} }

// Dir returns the directory of the store.
func (s *FileStore) Dir() string { return s.dir }

// Path returns the file that holds key. Keys are hashed (SHA-256 hex) into
// file names, so any string is a valid key.
func (s *FileStore) Path(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(s.dir, hex.EncodeToString(sum[:])+".json")
}

// secureDir checks the store's directory, if it exists: it must be a
// directory of the current user; group and other permissions are removed.
func (s *FileStore) secureDir() error {
	fi, err := os.Stat(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("auth: token store: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("auth: token store: %s is not a directory", s.dir)
	}
	return securePath(s.dir, fi, 0o700, "token directory")
}

// securePath refuses path when another user owns it and otherwise removes
// any permission beyond want.
func securePath(path string, fi fs.FileInfo, want fs.FileMode, what string) error {
	if uid, mine := ownedByMe(fi); !mine {
		return fmt.Errorf("auth: token store: %s %s belongs to user id %d, not to you: plumb does not keep tokens where another user can read or replace them; use a directory of your own (--token-dir or PLUMB_TOKEN_DIR)", what, path, uid)
	}
	if fi.Mode().Perm()&^want != 0 {
		if err := os.Chmod(path, fi.Mode().Perm()&want); err != nil {
			return fmt.Errorf("auth: token store: %s %s is open to other users (mode %#o) and could not be restricted: %w", what, path, fi.Mode().Perm(), err)
		}
	}
	return nil
}

// Load implements TokenStore.
func (s *FileStore) Load(key string) (*oauth2.Token, error) {
	if err := s.secureDir(); err != nil {
		return nil, err
	}
	f, err := os.Open(s.Path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("auth: token store: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("auth: token store: %w", err)
	}
	if err := securePath(s.Path(key), fi, 0o600, "token file"); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("auth: token store: %w", err)
	}
	t, err := decodeToken(b)
	if err != nil {
		return nil, fmt.Errorf("auth: token store: %s is not a token file: %v", s.Path(key), jsonErrNoData(err))
	}
	return t, nil
}

// jsonErrNoData keeps a JSON error's position but drops the offending
// value, which could be part of a secret.
func jsonErrNoData(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at offset %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %s has the wrong type", te.Field)
	}
	return "invalid JSON"
}

// Save implements TokenStore.
func (s *FileStore) Save(key string, t *oauth2.Token) error {
	if t == nil {
		return errors.New("auth: token store: nil token")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saveLocked(key, t)
}

// Swap implements SwappingTokenStore; it is atomic with respect to the
// other writes through s.
func (s *FileStore) Swap(key string, old, t *oauth2.Token) (bool, error) {
	if t == nil {
		return false, errors.New("auth: token store: nil token")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.Load(key)
	if err != nil || !SameToken(cur, old) {
		return false, err
	}
	return true, s.saveLocked(key, t)
}

// Version implements VersionedTokenStore: it moves with every save or
// delete through s (not with writes by other processes).
func (s *FileStore) Version(string) uint64 { return s.gen.Load() }

func (s *FileStore) saveLocked(key string, t *oauth2.Token) error {
	b, err := json.MarshalIndent(record(t), "", "  ")
	if err != nil {
		return fmt.Errorf("auth: token store: %w", err)
	}
	defer s.gen.Add(1)
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("auth: token store: %w", err)
	}
	if err := s.secureDir(); err != nil {
		return err
	}
	if err := atomicfile.Write(s.Path(key), b, 0o600); err != nil {
		return fmt.Errorf("auth: token store: %w", err)
	}
	return nil
}

// Delete implements TokenStore.
func (s *FileStore) Delete(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.gen.Add(1)
	if err := os.Remove(s.Path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("auth: token store: %w", err)
	}
	return nil
}

// MemoryStore is an in-memory TokenStore, for tests and embedders that keep
// tokens elsewhere. The zero value is ready to use.
type MemoryStore struct {
	mu     sync.Mutex
	tokens map[string]oauth2.Token
	gen    uint64
}

var (
	_ VersionedTokenStore = (*MemoryStore)(nil)
	_ SwappingTokenStore  = (*MemoryStore)(nil)
)

// Load implements TokenStore. It returns a copy.
func (m *MemoryStore) Load(key string) (*oauth2.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[key]
	if !ok {
		return nil, nil
	}
	return &t, nil
}

// Save implements TokenStore. It keeps a copy.
func (m *MemoryStore) Save(key string, t *oauth2.Token) error {
	if t == nil {
		return errors.New("auth: token store: nil token")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.saveLocked(key, t)
	return nil
}

func (m *MemoryStore) saveLocked(key string, t *oauth2.Token) {
	if m.tokens == nil {
		m.tokens = make(map[string]oauth2.Token)
	}
	m.tokens[key] = *t
	m.gen++
}

// Swap implements SwappingTokenStore.
func (m *MemoryStore) Swap(key string, old, t *oauth2.Token) (bool, error) {
	if t == nil {
		return false, errors.New("auth: token store: nil token")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var cur *oauth2.Token
	if c, ok := m.tokens[key]; ok {
		cur = &c
	}
	if !SameToken(cur, old) {
		return false, nil
	}
	m.saveLocked(key, t)
	return true, nil
}

// Version implements VersionedTokenStore.
func (m *MemoryStore) Version(string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gen
}

// Delete implements TokenStore.
func (m *MemoryStore) Delete(key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.tokens, key)
	m.gen++
	return nil
}
