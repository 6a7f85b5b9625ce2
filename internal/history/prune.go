package history

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"time"

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

// maybePrune deletes what the retention policy no longer allows: records
// and batches older than MaxAge, and the oldest records while the store
// holds more than its budget.
func (s *Store) maybePrune() {
	now := s.cfg.Now()
	if s.bytes.Load() <= s.budget() && now.Sub(s.lastPrune) < s.pruneEvery() {
		return
	}
	s.lastPrune = now
	s.Prune()
}

// Prune applies the retention policy now (the committer calls it as it
// goes; tests call it after moving their clock).
func (s *Store) Prune() {
	cut := s.cfg.Now().Add(-s.cfg.MaxAge)
	for {
		more, err := s.pruneRecords(cut)
		if err != nil {
			s.log.Warn("pruning the lead history", "err", err)
			return
		}
		if !more {
			break
		}
	}
	if err := s.pruneBatches(cut); err != nil {
		s.log.Warn("pruning the lead history's batches", "err", err)
	}
}

// pruneRecords deletes up to pruneBatch of the oldest records that are
// older than cut or over the budget; more reports there may be others.
func (s *Store) pruneRecords(cut time.Time) (more bool, err error) {
	var n uint64
	err = s.db.Update(func(tx *bolt.Tx) error {
		n = 0
		recs, ids, bx := tx.Bucket(bRec), tx.Bucket(bID), tx.Bucket(bBx)
		c := recs.Cursor()
		var freed int64
		for k, v := c.First(); k != nil; k, v = c.First() {
			old := len(v) >= 8 && int64(binary.BigEndian.Uint64(v)) < cut.UnixNano()
			if !old && s.bytes.Load()-freed <= s.budget() {
				return s.addBytes(tx, -freed)
			}
			if n == pruneBatch {
				more = true
				return s.addBytes(tx, -freed)
			}
			var r Record
			if len(v) >= 8 && json.Unmarshal(v[8:], &r) == nil {
				if cur := ids.Get([]byte(r.ID)); bytes.Equal(cur, k) {
					if err := ids.Delete([]byte(r.ID)); err != nil {
						return err
					}
				}
				if r.Batch != "" {
					if err := bx.Delete(append(append([]byte(r.Batch), 0), k...)); err != nil {
						return err
					}
					freed += int64(len(r.Batch) + 1 + len(k))
				}
				freed += int64(len(r.ID) + len(k))
			}
			freed += int64(len(k) + len(v))
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		return s.addBytes(tx, -freed)
	})
	if err == nil {
		s.pruned.Add(n)
	}
	return more, err
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
