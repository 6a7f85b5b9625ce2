package history

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"time"

	"github.com/tidwall/gjson"
	bolt "go.etcd.io/bbolt"
)

// pruneBatch bounds the deletions of one transaction.
const pruneBatch = 5000

// pruneEvery is how often the committer looks for expired records when the
// size bound is not pressing.
func (s *Store) pruneEvery() time.Duration {
	return min(max(s.cfg.MaxAge/100, 10*time.Millisecond), time.Minute)
}

// budget is what the store may hold in keys and values. A bbolt file is
// bigger than what it holds: pages are partly filled, freed pages are kept
// for reuse, and the file grows by doubling up to 16 MiB and by 16 MiB
// chunks beyond. Half the bound (less two chunks) leaves room for that on
// big bounds, a quarter on small ones (measured: TestSizeBound).
func (s *Store) budget() int64 {
	if s.cfg.MaxBytes >= 128<<20 {
		return s.cfg.MaxBytes/2 - 32<<20
	}
	return s.cfg.MaxBytes / 4
}

// maybePrune deletes what the retention policy no longer allows: every
// pruneEvery, records and batches older than MaxAge; after any commit that
// leaves the store over its budget, the oldest records. Batches, accepted
// leads and callbacks are only ever pruned by age, and finding them means
// reading them all, so a store held at its budget (every commit, once the
// history is full) does not read them at each commit.
func (s *Store) maybePrune() {
	now := s.cfg.Now()
	switch {
	case now.Sub(s.lastPrune) >= s.pruneEvery():
		s.lastPrune = now
		s.Prune()
	case s.bytes.Load() > s.budget():
		s.pruneAllRecords(now.Add(-s.cfg.MaxAge))
	}
}

// Prune applies the retention policy now (the committer calls it as it
// goes; tests call it after moving their clock).
func (s *Store) Prune() {
	cut := s.cfg.Now().Add(-s.cfg.MaxAge)
	if !s.pruneAllRecords(cut) {
		return
	}
	if err := s.pruneBatches(cut); err != nil {
		s.log.Warn("pruning the lead history's batches", "err", err)
	}
}

// pruneAllRecords prunes records (pruneRecords) until none is left to
// prune; false means it failed (logged).
func (s *Store) pruneAllRecords(cut time.Time) bool {
	for {
		more, err := s.pruneRecords(cut)
		if err != nil {
			s.log.Warn("pruning the lead history", "err", err)
			return false
		}
		if !more {
			return true
		}
	}
}

// pruneRecords deletes up to pruneBatch of the oldest records that are
// older than cut or over the budget; more reports there may be others.
func (s *Store) pruneRecords(cut time.Time) (more bool, err error) {
	var n uint64
	err = s.db.Update(func(tx *bolt.Tx) error {
		gone, freed, full, err := s.unindexOldest(tx, cut)
		if err != nil {
			return err
		}
		// deleted by key after the walk: a cursor that deletes as it goes
		// must seek from the first record again each time, and within one
		// transaction that walks past every leaf it emptied
		recs := tx.Bucket(bRec)
		for _, k := range gone {
			if err := recs.Delete(k); err != nil {
				return err
			}
		}
		n, more = uint64(len(gone)), full
		return s.addBytes(tx, -freed)
	})
	if err == nil {
		s.pruned.Add(n)
	}
	return more, err
}

// unindexOldest walks the oldest records while they are older than cut or
// the store holds more than its budget, up to pruneBatch: it deletes their
// id and batch index entries and returns their keys, the bytes their
// deletion frees, and whether it stopped at pruneBatch.
func (s *Store) unindexOldest(tx *bolt.Tx, cut time.Time) (gone [][]byte, freed int64, full bool, err error) {
	ids, bx := tx.Bucket(bID), tx.Bucket(bBx)
	c := tx.Bucket(bRec).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		old := len(v) >= 8 && int64(binary.BigEndian.Uint64(v)) < cut.UnixNano()
		if !old && s.bytes.Load()-freed <= s.budget() {
			return gone, freed, false, nil
		}
		if len(gone) == pruneBatch {
			return gone, freed, true, nil
		}
		if len(v) >= 8 {
			// only the id and the batch: decoding the whole record cost
			// more than the rest of pruning it (TestMillionRecords)
			f := gjson.GetManyBytes(v[8:], "id", "batch")
			id, batch := f[0].String(), f[1].String()
			if cur := ids.Get([]byte(id)); bytes.Equal(cur, k) {
				if err := ids.Delete([]byte(id)); err != nil {
					return nil, 0, false, err
				}
			}
			if batch != "" {
				if err := bx.Delete(append(append([]byte(batch), 0), k...)); err != nil {
					return nil, 0, false, err
				}
				freed += int64(len(batch) + 1 + len(k))
			}
			freed += int64(len(id) + len(k))
		}
		freed += int64(len(k) + len(v))
		gone = append(gone, k)
	}
	return gone, freed, false, nil
}

// pruneBatches deletes batches created before cut, with their lead
// states, and accepted leads' notes older than cut (leads that never
// finished within the retention).
func (s *Store) pruneBatches(cut time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		var freed int64
		bb, bl, pl := tx.Bucket(bBatch), tx.Bucket(bBL), tx.Bucket(bLead)
		var gone [][]byte
		_ = bb.ForEach(func(k, v []byte) error {
			var b Batch
			if json.Unmarshal(v, &b) != nil || b.Created.Before(cut) {
				gone = append(gone, bytes.Clone(k))
				freed += int64(len(k) + len(v))
			}
			return nil
		})
		for _, k := range gone {
			if err := bb.Delete(k); err != nil {
				return err
			}
			prefix := append(k, 0)
			lc := bl.Cursor()
			for lk, lv := lc.Seek(prefix); lk != nil && bytes.HasPrefix(lk, prefix); lk, lv = lc.Seek(prefix) {
				freed += int64(len(lk) + len(lv))
				if err := bl.Delete(bytes.Clone(lk)); err != nil {
					return err
				}
			}
		}
		gone = gone[:0]
		_ = pl.ForEach(func(k, v []byte) error {
			var p pending
			if json.Unmarshal(v, &p) != nil || p.Accepted.Before(cut) {
				gone = append(gone, bytes.Clone(k))
				freed += int64(len(k) + len(v))
			}
			return nil
		})
		for _, k := range gone {
			if err := pl.Delete(k); err != nil {
				return err
			}
		}
		gone = gone[:0]
		cb := tx.Bucket(bCB)
		_ = cb.ForEach(func(k, v []byte) error {
			var list []Attempt
			if json.Unmarshal(v, &list) != nil || len(list) == 0 || list[len(list)-1].At.Before(cut) {
				gone = append(gone, bytes.Clone(k))
				freed += int64(len(k) + len(v))
			}
			return nil
		})
		for _, k := range gone {
			if err := cb.Delete(k); err != nil {
				return err
			}
		}
		return s.addBytes(tx, -freed)
	})
}
