package history

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// maxAttempts bounds the attempts kept per callback.
const maxAttempts = 32

// Attempt is one delivery attempt of a callback.
type Attempt struct {
	At      time.Time `json:"at"`
	Attempt int       `json:"attempt"`
	URL     string    `json:"url"`
	Status  int       `json:"status,omitempty"`
	Error   string    `json:"error,omitempty"`
	// Dead: the last attempt; the callback is dead-lettered.
	Dead bool `json:"dead,omitempty"`
}

// AddAttempt records a callback's attempt (batched like records; never
// blocks).
func (s *Store) AddAttempt(id string, a Attempt) {
	s.enqueue(op{kind: opAttempt, lead: id, att: &a})
}

// Notified records that a batch's summary callback is queued.
func (s *Store) Notified(batch string) { s.enqueue(op{kind: opNotified, lead: batch}) }

func (s *Store) attemptTx(tx *bolt.Tx, id string, a Attempt) (int64, error) {
	b := tx.Bucket(bCB)
	var list []Attempt
	old := b.Get([]byte(id))
	if old != nil {
		_ = json.Unmarshal(old, &list)
	}
	for _, o := range list {
		if o.Attempt == a.Attempt && o.At.Equal(a.At) && o.URL == a.URL {
			return 0, nil // applied before (a cluster's log): kept once
		}
	}
	list = append(list, a)
	if len(list) > maxAttempts {
		list = list[len(list)-maxAttempts:]
	}
	js, err := json.Marshal(list)
	if err != nil {
		return 0, nil
	}
	if err := b.Put([]byte(id), js); err != nil {
		return 0, err
	}
	return int64(len(js) - len(old)), nil
}

func (s *Store) notifiedTx(tx *bolt.Tx, id string) error {
	bb := tx.Bucket(bBatch)
	v := bb.Get([]byte(id))
	var b Batch
	if v == nil || json.Unmarshal(v, &b) != nil {
		return nil
	}
	b.Notified = true
	js, err := json.Marshal(b)
	if err != nil {
		return nil
	}
	return bb.Put([]byte(id), js)
}

// Attempts returns a callback's recorded attempts, oldest first.
func (s *Store) Attempts(id string) ([]Attempt, error) {
	var list []Attempt
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bCB).Get([]byte(id)); v != nil {
			return json.Unmarshal(v, &list)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return list, nil
}

// Unnotified returns the done batches whose summary callback may not have
// been queued (a crash between the two): the service queues them again at
// start (the receiver drops the copies by webhook-id).
func (s *Store) Unnotified() ([]Batch, error) {
	if s.cfg.Log != nil && !s.catchUp() {
		return nil, errBehind // it would list batches notified since
	}
	var out []Batch
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bBatch).ForEach(func(_, v []byte) error {
			var b Batch
			if json.Unmarshal(v, &b) == nil && b.Done && !b.Notified {
				out = append(out, b)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return out, nil
}
