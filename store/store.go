// Package store keeps last-known-good answers: the captured values of a
// step's successful call, by cache key, with the time they were stored.
// The engine reads them for `cache` fallback links and response caching.
//
// Memory is the default; Bolt persists to a file (go.etcd.io/bbolt) so a
// CLI run can reuse yesterday's answers.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Entry is one stored answer.
type Entry struct {
	Values map[string]any `json:"values"`
	At     time.Time      `json:"at"`
}

// Store is where last-known-good answers live. Implementations are safe
// for concurrent use.
type Store interface {
	// Get returns the entry for key; found is false when there is none.
	Get(ctx context.Context, key string) (e Entry, found bool, err error)
	// Put stores e under key, replacing any older entry.
	Put(ctx context.Context, key string, e Entry) error
}

// Memory is an in-process Store.
type Memory struct {
	mu sync.RWMutex
	m  map[string]Entry
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{m: map[string]Entry{}} }

// Get implements Store.
func (s *Memory) Get(_ context.Context, key string) (Entry, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.m[key]
	return e, ok, nil
}

// Put implements Store.
func (s *Memory) Put(_ context.Context, key string, e Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = e
	return nil
}

// Bolt is a Store in a bbolt database file.
type Bolt struct {
	db *bolt.DB
}

var bucket = []byte("last_good")

// OpenBolt opens (creating if needed) the database at path. It waits at
// most timeout for another process's lock on the file.
func OpenBolt(path string, timeout time.Duration) (*Bolt, error) {
	if timeout <= 0 {
		timeout = time.Second
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open cache %s: locked by another process (waited %s)", path, timeout)
		}
		return nil, fmt.Errorf("open cache %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("open cache %s: %w", path, err)
	}
	return &Bolt{db: db}, nil
}

// Get implements Store.
func (s *Bolt) Get(_ context.Context, key string) (Entry, bool, error) {
	var e Entry
	var found bool
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucket).Get([]byte(key))
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &e)
	})
	if err != nil {
		return Entry{}, false, fmt.Errorf("cache get: %w", err)
	}
	return e, found, nil
}

// Put implements Store.
func (s *Bolt) Put(_ context.Context, key string, e Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("cache put: %w", err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte(key), b) }); err != nil {
		return fmt.Errorf("cache put: %w", err)
	}
	return nil
}

// Close closes the database file.
func (s *Bolt) Close() error { return s.db.Close() }
