package oauthflow_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/plumbhq/plumb/internal/oauthflow"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, oauthflow.KeySize) }

func TestKeyFromEnv(t *testing.T) {
	good := base64.StdEncoding.EncodeToString(testKey(7))
	env := map[string]string{
		"GOOD":     good,
		"RAWURL":   base64.RawURLEncoding.EncodeToString(testKey(7)),
		"SPACES":   "  " + good + "\n",
		"SHORT":    base64.StdEncoding.EncodeToString([]byte("sixteen-bytes-ok")),
		"NOTB64":   "not*base64*at*all-hunter2",
		"EMPTY":    "",
		"OVERLONG": base64.StdEncoding.EncodeToString(make([]byte, 64)),
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, name := range []string{"GOOD", "RAWURL", "SPACES"} {
		k, err := oauthflow.KeyFromEnv(lookup, name)
		if err != nil || !bytes.Equal(k, testKey(7)) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, want := range map[string]string{
		"MISSING":  "MISSING is not set",
		"EMPTY":    "EMPTY is not set",
		"SHORT":    "SHORT decodes to 16 bytes, want 32",
		"OVERLONG": "decodes to 64 bytes",
		"NOTB64":   "NOTB64 is not valid base64",
	} {
		_, err := oauthflow.KeyFromEnv(lookup, name)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "openssl rand -base64 32") {
			t.Errorf("%s: err = %v, want %q", name, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error shows the value: %v", name, err)
		}
	}
}

func TestEncryptedFileStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tokens")
	if _, err := oauthflow.NewEncryptedFileStore(dir, []byte("short")); err == nil || !strings.Contains(err.Error(), "is 5 bytes, want 32") {
		t.Fatalf("short key: %v", err)
	}
	s, err := oauthflow.NewEncryptedFileStore(dir, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := s.Load("k"); tok != nil || err != nil {
		t.Fatalf("absent: %v %v", tok, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatal("Load created the directory")
	}
	tok := &oauth2.Token{AccessToken: "AT-plaintext-123456", RefreshToken: "RT-plaintext-654321", TokenType: "Bearer", Expiry: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	if err := s.Save("k", tok); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load("k")
	if err != nil || got.AccessToken != tok.AccessToken || got.RefreshToken != tok.RefreshToken || !got.Expiry.Equal(tok.Expiry) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	fi, err := os.Stat(s.Path("k"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode: %v %v", fi, err)
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v", di.Mode().Perm())
	}
	first, _ := os.ReadFile(s.Path("k"))
	assertNoSecrets(t, "token file", string(first), tok.AccessToken, tok.RefreshToken, "access_token", "refresh_token")

	// A fresh nonce per write: the same token encrypts differently.
	if err := s.Save("k", tok); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(s.Path("k"))
	if bytes.Equal(first, second) {
		t.Fatal("two writes of the same token gave the same bytes")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("leftover files: %v", entries)
	}

	// A wrong key is a clear error, the file stays as it was.
	wrong, _ := oauthflow.NewEncryptedFileStore(dir, testKey(2))
	if got, err := wrong.Load("k"); got != nil || !errors.Is(err, oauthflow.ErrWrongKey) || !strings.Contains(err.Error(), "PLUMB_TOKEN_KEY") {
		t.Fatalf("wrong key: %v %v", got, err)
	}
	if err := wrong.Check("k"); !errors.Is(err, oauthflow.ErrWrongKey) {
		t.Fatalf("Check with the wrong key: %v", err)
	}
	if err := s.Check("k", "absent"); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if after, _ := os.ReadFile(s.Path("k")); !bytes.Equal(after, second) {
		t.Fatal("a failed load changed the file")
	}

	// A file moved under another key's name does not decrypt (the key is
	// authenticated).
	if err := os.WriteFile(s.Path("other"), second, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load("other"); !errors.Is(err, oauthflow.ErrWrongKey) {
		t.Fatalf("swapped file: %v", err)
	}
	// Tampered, truncated and foreign files are errors, not panics.
	for name, b := range map[string][]byte{
		"flipped":   append(append([]byte(nil), second[:len(second)-1]...), second[len(second)-1]^1),
		"truncated": second[:20],
		"plain":     []byte(`{"access_token":"x"}`),
		"empty":     nil,
	} {
		if err := os.WriteFile(s.Path(name), b, 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Load(name); got != nil || err == nil {
			t.Errorf("%s: %v %v", name, got, err)
		}
	}

	if err := s.Delete("k"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("k"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Load("k"); got != nil || err != nil {
		t.Fatalf("after delete: %v %v", got, err)
	}
	if err := s.Save("k", nil); err == nil {
		t.Fatal("nil token saved")
	}
}

func TestEncryptedFileStoreConcurrent(t *testing.T) {
	s, err := oauthflow.NewEncryptedFileStore(t.TempDir(), testKey(3))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if err := s.Save("k", &oauth2.Token{AccessToken: strings.Repeat("a", i+1)}); err != nil {
					t.Error(err)
				}
				if tok, err := s.Load("k"); err != nil || tok == nil {
					t.Errorf("load: %v %v", tok, err)
				}
			}
		}()
	}
	wg.Wait()
}
