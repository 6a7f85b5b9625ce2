package source

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/plumbhq/plumb/internal/atomicfile"
)

// Reading the state while a sync runs: bbolt locks its file for the one
// process that writes it, and a read-only open waits for that lock too (a
// shared lock against an exclusive one). Copying the file instead could
// catch a page being rewritten and read a torn state. So the process that
// holds the file writes a small status snapshot beside it, replaced
// atomically (temporary file, fsync, rename) after each save of the state,
// and removed when it closes the file. ReadStatus reads the state file
// when it can take it, else the snapshot: never the writer's lock.

// StatusPath is the status snapshot kept beside the state file at path
// while a process holds the file.
func StatusPath(path string) string { return path + ".status" }

// statusWait is how long ReadStatus waits for the state file's lock
// before reading the snapshot of the process that holds it.
const statusWait = 100 * time.Millisecond

// Status is the saved state of one source.
type Status struct {
	// State is the saved state (zero when the source has none).
	State State
	// Retry counts the records in the retry list.
	Retry int
	// Live is set when another process held the state file: the state
	// was read from that process's status snapshot, as of its last save.
	Live bool
	// Running is set (with Live) when that process is syncing this
	// source; PID is that process.
	Running bool
	PID     int
	// Saved is when the snapshot was written (with Live).
	Saved time.Time
}

// snapshot is the status snapshot file.
type snapshot struct {
	PID     int                   `json:"pid"`
	Saved   time.Time             `json:"saved"`
	Sources map[string]*snapEntry `json:"sources"`
}

type snapEntry struct {
	State   State `json:"state"`
	Retry   int   `json:"retry"`
	Running bool  `json:"running,omitempty"`
}

// ReadStatus reads the state of key in the state file at path. When
// another process (a sync) holds the file, it reads that process's status
// snapshot instead of waiting for it: Status.Live is then set.
func ReadStatus(path, key string) (Status, error) {
	if _, err := os.Stat(path); err != nil {
		return Status{}, fmt.Errorf("state file %s: %w", path, err)
	}
	s, err := openStore(path, statusWait)
	if errors.Is(err, ErrLocked) {
		return readSnapshot(path, key)
	}
	if err != nil {
		return Status{}, err
	}
	defer s.db.Close()
	st, err := s.Load(context.Background(), key)
	if err != nil {
		return Status{}, err
	}
	n, err := s.RetryCount(context.Background(), key)
	if err != nil {
		return Status{}, fmt.Errorf("state file %s: %w", path, err)
	}
	return Status{State: st, Retry: n}, nil
}

func readSnapshot(path, key string) (Status, error) {
	b, err := os.ReadFile(StatusPath(path))
	var snap snapshot
	if err == nil {
		err = json.Unmarshal(b, &snap)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = errors.New("the process that holds it has written no status snapshot yet")
		}
		return Status{}, fmt.Errorf("%s: %w, and its status snapshot %s cannot be read: %v", path, ErrLocked, StatusPath(path), err)
	}
	out := Status{Live: true, PID: snap.PID, Saved: snap.Saved}
	if e := snap.Sources[key]; e != nil {
		out.State, out.Retry, out.Running = e.State, e.Retry, e.Running
	}
	return out, nil
}

// loadSnapshot reads every source's state and retry count into the
// snapshot.
func (s *Store) loadSnapshot() error {
	snap := snapshot{PID: os.Getpid(), Sources: map[string]*snapEntry{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketState).ForEach(func(k, v []byte) error {
			e := &snapEntry{}
			if err := json.Unmarshal(v, &e.State); err != nil {
				return fmt.Errorf("reading %s: %w", k, err)
			}
			snap.Sources[string(k)] = e
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketRetry).ForEach(func(k, _ []byte) error {
			if i := bytes.IndexByte(k, 0); i >= 0 {
				e := snap.Sources[string(k[:i])]
				if e == nil {
					e = &snapEntry{}
					snap.Sources[string(k[:i])] = e
				}
				e.Retry++
			}
			return nil
		})
	})
	s.snapMu.Lock()
	s.snap = snap
	s.snapMu.Unlock()
	return err
}

// snapshotCommit records a commit of key: its new state (nil: unchanged)
// and how much its retry list grew.
func (s *Store) snapshotCommit(key string, st *State, retry int) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	if s.snap.Sources == nil {
		return // a store ReadStatus opened: no snapshot
	}
	e := s.entry(key)
	if st != nil {
		e.State = *st
		e.Running = st.Ended == ""
	}
	e.Retry += retry
	s.writeSnapshot()
}

func (s *Store) snapshotReset(key string) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	if s.snap.Sources == nil {
		return
	}
	delete(s.snap.Sources, key)
	s.writeSnapshot()
}

func (s *Store) entry(key string) *snapEntry {
	e := s.snap.Sources[key]
	if e == nil {
		e = &snapEntry{}
		s.snap.Sources[key] = e
	}
	return e
}

// writeSnapshot replaces the snapshot file (snapMu held). When it cannot,
// it removes the old one, so that no reader takes it for the current
// state, and keeps the error for SnapshotErr.
func (s *Store) writeSnapshot() {
	s.snap.Saved = time.Now().UTC()
	b, err := json.Marshal(&s.snap)
	if err == nil {
		err = atomicfile.Write(StatusPath(s.path), b, 0o600)
	}
	if err != nil {
		_ = os.Remove(StatusPath(s.path))
	}
	s.snapErr = err
}

// SnapshotErr is why the status snapshot could not be written at the last
// try (nil when it was): plumb sync status then cannot show the state
// while this store is open.
func (s *Store) SnapshotErr() error {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	return s.snapErr
}
