// Package syncstate keeps sources' sync state (source.StateStore) in a
// NATS JetStream KV bucket, for plumb serve on a cluster: any instance
// can read it, and the one that holds a source's lease (internal/syncrun)
// writes it. A single instance keeps it in a bbolt file instead
// (source.Store).
//
// Keys (bucket <queue>_syncstate): st-<hash of the source key> holds the
// state as JSON; rt-<hash>.<base64url of the record id> one retry-list
// entry each. A page's commit writes the failed entries first, then the
// state, then removes the done entries: the state never counts a page
// whose failed records are not in the retry list (after a crash in
// between, an entry may outlive its record's success and be retried once
// more).
//
// The state is written by compare-and-set on the revision the sync read
// (Store.Session): a runner that lost its lease while paused cannot
// overwrite the state of the one that took over (source.ErrStateConflict).
package syncstate

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/plumbhq/plumb/source"
)

// DefaultOpTimeout bounds one KV operation.
const DefaultOpTimeout = 5 * time.Second

// Store is the sync state of every source in one KV bucket. Its own Load
// records nothing; a sync writes through a Session.
type Store struct {
	kv jetstream.KeyValue
	op time.Duration
}

// New keeps the state in kv.
func New(kv jetstream.KeyValue) *Store { return &Store{kv: kv, op: DefaultOpTimeout} }

var _ source.StateStore = (*Store)(nil)

func hash(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:16])
}

func stateKey(key string) string { return "st-" + hash(key) }

func retryKey(key, id string) string {
	return "rt-" + hash(key) + "." + base64.RawURLEncoding.EncodeToString([]byte(id))
}

func (s *Store) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.op)
}

// load reads key's state and its revision (0: none).
func (s *Store) load(ctx context.Context, key string) (source.State, uint64, error) {
	var st source.State
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	e, err := s.kv.Get(cctx, stateKey(key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return st, 0, nil
	}
	if err != nil {
		return st, 0, fmt.Errorf("sync state of %s: %w", key, err)
	}
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return st, 0, fmt.Errorf("sync state of %s: %w", key, err)
	}
	return st, e.Revision(), nil
}

// Load implements source.StateStore.
func (s *Store) Load(ctx context.Context, key string) (source.State, error) {
	st, _, err := s.load(ctx, key)
	return st, err
}

// Commit implements source.StateStore without the compare-and-set (a
// Session's Commit has it).
func (s *Store) Commit(ctx context.Context, key string, c source.Commit) error {
	_, err := s.commit(ctx, key, c, nil)
	return err
}

// commit writes c; with rev, the state by compare-and-set at *rev (0: the
// key must not exist), *rev then being the new revision.
func (s *Store) commit(ctx context.Context, key string, c source.Commit, rev *uint64) (uint64, error) {
	for id, f := range c.Failed {
		if err := s.putFailed(ctx, key, id, f); err != nil {
			return 0, err
		}
	}
	var newRev uint64
	if c.State != nil {
		b, err := json.Marshal(c.State)
		if err != nil {
			return 0, err
		}
		cctx, cancel := s.ctx(ctx)
		switch {
		case rev == nil:
			newRev, err = s.kv.Put(cctx, stateKey(key), b)
		case *rev == 0:
			newRev, err = s.kv.Create(cctx, stateKey(key), b)
		default:
			newRev, err = s.kv.Update(cctx, stateKey(key), b, *rev)
		}
		cancel()
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return 0, fmt.Errorf("sync state of %s: %w", key, source.ErrStateConflict)
		}
		if err != nil {
			return 0, fmt.Errorf("sync state of %s: %w", key, err)
		}
		if rev != nil {
			*rev = newRev
		}
	}
	for _, id := range c.Done {
		cctx, cancel := s.ctx(ctx)
		err := s.kv.Delete(cctx, retryKey(key, id))
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return 0, fmt.Errorf("sync state of %s: retry list: %w", key, err)
		}
	}
	return newRev, nil
}

// putFailed adds (or updates) one retry-list entry.
func (s *Store) putFailed(ctx context.Context, key, id string, f source.Failed) error {
	k := retryKey(key, id)
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	if e, err := s.kv.Get(cctx, k); err == nil {
		var prev source.Failed
		if json.Unmarshal(e.Value(), &prev) == nil {
			f = f.Again(prev)
		}
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("sync state of %s: retry list: %w", key, err)
	}
	b, err := json.Marshal(f)
	if err == nil {
		_, err = s.kv.Put(cctx, k, b)
	}
	if err != nil {
		return fmt.Errorf("sync state of %s: retry list: %w", key, err)
	}
	return nil
}

// retryIDs lists key's retry-list ids, sorted.
func (s *Store) retryIDs(ctx context.Context, key string) ([]string, error) {
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	prefix := "rt-" + hash(key) + "."
	l, err := s.kv.ListKeysFiltered(cctx, prefix+">")
	if err != nil {
		return nil, fmt.Errorf("sync state of %s: retry list: %w", key, err)
	}
	var ids []string
	for k := range l.Keys() {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(k, prefix))
		if err == nil {
			ids = append(ids, string(b))
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Retries implements source.StateStore.
func (s *Store) Retries(ctx context.Context, key, after string, n int) ([]source.Retry, error) {
	ids, err := s.retryIDs(ctx, key)
	if err != nil {
		return nil, err
	}
	i, _ := slices.BinarySearch(ids, after)
	if after != "" && i < len(ids) && ids[i] == after {
		i++
	}
	var out []source.Retry
	for _, id := range ids[i:] {
		if len(out) == n {
			break
		}
		cctx, cancel := s.ctx(ctx)
		e, err := s.kv.Get(cctx, retryKey(key, id))
		cancel()
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("sync state of %s: retry list: %w", key, err)
		}
		r := source.Retry{ID: id}
		if err := json.Unmarshal(e.Value(), &r.Failed); err != nil {
			return nil, fmt.Errorf("sync state of %s: retry list: %w", key, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// RetryCount implements source.StateStore.
func (s *Store) RetryCount(ctx context.Context, key string) (int, error) {
	ids, err := s.retryIDs(ctx, key)
	return len(ids), err
}

// Reset implements source.StateStore.
func (s *Store) Reset(ctx context.Context, key string) error {
	ids, err := s.retryIDs(ctx, key)
	if err != nil {
		return err
	}
	for _, k := range append([]string{stateKey(key)}, mapKeys(key, ids)...) {
		cctx, cancel := s.ctx(ctx)
		err := s.kv.Purge(cctx, k)
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("sync state of %s: %w", key, err)
		}
	}
	return nil
}

func mapKeys(key string, ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = retryKey(key, id)
	}
	return out
}

// Session is the store as one sync sees it: its Load notes the state's
// revision and its Commit writes the state only at that revision.
func (s *Store) Session() source.StateStore { return &session{Store: s, revs: map[string]uint64{}} }

type session struct {
	*Store
	mu   sync.Mutex
	revs map[string]uint64
}

func (s *session) Load(ctx context.Context, key string) (source.State, error) {
	st, rev, err := s.load(ctx, key)
	if err == nil {
		s.mu.Lock()
		s.revs[key] = rev
		s.mu.Unlock()
	}
	return st, err
}

func (s *session) Commit(ctx context.Context, key string, c source.Commit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rev, ok := s.revs[key]
	if !ok && c.State != nil {
		return fmt.Errorf("sync state of %s: saved before it was loaded", key)
	}
	_, err := s.commit(ctx, key, c, &rev)
	if err == nil {
		s.revs[key] = rev
	}
	return err
}

func (s *session) Reset(ctx context.Context, key string) error {
	err := s.Store.Reset(ctx, key)
	if err == nil {
		s.mu.Lock()
		s.revs[key] = 0
		s.mu.Unlock()
	}
	return err
}
