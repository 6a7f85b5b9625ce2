package history

// The cluster's history (Config.Log): every write of every instance is
// appended to one log (a JetStream stream, natslog.go) and every instance
// applies the whole log, in its order, to its own bbolt file, which is
// then a view of the cluster's history. The last sequence applied is
// stored in the same transaction as what it applied, so a restart resumes
// after it and an op is never applied twice; applying one twice would
// still change nothing (a record is kept by lead id, a lead's state only
// moves forward, a batch is begun once, an attempt is kept once).

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Log is a cluster's replication log of the history.
type Log interface {
	// Append stores ops in their order and returns the sequence of the
	// last one once every one is stored.
	Append(ctx context.Context, ops [][]byte) (last uint64, err error)
	// Follow sends every op stored after sequence after, in order, to
	// out until ctx ends (or fails).
	Follow(ctx context.Context, after uint64, out chan<- Entry) error
	// Last is the sequence of the last op stored (0: none).
	Last(ctx context.Context) (uint64, error)
}

// Entry is one op of a Log.
type Entry struct {
	Seq  uint64
	Data []byte
}

// Timeouts of the cluster path.
const (
	// appendTimeout bounds one append (many ops, one round trip).
	appendTimeout = 10 * time.Second
	// catchUpTimeout bounds the waits for this instance's view.
	catchUpTimeout = 5 * time.Second
	// beginChunk and beginChunkBytes bound the leads of one begin op (a
	// log message stays under NATS's default 1 MB payload).
	beginChunk      = 8000
	beginChunkBytes = 512 << 10
)

// wireOp is one write as the log carries it.
type wireOp struct {
	K opKind `json:"k"`
	// O is the instance that appended the op: the one whose op completes a
	// batch calls OnBatchDone, so a batch's summary is queued once.
	O     string    `json:"o"`
	At    time.Time `json:"t"`
	Lead  string    `json:"l,omitempty"` // lead, callback or batch id
	Rec   *Record   `json:"r,omitempty"`
	Att   *Attempt  `json:"a,omitempty"`
	Batch *Batch    `json:"b,omitempty"`
	Leads []string  `json:"ls,omitempty"`
	Req   string    `json:"q,omitempty"`
}

var kApplied = []byte("applied")

// errBehind: this instance's view has not reached the log's end in time.
var errBehind = errors.New("history: this instance's view of the cluster's history is behind its log (it catches up as it goes)")

// newOrigin names this instance's ops.
func newOrigin() string { return rand.Text()[:12] }

// beginOps is a batch's begin as log ops: the batch with its first leads,
// then the others in chunks.
func beginOps(b Batch, leads []string, requestID string, now time.Time, origin string) []wireOp {
	ops := []wireOp{{K: opBegin, O: origin, At: now, Lead: b.ID, Batch: &b, Req: requestID}}
	from, size := 0, 0
	for i, id := range leads {
		if i-from == beginChunk || size+len(id)+3 > beginChunkBytes {
			ops[len(ops)-1].Leads = leads[from:i]
			ops = append(ops, wireOp{K: opBegin, O: origin, At: now, Lead: b.ID, Req: requestID})
			from, size = i, 0
		}
		size += len(id) + 3 // quotes and comma
	}
	ops[len(ops)-1].Leads = leads[from:]
	return ops
}

// toWire is a queued op as the log carries it.
func (s *Store) toWire(o op, now time.Time) wireOp {
	return wireOp{K: o.kind, O: s.origin, At: now, Lead: o.lead, Rec: o.rec, Att: o.att}
}

// appendOps appends ops to the log; it returns the last one's sequence.
func (s *Store) appendOps(ops []wireOp) (uint64, error) {
	msgs := make([][]byte, len(ops))
	for i, o := range ops {
		b, err := json.Marshal(o)
		if err != nil {
			return 0, fmt.Errorf("history: %w", err)
		}
		msgs[i] = b
	}
	ctx, cancel := context.WithTimeout(context.Background(), appendTimeout)
	defer cancel()
	seq, err := s.cfg.Log.Append(ctx, msgs)
	if err != nil {
		return 0, fmt.Errorf("history: appending to the cluster's log: %w", err)
	}
	return seq, nil
}

// appendSync appends ops and waits until this instance applied them.
func (s *Store) appendSync(ops []wireOp) error {
	seq, err := s.appendOps(ops)
	if err != nil {
		return err
	}
	if !s.waitApplied(seq, s.cfg.viewWait) {
		return errors.New("history: this instance has not applied the cluster's log yet (it will)")
	}
	return nil
}

// publish is the committer's cluster path: the ops go to the log (one
// round trip for many leads), not to the file. A Flush waits until the
// view applied the log as far as it reaches (every instance's writes).
func (s *Store) publish(batch []op) {
	now := s.cfg.Now()
	ops := make([]wireOp, 0, len(batch))
	for _, o := range batch {
		if o.kind != opFlush {
			ops = append(ops, s.toWire(o, now))
		}
	}
	if len(ops) > 0 {
		seq, err := s.appendOps(ops)
		if err != nil {
			s.failed.Add(1)
			for range ops {
				s.drop(err.Error())
			}
		} else {
			s.published.Store(max(s.published.Load(), seq))
		}
	}
	if len(ops) < len(batch) { // a Flush: wait for this instance's view
		if !s.catchUp() {
			s.waitApplied(s.published.Load(), s.cfg.viewWait)
		}
	}
}

// waitApplied waits until the view applied seq, at most d.
func (s *Store) waitApplied(seq uint64, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		s.appliedMu.Lock()
		ch := s.appliedCh
		s.appliedMu.Unlock()
		if s.applied.Load() >= seq {
			return true
		}
		select {
		case <-ch:
		case <-t.C:
			return false
		case <-s.done:
			return s.applied.Load() >= seq
		}
	}
}

// catchUp waits until the view applied the log as far as it reaches now.
func (s *Store) catchUp() bool {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.viewWait)
	defer cancel()
	last, err := s.cfg.Log.Last(ctx)
	if err != nil {
		return false
	}
	return s.waitApplied(last, s.cfg.viewWait)
}

// follow applies the log to the file until the store closes, resuming
// after the sequence the file says it applied.
func (s *Store) follow(ctx context.Context) {
	defer close(s.followed)
	in := make(chan Entry, maxCommit)
	go func() {
		defer close(in)
		for ctx.Err() == nil {
			err := s.cfg.Log.Follow(ctx, s.resumeAt(ctx), in)
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("lead history: following the cluster's log; again in 1s", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	for e := range in {
		batch := []Entry{e}
	gather:
		for len(batch) < maxCommit {
			select {
			case e, ok := <-in:
				if !ok {
					break gather
				}
				batch = append(batch, e)
			default:
				break gather
			}
		}
		s.apply(batch)
		s.maybePrune()
	}
}

// resumeAt is the sequence to follow the log after: the last applied,
// unless the log is shorter (a new stream: its sequences start again),
// then its start.
func (s *Store) resumeAt(ctx context.Context) uint64 {
	after := s.applied.Load()
	lctx, cancel := context.WithTimeout(ctx, s.cfg.viewWait)
	defer cancel()
	if last, err := s.cfg.Log.Last(lctx); err == nil && last < after {
		s.log.Warn("lead history: the cluster's log is shorter than what this instance applied (a new stream?); applying it from its start",
			"applied", after, "log_last", last)
		s.setApplied(0)
		return 0
	}
	return after
}

// apply applies entries in one transaction with the sequence reached.
func (s *Store) apply(batch []Entry) {
	var written, dups, skipped uint64
	var added int64
	var last uint64
	var kept []*Record // for OnApplied
	err := s.db.Update(func(tx *bolt.Tx) error {
		written, dups, skipped, added, last = 0, 0, 0, 0, 0
		kept = kept[:0]
		s.doneBatches = s.doneBatches[:0]
		applied := s.applied.Load()
		for _, e := range batch {
			if e.Seq <= applied { // a redelivery: applied already
				skipped++
				continue
			}
			applied, last = e.Seq, e.Seq
			var o wireOp
			if json.Unmarshal(e.Data, &o) != nil {
				continue // not an op of this version: skipped, not fatal
			}
			n, d, err := s.applyOp(tx, &o)
			if err != nil {
				return err
			}
			added += n
			if d {
				dups++
			} else if o.K == opFinish {
				written++
				kept = append(kept, o.Rec)
			}
		}
		if last == 0 {
			return nil
		}
		if err := tx.Bucket(bMeta).Put(kApplied, binary.BigEndian.AppendUint64(nil, last)); err != nil {
			return err
		}
		return s.addBytes(tx, added)
	})
	if err != nil {
		// the view stops here; the next start applies it again
		s.failed.Add(1)
		s.log.Error("lead history: applying the cluster's log failed; this instance's view is behind", "err", err)
		return
	}
	s.redelivered.Add(skipped)
	if last == 0 {
		return
	}
	s.commits.Add(1)
	s.written.Add(written)
	s.dups.Add(dups)
	for _, b := range s.doneBatches { // before the waiters of this sequence wake
		if s.cfg.OnBatchDone != nil {
			s.cfg.OnBatchDone(b)
		}
	}
	s.doneBatches = s.doneBatches[:0]
	if s.cfg.OnApplied != nil {
		for _, r := range kept {
			s.cfg.OnApplied(*r)
		}
	}
	s.setApplied(last)
}

func (s *Store) setApplied(seq uint64) {
	s.appliedMu.Lock()
	s.applied.Store(seq)
	close(s.appliedCh)
	s.appliedCh = make(chan struct{})
	s.appliedMu.Unlock()
}

// applyOp applies one op; dup reports a record already kept. A batch it
// completes is kept for OnBatchDone only when this instance appended the
// op: every view sees the batch complete, one instance queues its summary.
func (s *Store) applyOp(tx *bolt.Tx, o *wireOp) (added int64, dup bool, err error) {
	before := len(s.doneBatches)
	switch o.K {
	case opBegin:
		if o.Batch != nil {
			o.Batch.ID = o.Lead
		}
		added, err = s.beginTx(tx, o.Batch, o.Lead, o.Leads, o.Req, o.At)
	case opWithdraw:
		var done *Batch
		done, err = s.withdrawTx(tx, o.Lead, o.Leads, o.At)
		if done != nil {
			s.doneBatches = append(s.doneBatches, *done)
		}
	case opStart:
		err = s.startTx(tx, o.Lead, o.At)
	case opFinish:
		if o.Rec != nil {
			added, err = s.finishTx(tx, o.Rec, o.At)
			dup = added == 0
		}
	case opAttempt:
		if o.Att != nil {
			added, err = s.attemptTx(tx, o.Lead, *o.Att)
		}
	case opNotified:
		err = s.notifiedTx(tx, o.Lead)
	}
	if o.O != s.origin {
		s.doneBatches = s.doneBatches[:before]
	}
	return added, dup, err
}
