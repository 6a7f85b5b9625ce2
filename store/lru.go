package store

import (
	"context"

	lru "github.com/hashicorp/golang-lru/v2"
)

// LRU is an in-process Store bounded in entries: when full, the least
// recently used entry goes first. It is the Runner's default store, so a
// long-running service keeps a bounded amount of memory whatever the count
// of distinct leads. (Ages are checked by the engine against each step's
// ttl and max_age, so an old entry is never used, only kept until evicted.)
type LRU struct {
	c *lru.Cache[string, Entry]
}

// NewLRU returns an empty store holding at most size entries (at least 1).
func NewLRU(size int) *LRU {
	c, _ := lru.New[string, Entry](max(size, 1)) // errors only for size <= 0
	return &LRU{c: c}
}

// Get implements Store.
func (s *LRU) Get(_ context.Context, key string) (Entry, bool, error) {
	e, ok := s.c.Get(key)
	return e, ok, nil
}

// Put implements Store.
func (s *LRU) Put(_ context.Context, key string, e Entry) error {
	s.c.Add(key, e)
	return nil
}

// Len is the count of entries held.
func (s *LRU) Len() int { return s.c.Len() }

// Close drops every entry.
func (s *LRU) Close() error {
	s.c.Purge()
	return nil
}
