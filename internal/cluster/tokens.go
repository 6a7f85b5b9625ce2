package cluster

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/oauth2"

	"github.com/plumbhq/plumb/auth"
)

// TokenStore is an auth.SharedTokenStore in the cluster's KV buckets.
type TokenStore struct {
	kv, locks jetstream.KeyValue
	aead      cipher.AEAD // nil: plain JSON
	lease     time.Duration
	op        time.Duration
	owner     string
	gen       atomic.Uint64 // Version: saves and deletes through this value
}

var (
	_ auth.SharedTokenStore    = (*TokenStore)(nil)
	_ auth.VersionedTokenStore = (*TokenStore)(nil)
	_ auth.SwappingTokenStore  = (*TokenStore)(nil)
)

func newTokenStore(kv, locks jetstream.KeyValue, cfg Config, owner string) (*TokenStore, error) {
	s := &TokenStore{kv: kv, locks: locks, lease: cfg.Lease, op: cfg.OpTimeout, owner: owner}
	if len(cfg.Key) > 0 {
		if len(cfg.Key) != 32 {
			return nil, fmt.Errorf("cluster: token key: want 32 bytes, got %d", len(cfg.Key))
		}
		block, err := aes.NewCipher(cfg.Key)
		if err != nil {
			return nil, fmt.Errorf("cluster: token key: %w", err)
		}
		if s.aead, err = cipher.NewGCM(block); err != nil {
			return nil, fmt.Errorf("cluster: token key: %w", err)
		}
	}
	return s, nil
}

// Encrypted reports whether tokens are sealed before they reach NATS.
func (s *TokenStore) Encrypted() bool { return s.aead != nil }

// keyRE is what a KV key may be; auth.StoreKey gives hex digests, other
// keys are hashed.
var keyRE = regexp.MustCompile(`^[-_=a-zA-Z0-9]{1,128}$`)

func kvKey(key string) string {
	if keyRE.MatchString(key) {
		return key
	}
	return "h" + hashHex(key)
}

// Load implements auth.TokenStore.
func (s *TokenStore) Load(key string) (*oauth2.Token, error) {
	t, _, err := s.get(key)
	return t, err
}

// get reads the token under key and its revision (nil, 0 when absent).
func (s *TokenStore) get(key string) (*oauth2.Token, uint64, error) {
	ctx, cancel := opCtx(s.op)
	defer cancel()
	k := kvKey(key)
	e, err := s.kv.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("cluster: token store: %w", err)
	}
	b := e.Value()
	if s.aead != nil {
		n := s.aead.NonceSize()
		if len(b) < n {
			return nil, 0, errors.New("cluster: token store: a sealed token is too short")
		}
		if b, err = s.aead.Open(nil, b[:n], b[n:], []byte(k)); err != nil {
			return nil, 0, errors.New("cluster: token store: a token does not open with this key (PLUMB_TOKEN_KEY differs between instances?)")
		}
	}
	t, err := auth.UnmarshalToken(b)
	if err != nil {
		return nil, 0, errors.New("cluster: token store: a stored token is not valid JSON")
	}
	return t, e.Revision(), nil
}

// seal is the value stored for t under the KV key k.
func (s *TokenStore) seal(k string, t *oauth2.Token) ([]byte, error) {
	if t == nil {
		return nil, errors.New("cluster: token store: nil token")
	}
	b, err := auth.MarshalToken(t)
	if err != nil {
		return nil, fmt.Errorf("cluster: token store: %w", err)
	}
	if s.aead != nil {
		nonce := make([]byte, s.aead.NonceSize())
		_, _ = rand.Read(nonce)
		b = s.aead.Seal(nonce, nonce, b, []byte(k))
	}
	return b, nil
}

// Save implements auth.TokenStore.
func (s *TokenStore) Save(key string, t *oauth2.Token) error {
	k := kvKey(key)
	b, err := s.seal(k, t)
	if err != nil {
		return err
	}
	ctx, cancel := opCtx(s.op)
	defer cancel()
	defer s.gen.Add(1)
	if _, err := s.kv.Put(ctx, k, b); err != nil {
		return fmt.Errorf("cluster: token store: %w", err)
	}
	return nil
}

// Swap implements auth.SwappingTokenStore with the KV's compare-and-set:
// t is written at the revision old was read at, so a login saved by any
// instance in between is never overwritten.
func (s *TokenStore) Swap(key string, old, t *oauth2.Token) (bool, error) {
	k := kvKey(key)
	b, err := s.seal(k, t)
	if err != nil {
		return false, err
	}
	cur, rev, err := s.get(key)
	if err != nil || !auth.SameToken(cur, old) {
		return false, err
	}
	ctx, cancel := opCtx(s.op)
	defer cancel()
	defer s.gen.Add(1)
	if rev == 0 {
		_, err = s.kv.Create(ctx, k, b)
	} else {
		_, err = s.kv.Update(ctx, k, b, rev)
	}
	if conflict(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cluster: token store: %w", err)
	}
	return true, nil
}

// Version implements auth.VersionedTokenStore: it moves with the saves and
// deletes of this instance (a login served here is used at once by its
// runners); another instance's are seen when a token is renewed or, for a
// refused login, on every use.
func (s *TokenStore) Version(string) uint64 { return s.gen.Load() }

// Delete implements auth.TokenStore.
func (s *TokenStore) Delete(key string) error {
	ctx, cancel := opCtx(s.op)
	defer cancel()
	defer s.gen.Add(1)
	if err := s.kv.Delete(ctx, kvKey(key)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("cluster: token store: %w", err)
	}
	return nil
}

// Lock implements auth.SharedTokenStore: a lease (see the package doc).
// The returned unlock stops the lease's renewal and deletes it if it is
// still ours.
func (s *TokenStore) Lock(ctx context.Context, key string) (func(), error) {
	k := kvKey(key)
	val := []byte(s.owner)
	for {
		cctx, cancel := context.WithTimeout(ctx, s.op)
		rev, err := s.locks.Create(cctx, k, val)
		cancel()
		if err == nil {
			return s.hold(k, val, rev), nil
		}
		// Held elsewhere (a conflict), or NATS unavailable for a moment (a
		// leader election): either way, try again until ctx ends.
		if err := sleep(ctx, time.Duration(20+mrand.IntN(80))*time.Millisecond); err != nil {
			return nil, fmt.Errorf("waiting for another instance's token renewal: %w", err)
		}
	}
}

// hold renews the lease every lease/3 until unlock (holdLease: the same
// lease as the cluster's other leases).
func (s *TokenStore) hold(k string, val []byte, rev uint64) func() {
	return holdLease(s.locks, k, val, rev, s.lease, s.op, nil)
}
