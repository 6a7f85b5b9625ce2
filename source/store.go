package source

import (
	"context"
	"errors"
)

// StateStore keeps the sync state of sources: per source key, a State and
// a retry list of records whose steps ended in error. Sync reads and saves
// through it; [Store] (a bbolt file) is one, and an embedder may plug
// another (plumb serve keeps it in NATS JetStream KV on a cluster). A
// store is used by one sync of a key at a time.
type StateStore interface {
	// Load returns the state of key (zero when there is none).
	Load(ctx context.Context, key string) (State, error)
	// Commit saves a page's worth of changes of key: the retry list
	// entries of c.Failed are added (an entry already there keeps its
	// First and counts one more attempt, see [Failed.Again]), those of
	// c.Done removed, and c.State (when not nil) saved. The state must
	// never be saved without the entries of c.Failed: write them first,
	// or all in one transaction.
	Commit(ctx context.Context, key string, c Commit) error
	// Retries returns up to n entries of key's retry list after the
	// entry id after ("" for the first), in a stable order.
	Retries(ctx context.Context, key, after string, n int) ([]Retry, error)
	// RetryCount is the number of entries in key's retry list.
	RetryCount(ctx context.Context, key string) (int, error)
	// Reset forgets the state and the retry list of key.
	Reset(ctx context.Context, key string) error
}

// Commit is what one save of a sync's state changes.
type Commit struct {
	// State is the state to save (nil: unchanged).
	State *State
	// Failed are records to add to (or update in) the retry list, by id.
	Failed map[string]Failed
	// Done are ids of records to remove from the retry list.
	Done []string
}

// Retry is one entry of a retry list.
type Retry struct {
	ID string
	Failed
}

// Again is the entry a store keeps when f fails again while prev is in
// the retry list: prev's first failure and record (when f has none), one
// more attempt.
func (f Failed) Again(prev Failed) Failed {
	f.First = prev.First
	f.Attempts = prev.Attempts + 1
	if f.Record == nil {
		f.Record = prev.Record
	}
	return f
}

// ErrStateConflict is the error (errors.Is) of a Commit that found the
// state written by another runner since it was loaded: the sync stops
// rather than overwrite it (in a cluster, the instance lost its lease).
var ErrStateConflict = errors.New("the sync state was written by another runner since it was read")
