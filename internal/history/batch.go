package history

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Lead states within a batch.
const (
	stateQueued  byte = 'q'
	stateRunning byte = 'r'
	stateDone    byte = 'd'
)

// Batch is the leads of one POST /leads request and what became of them.
type Batch struct {
	ID          string    `json:"id"`
	Integration string    `json:"integration"`
	Created     time.Time `json:"created"`
	// Finished is when the last lead finished (zero until then).
	Finished time.Time `json:"finished,omitzero"`
	Total    int       `json:"total"`
	// State counts the leads by state: queued, running, done.
	State map[string]int `json:"state"`
	// Outcomes counts the done leads by outcome.
	Outcomes map[string]int `json:"outcomes"`
	Done     bool           `json:"done"`
	// CallbackURL receives the batch's results (POST /leads?callback_url=).
	CallbackURL string `json:"callback_url,omitempty"`
	// Notified: the batch's summary callback is queued.
	Notified bool `json:"notified,omitempty"`
}

// Begin records a batch before its leads are published, synchronously
// (one transaction per request, not per lead): a lead finishing at once
// must find its batch. In a cluster (Config.Log) it is appended to the
// log and Begin waits until this instance applied it, so the batch reads
// back here at once. An error is the caller's to log; the leads are
// published anyway.
func (s *Store) Begin(b Batch, leads []string, requestID string) error {
	now := s.cfg.Now()
	b.Created, b.Total = now, len(leads)
	b.State = map[string]int{"queued": len(leads), "running": 0, "done": 0}
	b.Outcomes = map[string]int{}
	if len(leads) == 0 { // every lead a duplicate: nothing to wait for
		b.Done, b.Finished, b.Notified = true, now, true
	}
	if s.cfg.Log != nil {
		return s.appendSync(beginOps(b, leads, requestID, now, s.origin))
	}
	// db.Batch: concurrent requests share a transaction (and its fsync)
	var added int64
	err := s.db.Batch(func(tx *bolt.Tx) error {
		var err error
		added, err = s.beginTx(tx, &b, b.ID, leads, requestID, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("history: recording batch %s: %w", b.ID, err)
	}
	s.bytes.Add(added) // Batch may run the function twice: counted once, here
	return nil
}

// beginTx stores a batch (b nil: more leads of batch id, a later part of
// a big batch in the log) and its leads' pending entries. Applied twice it
// changes nothing: a batch already stored stays, a lead already known
// keeps its state.
func (s *Store) beginTx(tx *bolt.Tx, b *Batch, id string, leads []string, requestID string, now time.Time) (int64, error) {
	var added int64
	bb := tx.Bucket(bBatch)
	if b != nil {
		if bb.Get([]byte(id)) != nil {
			return 0, nil
		}
		js, err := json.Marshal(b)
		if err != nil {
			return 0, err
		}
		if err := bb.Put([]byte(id), js); err != nil {
			return 0, err
		}
		added += int64(len(id) + len(js))
	}
	pj, err := json.Marshal(pending{Batch: id, RequestID: requestID, Accepted: now})
	if err != nil {
		return 0, err
	}
	bl, pl := tx.Bucket(bBL), tx.Bucket(bLead)
	for _, lead := range leads {
		k := append(append([]byte(id), 0), lead...)
		if bl.Get(k) != nil {
			continue
		}
		if err := bl.Put(k, []byte{stateQueued}); err != nil {
			return 0, err
		}
		if err := pl.Put([]byte(lead), pj); err != nil {
			return 0, err
		}
		added += int64(len(k) + 1 + len(lead) + len(pj))
	}
	return added, nil
}

// Withdraw takes leads that were not published out of a batch (a request
// that failed part-way), so that the batch can still complete.
func (s *Store) Withdraw(batch string, leads []string) error {
	if s.cfg.Log != nil {
		return s.appendSync([]wireOp{{K: opWithdraw, O: s.origin, At: s.cfg.Now(), Lead: batch, Leads: leads}})
	}
	var done *Batch
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		done, err = s.withdrawTx(tx, batch, leads, s.cfg.Now())
		return err
	})
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if done != nil && s.cfg.OnBatchDone != nil {
		s.cfg.OnBatchDone(*done)
	}
	return nil
}

// withdrawTx takes leads out of a batch; it returns the batch when that
// made it done.
func (s *Store) withdrawTx(tx *bolt.Tx, batch string, leads []string, now time.Time) (*Batch, error) {
	bb, bl := tx.Bucket(bBatch), tx.Bucket(bBL)
	var b Batch
	if v := bb.Get([]byte(batch)); v == nil || json.Unmarshal(v, &b) != nil {
		return nil, nil
	}
	for _, id := range leads {
		k := append(append([]byte(batch), 0), id...)
		if v := bl.Get(k); len(v) == 1 && v[0] == stateQueued {
			if err := bl.Delete(k); err != nil {
				return nil, err
			}
			b.Total--
			b.State["queued"]--
		}
		if err := tx.Bucket(bLead).Delete([]byte(id)); err != nil {
			return nil, err
		}
	}
	var done *Batch
	if !b.Done && b.State["done"] == b.Total {
		b.Done, b.Finished = true, now
		done = &b
	}
	js, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	return done, bb.Put([]byte(batch), js)
}

// Unfinished is a lead of a batch that is not done, as Unfinished lists it.
type Unfinished struct{ Batch, Lead string }

// Unfinished lists up to limit leads of batches not done whose records
// are missing: after a crash, records still waiting for their commit are
// lost though their leads finished; the service looks each up in the
// queue at start and records the ones that did.
func (s *Store) Unfinished(limit int) ([]Unfinished, error) {
	if s.cfg.Log != nil && !s.catchUp() {
		return nil, errBehind // it would list leads whose records are on their way
	}
	var out []Unfinished
	err := s.db.View(func(tx *bolt.Tx) error {
		bl := tx.Bucket(bBL)
		return tx.Bucket(bBatch).ForEach(func(k, v []byte) error {
			var b Batch
			if json.Unmarshal(v, &b) != nil || b.Done || len(out) >= limit {
				return nil
			}
			prefix := append(bytes.Clone(k), 0)
			c := bl.Cursor()
			for lk, lv := c.Seek(prefix); lk != nil && bytes.HasPrefix(lk, prefix) && len(out) < limit; lk, lv = c.Next() {
				if len(lv) == 1 && lv[0] != stateDone {
					out = append(out, Unfinished{Batch: b.ID, Lead: string(lk[len(prefix):])})
				}
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return out, nil
}

// moveTx moves a lead of a batch to state to (never back from done) and
// updates the batch's counts.
func (s *Store) moveTx(tx *bolt.Tx, batch, lead string, to byte, outcome string, now time.Time) error {
	bl := tx.Bucket(bBL)
	k := append(append([]byte(batch), 0), lead...)
	cur := bl.Get(k)
	if len(cur) != 1 || cur[0] == stateDone || cur[0] == to {
		return nil
	}
	from := cur[0]
	if err := bl.Put(k, []byte{to}); err != nil {
		return err
	}
	bb := tx.Bucket(bBatch)
	v := bb.Get([]byte(batch))
	if v == nil {
		return nil
	}
	var b Batch
	if json.Unmarshal(v, &b) != nil {
		return nil
	}
	b.State[stateName(from)]--
	b.State[stateName(to)]++
	if to == stateDone {
		b.Outcomes[outcome]++
		if b.State["done"] == b.Total {
			b.Done, b.Finished = true, now
			s.doneBatches = append(s.doneBatches, b)
		}
	}
	js, err := json.Marshal(b)
	if err != nil {
		return nil
	}
	return bb.Put([]byte(batch), js)
}

func stateName(c byte) string {
	switch c {
	case stateQueued:
		return "queued"
	case stateRunning:
		return "running"
	}
	return "done"
}

// Batch returns a batch by id (found false when unknown or expired).
func (s *Store) Batch(id string) (b Batch, found bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bBatch).Get([]byte(id))
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &b)
	})
	if err != nil {
		return Batch{}, false, fmt.Errorf("history: %w", err)
	}
	return b, found, nil
}

// Pending returns the batch of a lead accepted but not yet recorded (""
// when it has none). In a cluster the lead may have been accepted by
// another instance: on a miss Pending waits (bounded) until this instance
// applied the log as far as it reaches now, which includes the batch's
// begin (appended before the leads were queued), and looks again.
func (s *Store) Pending(lead string) (batch string, err error) {
	batch, err = s.pending(lead)
	if batch != "" || err != nil || s.cfg.Log == nil {
		return batch, err
	}
	if !s.catchUp() {
		return "", nil
	}
	return s.pending(lead)
}

func (s *Store) pending(lead string) (batch string, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		var p pending
		if v := tx.Bucket(bLead).Get([]byte(lead)); v != nil && json.Unmarshal(v, &p) == nil {
			batch = p.Batch
		}
		return nil
	})
	return batch, err
}
