// Package store keeps last-known-good answers: the captured values of a
// step's successful call, by cache key, with the time they were stored.
// The engine reads them for `cache` fallback links and response caching.
//
// It is public because an embedder chooses where answers live
// (engine.Config.Store): in memory, in a bbolt file, or a [Store] of its own
// (plumb serve shares them across a cluster with one).
//
// Memory is the default; Bolt persists to a file (go.etcd.io/bbolt) so a
// CLI run can reuse yesterday's answers.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
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
	db    *bolt.DB
	path  string
	ident os.FileInfo // the file as opened, to notice it being removed or replaced

	broken  atomic.Pointer[CorruptError] // set once bbolt panicked: the file is not touched again
	vanish  atomic.Bool                  // the file at path is no longer ident
	movedTo string
}

var bucket = []byte("last_good")

// CorruptError is a cache file that is damaged or is not a bbolt database.
type CorruptError struct {
	Path    string
	Problem string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("cache file %s is damaged: %s", e.Path, e.Problem)
}

// BoltOptions tune OpenBoltWith.
type BoltOptions struct {
	// Timeout is how long to wait for another process's lock on the file
	// (default 1s).
	Timeout time.Duration
	// MoveCorrupt renames a damaged file to PATH.corrupt-TIME (UTC,
	// 20060102T150405Z) and starts with a new, empty one instead of
	// failing with a *CorruptError.
	MoveCorrupt bool
}

// OpenBolt opens (creating if needed) the database at path. It waits at
// most timeout for another process's lock on the file. A damaged file is a
// *CorruptError and is left as it is (see OpenBoltWith).
func OpenBolt(path string, timeout time.Duration) (*Bolt, error) {
	return OpenBoltWith(path, BoltOptions{Timeout: timeout})
}

// OpenBoltWith opens (creating if needed) the database at path. Before any
// use the whole file is checked — its structure is read without bbolt,
// then bbolt's own consistency check runs — because bbolt trusts its file
// and a damaged one makes it panic or crash the process (a page pointing
// outside the memory-mapped file) at any later read or write. A damaged
// file is a *CorruptError, or with opt.MoveCorrupt is moved aside (see
// MovedTo). Opening reads the whole file once.
func OpenBoltWith(path string, opt BoltOptions) (*Bolt, error) {
	if opt.Timeout <= 0 {
		opt.Timeout = time.Second
	}
	s, err := openChecked(path, opt.Timeout)
	var ce *CorruptError
	if !opt.MoveCorrupt || !errors.As(err, &ce) {
		return s, err
	}
	aside := fmt.Sprintf("%s.corrupt-%s", path, time.Now().UTC().Format("20060102T150405.000000000Z"))
	if err := os.Rename(path, aside); err != nil {
		return nil, fmt.Errorf("%w; moving it aside: %v", ce, err)
	}
	s, err = openChecked(path, opt.Timeout)
	if err != nil {
		return nil, err
	}
	s.movedTo = aside
	return s, nil
}

// MovedTo is where OpenBoltWith moved a damaged file, or "".
func (s *Bolt) MovedTo() string { return s.movedTo }

// openChecked opens path, checks it and makes the bucket.
func openChecked(path string, timeout time.Duration) (s *Bolt, err error) {
	// A page that bbolt reads outside its memory map is a fault; as a
	// panic (in this goroutine) it is an error like the others.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	var db *bolt.DB
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, &CorruptError{Path: path, Problem: fmt.Sprint(r)}
			// a bbolt that panicked may hold its locks: the file
			// descriptor is left to the end of the process
		}
	}()
	// bbolt panics or faults on a damaged page as soon as it opens the
	// file (its freelist), and its Check reads pages in a goroutine of its
	// own, where a fault ends the process: the structure is read without
	// bbolt first.
	if err := verifyPath(path, timeout); err != nil {
		return nil, err
	}
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, fmt.Errorf("open cache %s: locked by another process (waited %s)", path, timeout)
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
			return nil, &CorruptError{Path: path, Problem: err.Error()}
		}
		return nil, fmt.Errorf("open cache %s: %w", path, err)
	}
	if err := db.View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drained: Check's goroutine sends every problem
			if first == nil {
				first = err
			}
		}
		return first
	}); err != nil {
		db.Close()
		return nil, &CorruptError{Path: path, Problem: err.Error()}
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("open cache %s: %w", path, err)
	}
	ident, err := os.Stat(path)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open cache %s: %w", path, err)
	}
	return &Bolt{db: db, path: path, ident: ident}, nil
}

// verifyPath checks the structure of an existing file at path, under a
// shared lock so that another process writing it is waited for (as
// bbolt.Open would) rather than read half-written.
func verifyPath(path string, timeout time.Duration) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open cache %s: %w", path, err)
	}
	defer f.Close()
	if !lockShared(f, timeout) {
		return fmt.Errorf("open cache %s: locked by another process (waited %s)", path, timeout)
	}
	if err := verifyBoltFile(f); err != nil {
		return &CorruptError{Path: path, Problem: err.Error()}
	}
	return nil
}

// guard makes a panic or fault of bbolt during a Get or Put an error, and
// marks the store broken so the file is not touched again.
func (s *Bolt) guard(op string, err *error) {
	if r := recover(); r != nil {
		ce := &CorruptError{Path: s.path, Problem: fmt.Sprint(r)}
		s.broken.CompareAndSwap(nil, ce)
		*err = fmt.Errorf("%s: %w", op, ce)
	}
}

// Get implements Store.
func (s *Bolt) Get(_ context.Context, key string) (e Entry, found bool, err error) {
	if ce := s.broken.Load(); ce != nil {
		return Entry{}, false, fmt.Errorf("cache get: %w", ce)
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer s.guard("cache get", &err)
	err = s.db.View(func(tx *bolt.Tx) error {
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

// ErrFileGone is the error of a Put after the cache file was removed or
// replaced by another file while the store had it open: the answer is
// kept for this process, but no later run will see it.
var ErrFileGone = errors.New("the cache file was removed or replaced while in use; answers are no longer kept")

// Put implements Store.
func (s *Bolt) Put(_ context.Context, key string, e Entry) (err error) {
	if ce := s.broken.Load(); ce != nil {
		return fmt.Errorf("cache put: %w", ce)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("cache put: %w", err)
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer s.guard("cache put", &err)
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte(key), b) }); err != nil {
		return fmt.Errorf("cache put: %w", err)
	}
	if err := s.gone(); err != nil {
		return fmt.Errorf("cache put %s: %w", s.path, err)
	}
	return nil
}

// gone reports ErrFileGone once the file at the path is no longer the one
// the store writes.
func (s *Bolt) gone() error {
	if s.vanish.Load() {
		return ErrFileGone
	}
	if now, err := os.Stat(s.path); err == nil && os.SameFile(now, s.ident) {
		return nil
	}
	s.vanish.Store(true)
	return ErrFileGone
}

// Close closes the database file.
func (s *Bolt) Close() error { return s.db.Close() }
