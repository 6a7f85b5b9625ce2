package source

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/plumbhq/plumb/store"
)

// State is what a state file keeps for one integration's source.
type State struct {
	// Cursor is the highest cursor_field value of the records whose page
	// was committed; the next sync reads it (minus lookback) as
	// state.cursor.
	Cursor any `json:"cursor,omitempty"`
	// Resume is where an unfinished sync goes on (interrupted, killed,
	// max_pages reached, a page that failed); nil after a complete sync.
	Resume *Resume `json:"resume,omitempty"`
	// Last is the last sync, Total every sync since the state began.
	Last  Counts `json:"last"`
	Total Counts `json:"total"`
	// Updated is when the state was last saved; Started is when the last
	// sync started (one that went on with a killed sync's pages keeps its
	// start); Finished is when the last sync ended and how (Ended is empty
	// while a sync runs, and after one was killed).
	Updated  time.Time `json:"updated"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	Ended    string    `json:"ended,omitempty"`
}

// Counts are the pages, records and errors of a sync.
type Counts struct {
	Pages   int64 `json:"pages"`
	Records int64 `json:"records"`
	Errors  int64 `json:"errors"`
}

// Resume is the position of an unfinished sync.
type Resume struct {
	// Cursor is the state.cursor the sync's requests read (kept so its
	// later pages match its first).
	Cursor any `json:"cursor,omitempty"`
	// Page is the next page's page.* values; Next the next page's URL.
	Page map[string]any `json:"page,omitempty"`
	Next string         `json:"next,omitempty"`
	// Token is the cursor, link or next URL that led to the next page.
	Token string `json:"token,omitempty"`
	// Pages counts the pages of the sync done so far.
	Pages int `json:"pages"`
}

// masked is r as it is stored: its next link and token with the runner's
// secrets masked (redact), as a partner may write a query key or a token
// into the links it returns. A stored secret's parameter is added again
// when the link is followed (api_key auth in: query replaces its
// parameter), so the masked link still resumes.
func (r *Resume) masked(redact func(string) string) *Resume {
	if r == nil {
		return nil
	}
	c := *r
	c.Next, c.Token = redact(c.Next), redact(c.Token)
	return &c
}

// Failed is a record whose steps ended in error, kept in the retry list.
type Failed struct {
	Record   json.RawMessage `json:"record"`
	Reason   string          `json:"reason"`
	Attempts int             `json:"attempts"`
	First    time.Time       `json:"first"`
	Last     time.Time       `json:"last"`
}

var (
	bucketState = []byte("sync_state")
	bucketRetry = []byte("sync_retry")
)

// Store is a bbolt state file. Only one process can open it at a time;
// while it has the file open, it keeps a status snapshot beside it (see
// [StatusPath]) that [ReadStatus] reads, so that the state can be shown
// while a sync runs.
type Store struct {
	db   *bolt.DB
	path string

	snapMu sync.Mutex
	snap   snapshot
	// snapErr is the last failure to write the snapshot (nil once a
	// write succeeds again)
	snapErr error
}

// ErrLocked is returned by OpenStore when another process holds the file.
var ErrLocked = errors.New("the state file is in use by another plumb sync")

// lockWait is how long OpenStore waits for another process to let go of
// the file.
const lockWait = 500 * time.Millisecond

// OpenStore opens (creating) the state file at path and writes its
// status snapshot.
func OpenStore(path string) (*Store, error) {
	s, err := openStore(path, lockWait)
	if err != nil {
		return nil, err
	}
	if err := s.loadSnapshot(); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	s.snapMu.Lock()
	s.writeSnapshot()
	s.snapMu.Unlock()
	return s, nil
}

// openStore opens the file, waiting up to wait for its lock, without a
// snapshot.
func openStore(path string, wait time.Duration) (*Store, error) {
	if _, err := os.Stat(path); err == nil {
		// bbolt trusts its file and panics or faults on a damaged one:
		// the store package checks the whole file first
		b, err := store.OpenBoltWith(path, store.BoltOptions{Timeout: wait})
		var ce *store.CorruptError
		switch {
		case errors.As(err, &ce):
			return nil, fmt.Errorf("state file %s is damaged (%s); plumb will not use it: move it aside to start over (the next sync then starts from incremental.start)", path, ce.Problem)
		case err != nil && strings.Contains(err.Error(), "locked by another process"):
			return nil, fmt.Errorf("%s: %w", path, ErrLocked)
		case err != nil:
			return nil, fmt.Errorf("state file %s: %w", path, err)
		}
		b.Close()
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: wait})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w (move it aside, or sync with --state NEWFILE; the sync then starts over)", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketState); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(bucketRetry)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	return &Store{db: db, path: path}, nil
}

// Path is the file's path.
func (s *Store) Path() string { return s.path }

// Close removes the status snapshot and closes the file.
func (s *Store) Close() error {
	s.snapMu.Lock()
	if s.snap.Sources != nil {
		_ = os.Remove(StatusPath(s.path))
		s.snap.Sources = nil
	}
	s.snapMu.Unlock()
	return s.db.Close()
}

var _ StateStore = (*Store)(nil)

// Load returns the state of key (zero when there is none).
func (s *Store) Load(_ context.Context, key string) (State, error) {
	var st State
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketState).Get([]byte(key))
		if b == nil {
			return nil
		}
		return json.Unmarshal(b, &st)
	})
	if err != nil {
		return st, fmt.Errorf("state file %s: reading %s: %w", s.path, key, err)
	}
	return st, nil
}

// Keys lists the sources the file holds a state for.
func (s *Store) Keys() ([]string, error) {
	var keys []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketState).ForEach(func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		})
	})
	return keys, err
}

// Reset forgets the state and the retry list of key.
func (s *Store) Reset(_ context.Context, key string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketState).Delete([]byte(key)); err != nil {
			return err
		}
		prefix := retryPrefix(key)
		c := tx.Bucket(bucketRetry).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state file %s: %w", s.path, err)
	}
	s.snapshotReset(key)
	return nil
}

func retryPrefix(key string) []byte { return []byte(key + "\x00") }

// RetryCount is the number of records in the retry list of key.
func (s *Store) RetryCount(_ context.Context, key string) (n int, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		prefix := retryPrefix(key)
		c := tx.Bucket(bucketRetry).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			n++
		}
		return nil
	})
	return n, err
}

// Retries returns up to n entries of key's retry list after the entry id
// after ("" for the first), in key order.
func (s *Store) Retries(_ context.Context, key, after string, n int) (out []Retry, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		prefix := retryPrefix(key)
		c := tx.Bucket(bucketRetry).Cursor()
		k, v := c.Seek(append(prefix, after...))
		if after != "" && k != nil && string(k[len(prefix):]) == after {
			k, v = c.Next()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < n; k, v = c.Next() {
			r := Retry{ID: string(k[len(prefix):])}
			if err := json.Unmarshal(v, &r.Failed); err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("state file %s: retry list of %s: %w", s.path, key, err)
	}
	return out, nil
}

// Commit saves c for key in one transaction; then the status snapshot.
func (s *Store) Commit(_ context.Context, key string, c Commit) error {
	st, failed, done := c.State, c.Failed, c.Done
	var added, removed int
	err := s.db.Update(func(tx *bolt.Tx) error {
		added, removed = 0, 0
		if st != nil {
			b, err := json.Marshal(st)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketState).Put([]byte(key), b); err != nil {
				return err
			}
		}
		rb := tx.Bucket(bucketRetry)
		prefix := retryPrefix(key)
		for _, id := range done {
			k := append(prefix[:len(prefix):len(prefix)], id...)
			if rb.Get(k) == nil {
				continue
			}
			if err := rb.Delete(k); err != nil {
				return err
			}
			removed++
		}
		for id, f := range failed {
			k := append(prefix[:len(prefix):len(prefix)], id...)
			if old := rb.Get(k); old != nil {
				var prev Failed
				if json.Unmarshal(old, &prev) == nil {
					f = f.Again(prev)
				}
			} else {
				added++
			}
			b, err := json.Marshal(f)
			if err != nil {
				return err
			}
			if err := rb.Put(k, b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state file %s: %w", s.path, err)
	}
	s.snapshotCommit(key, st, added-removed)
	return nil
}
