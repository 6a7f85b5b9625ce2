package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/plumbhq/plumb/store"
)

// CacheStore is a store.Store (the engine's last-known-good answers and
// response caches) in a KV bucket, so an answer one instance remembered is
// there for a fallback on another. Keys are hashed (SHA-256 hex); entries
// expire after Config.CacheTTL.
type CacheStore struct {
	kv jetstream.KeyValue
}

var _ store.Store = (*CacheStore)(nil)

// Get implements store.Store.
func (s *CacheStore) Get(ctx context.Context, key string) (store.Entry, bool, error) {
	e, err := s.kv.Get(ctx, hashHex(key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return store.Entry{}, false, nil
	}
	if err != nil {
		return store.Entry{}, false, fmt.Errorf("cluster: cache: %w", err)
	}
	var out store.Entry
	if err := json.Unmarshal(e.Value(), &out); err != nil {
		return store.Entry{}, false, fmt.Errorf("cluster: cache: a stored entry is not valid JSON")
	}
	return out, true, nil
}

// Put implements store.Store.
func (s *CacheStore) Put(ctx context.Context, key string, e store.Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("cluster: cache: %w", err)
	}
	if _, err := s.kv.Put(ctx, hashHex(key), b); err != nil {
		return fmt.Errorf("cluster: cache: %w", err)
	}
	return nil
}
