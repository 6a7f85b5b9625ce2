package oauthflow

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/oauth2"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/internal/atomicfile"
)

// KeySize is the length in bytes of an [EncryptedFileStore] key (AES-256).
const KeySize = 32

// DefaultKeyEnv is the environment variable plumb serve reads the token
// encryption key from.
const DefaultKeyEnv = "PLUMB_TOKEN_KEY"

// fileMagic starts every encrypted token file: format version 1 is
// magic | 12-byte nonce | AES-256-GCM ciphertext of the token's JSON, the
// store key being the additional authenticated data (a file copied under
// another key's name does not decrypt).
const fileMagic = "plumb-token-v1\n"

// ErrWrongKey is returned (wrapped) by [EncryptedFileStore.Load] when a
// token file does not decrypt: the key is not the one it was written with,
// or the file was altered.
var ErrWrongKey = errors.New("token file does not decrypt with this key")

// KeyFromEnv reads a base64 encoded (standard or URL alphabet, padded or
// not) 32-byte key from the environment variable name through lookup
// (os.LookupEnv). Errors name the variable and say how to make a key; they
// never include the value.
func KeyFromEnv(lookup func(string) (string, bool), name string) ([]byte, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	how := "give a base64 encoded 32-byte key, e.g. the output of `openssl rand -base64 32`"
	v, ok := lookup(name)
	v = strings.TrimSpace(v)
	if !ok || v == "" {
		return nil, fmt.Errorf("oauthflow: token encryption key: %s is not set: %s", name, how)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(v); err == nil {
			if len(k) != KeySize {
				return nil, fmt.Errorf("oauthflow: token encryption key: %s decodes to %d bytes, want %d: %s", name, len(k), KeySize, how)
			}
			return k, nil
		}
	}
	return nil, fmt.Errorf("oauthflow: token encryption key: %s is not valid base64: %s", name, how)
}

// EncryptedFileStore is an [auth.TokenStore] keeping each token in its own
// file, encrypted with AES-256-GCM (a fresh random nonce per write, the
// store key authenticated with it). The directory is created with mode
// 0700 and files with mode 0600; writes are atomic (temporary file, fsync,
// rename), so a reader never sees a partial token. A file that does not
// decrypt is an error wrapping [ErrWrongKey], never a silent reset: the
// stored token is left as it is.
//
// It is safe for concurrent use. Refreshed tokens are saved to it by the
// oauth2 authorization_code authenticator like tokens in an
// [auth.FileStore].
type EncryptedFileStore struct {
	dir  string
	aead cipher.AEAD
	mu   sync.Mutex    // serialises writers within this process
	gen  atomic.Uint64 // Version: saves and deletes through this value
}

var (
	_ auth.VersionedTokenStore = (*EncryptedFileStore)(nil)
	_ auth.SwappingTokenStore  = (*EncryptedFileStore)(nil)
)

// NewEncryptedFileStore returns a store under dir encrypting with key,
// which must be [KeySize] bytes (see [KeyFromEnv]). Nothing is created
// until the first Save. The key is copied.
func NewEncryptedFileStore(dir string, key []byte) (*EncryptedFileStore, error) {
	if dir == "" {
		return nil, errors.New("oauthflow: token store needs a directory")
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("oauthflow: token encryption key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(append([]byte(nil), key...))
	if err != nil {
		return nil, fmt.Errorf("oauthflow: token encryption key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("oauthflow: token encryption key: %w", err)
	}
	return &EncryptedFileStore{dir: dir, aead: aead}, nil
}

// Dir returns the directory of the store.
func (s *EncryptedFileStore) Dir() string { return s.dir }

// Path returns the file that holds key. Keys are hashed (SHA-256 hex) into
// file names, so any string is a valid key and none can be read back.
func (s *EncryptedFileStore) Path(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(s.dir, hex.EncodeToString(sum[:])+".token")
}

// Load implements auth.TokenStore: (nil, nil) when no token is stored
// under key.
func (s *EncryptedFileStore) Load(key string) (*oauth2.Token, error) {
	path := s.Path(key)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("oauthflow: token store: %w", err)
	}
	plain, err := s.open(key, b)
	if err != nil {
		return nil, fmt.Errorf("oauthflow: token store: %s: %w", path, err)
	}
	t, err := auth.UnmarshalToken(plain)
	clear(plain)
	if err != nil {
		// Authenticated but not a token: a bug, not an attack. Say no more
		// than that (the content is secret).
		return nil, fmt.Errorf("oauthflow: token store: %s decrypts to something that is not a token", path)
	}
	return t, nil
}

func (s *EncryptedFileStore) open(key string, b []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if !strings.HasPrefix(string(b), fileMagic) {
		return nil, errors.New("not an encrypted plumb token file")
	}
	b = b[len(fileMagic):]
	if len(b) < ns+s.aead.Overhead() {
		return nil, errors.New("encrypted token file is truncated")
	}
	plain, err := s.aead.Open(nil, b[:ns], b[ns:], []byte(key))
	if err != nil {
		return nil, fmt.Errorf("%w (was %s changed since the token was stored, or the file altered?); the file is left as it is: restore the key, or delete the file and log in again", ErrWrongKey, DefaultKeyEnv)
	}
	return plain, nil
}

// Save implements auth.TokenStore: it encrypts t (and its refusal, see
// auth.RefusalOf) with a new random nonce and atomically replaces the file
// of key.
func (s *EncryptedFileStore) Save(key string, t *oauth2.Token) error {
	if t == nil {
		return errors.New("oauthflow: token store: nil token")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saveLocked(key, t)
}

// Swap implements auth.SwappingTokenStore; it is atomic with respect to
// the other writes through s.
func (s *EncryptedFileStore) Swap(key string, old, t *oauth2.Token) (bool, error) {
	if t == nil {
		return false, errors.New("oauthflow: token store: nil token")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.Load(key)
	if err != nil || !auth.SameToken(cur, old) {
		return false, err
	}
	return true, s.saveLocked(key, t)
}

// Version implements auth.VersionedTokenStore: it moves with every save
// or delete through s, so the runners sharing s with the install flow
// use a new login from their next request.
func (s *EncryptedFileStore) Version(string) uint64 { return s.gen.Load() }

func (s *EncryptedFileStore) saveLocked(key string, t *oauth2.Token) error {
	plain, err := auth.MarshalToken(t)
	if err != nil {
		return fmt.Errorf("oauthflow: token store: %w", err)
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("oauthflow: token store: %w", err)
	}
	out := make([]byte, 0, len(fileMagic)+len(nonce)+len(plain)+s.aead.Overhead())
	out = append(out, fileMagic...)
	out = append(out, nonce...)
	out = s.aead.Seal(out, nonce, plain, []byte(key))
	clear(plain)

	defer s.gen.Add(1)
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("oauthflow: token store: %w", err)
	}
	if err := atomicfile.Write(s.Path(key), out, 0o600); err != nil {
		return fmt.Errorf("oauthflow: token store: %w", err)
	}
	return nil
}

// Delete implements auth.TokenStore.
func (s *EncryptedFileStore) Delete(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.gen.Add(1)
	if err := os.Remove(s.Path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("oauthflow: token store: %w", err)
	}
	return nil
}

// Check loads the tokens stored under keys (auth.StoreKey of each
// authorization_code section) and returns the first failure, an error
// wrapping [ErrWrongKey] when the key is not the one they were written
// with, so a service can refuse to start with the wrong key instead of
// failing at the first lead. Absent tokens are not an error.
func (s *EncryptedFileStore) Check(keys ...string) error {
	for _, k := range keys {
		if _, err := s.Load(k); err != nil {
			return err
		}
	}
	return nil
}
