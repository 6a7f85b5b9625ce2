package history

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Defaults applied by Open to zero Config fields.
const (
	DefaultMaxAge   = 7 * 24 * time.Hour
	DefaultMaxBytes = 1 << 30
	DefaultQueue    = 8192
	DefaultLinger   = 100 * time.Millisecond
	// maxCommit bounds the operations one transaction writes.
	maxCommit = 1024
)

// Config configures Open.
type Config struct {
	// Path is the bbolt file (created if missing).
	Path string
	// MaxAge: records (and batches) older than this are deleted.
	MaxAge time.Duration
	// MaxBytes bounds the file: the oldest records go when what the store
	// holds passes half of it (a bbolt file keeps freed pages for reuse, so
	// the file stays within MaxBytes).
	MaxBytes int64
	// Queue bounds the records waiting for a commit; more are dropped
	// (counted) rather than wait.
	Queue int
	// Linger is how long the committer waits for more records after the
	// first of a transaction, so one fsync covers many leads (default
	// DefaultLinger: at 600 leads a second, 60 leads a commit; a commit's
	// worth queued, a Flush or Close cut it short). It is also how long a
	// record may wait to be seen, and what a kill -9 may lose of it.
	Linger time.Duration
	// ScanBudget bounds the records one page of a query looks at (default
	// DefaultScanBudget).
	ScanBudget int
	// OnBatchDone is called (from the committer, after the commit) with
	// each batch whose last lead was just recorded.
	OnBatchDone func(Batch)
	// Log, when set, makes the store one view of a cluster's history:
	// every write is appended to the log (not to the file) and the store
	// applies the whole log, every instance's writes, to its file in the
	// log's order (replicate.go). Nil: the store writes its file directly.
	Log Log
	// OnApplied, with a Log, is called (from the applier, after the
	// commit) with every record this view keeps for the first time — the
	// records of every instance of the cluster, each once.
	OnApplied func(Record)
	// Now is the clock (default time.Now).
	Now func() time.Time
	// viewWait bounds the waits for this instance's view of a Log
	// (default catchUpTimeout; tests shorten it).
	viewWait time.Duration
	Logger   *slog.Logger
}

// Stats counts what the store did since Open.
type Stats struct {
	Written, Dropped, Duplicates, Commits, Pruned, Failed uint64
	// Redelivered counts ops of a cluster's log received again after they
	// were applied (and skipped).
	Redelivered uint64
	// Bytes is what the store holds (keys and values).
	Bytes int64
}

// Store is the lead history: a bbolt file written by one committer
// goroutine in batched transactions.
type Store struct {
	cfg  Config
	db   *bolt.DB
	log  *slog.Logger
	ops  chan op       // never closed (Close closes quit): a send cannot race a close
	kick chan struct{} // cuts the committer's linger short (wake)
	quit chan struct{}
	done chan struct{}
	stop sync.Once

	written, dropped, dups, commits, pruned, failed, redelivered atomic.Uint64
	bytes                                                        atomic.Int64
	lastPrune                                                    time.Time // committer only
	doneBatches                                                  []Batch   // committer only: done in this commit
	lastDropLog                                                  atomic.Int64
	closed                                                       atomic.Bool

	// the cluster path (replicate.go)
	origin     string
	applied    atomic.Uint64 // the last log sequence the file holds
	published  atomic.Uint64 // the last sequence the committer appended
	appliedMu  sync.Mutex
	appliedCh  chan struct{} // closed (and replaced) when applied moves
	stopFollow context.CancelFunc
	followed   chan struct{}
}

type opKind uint8

const (
	opStart opKind = iota + 1
	opFinish
	opFlush
	opAttempt
	opNotified
	// opBegin and opWithdraw are only ever log ops (Begin and Withdraw
	// write the file themselves without a log). The values are stored in
	// the log: append, never renumber.
	opBegin
	opWithdraw
)

type op struct {
	kind opKind
	lead string
	rec  *Record
	att  *Attempt
	done chan struct{}
}

var (
	bRec   = []byte("rec")   // seq → commit nanos + record JSON
	bID    = []byte("id")    // lead id → seq
	bBx    = []byte("bx")    // batch \0 seq → ""
	bBatch = []byte("batch") // batch id → Batch JSON
	bBL    = []byte("bl")    // batch \0 lead → state
	bLead  = []byte("lead")  // lead id → pending JSON (accepted, not finished)
	bMeta  = []byte("meta")
	bCB    = []byte("cb") // callback id → attempts JSON
	kBytes = []byte("bytes")
)

// Open opens (or creates) the store and starts its committer.
func Open(cfg Config) (*Store, error) {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Linger <= 0 {
		cfg.Linger = DefaultLinger
	}
	if cfg.viewWait <= 0 {
		cfg.viewWait = catchUpTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ScanBudget <= 0 {
		cfg.ScanBudget = DefaultScanBudget
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	db, err := bolt.Open(cfg.Path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("history: opening %s: %w", cfg.Path, err)
	}
	s := &Store{cfg: cfg, db: db, log: cfg.Logger, ops: make(chan op, cfg.Queue), kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
		origin: newOrigin(), appliedCh: make(chan struct{})}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bRec, bID, bBx, bBatch, bBL, bLead, bMeta, bCB} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if v := tx.Bucket(bMeta).Get(kBytes); len(v) == 8 {
			s.bytes.Store(int64(binary.BigEndian.Uint64(v)))
		}
		if v := tx.Bucket(bMeta).Get(kApplied); len(v) == 8 {
			s.applied.Store(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("history: %w", err)
	}
	if cfg.Log != nil {
		s.resumeAt(context.Background()) // a new log: from its start, before anyone waits on the view
	}
	go s.commitLoop()
	if cfg.Log != nil {
		ctx, cancel := context.WithCancel(context.Background())
		s.stopFollow, s.followed = cancel, make(chan struct{})
		go s.follow(ctx)
	}
	return s, nil
}

// Close commits what is queued and closes the file.
func (s *Store) Close() error {
	s.stop.Do(func() {
		s.closed.Store(true)
		close(s.quit)
	})
	<-s.done
	if s.stopFollow != nil {
		s.stopFollow()
		<-s.followed
	}
	return s.db.Close()
}

// Stats reports the store's counters.
func (s *Store) Stats() Stats {
	return Stats{Written: s.written.Load(), Dropped: s.dropped.Load(), Duplicates: s.dups.Load(), Commits: s.commits.Load(),
		Pruned: s.pruned.Load(), Failed: s.failed.Load(), Bytes: s.bytes.Load(), Redelivered: s.redelivered.Load()}
}

// Started notes that a queued lead began running (its batch counts it
// running). It never blocks.
func (s *Store) Started(lead string) { s.enqueue(op{kind: opStart, lead: lead}) }

// Add queues a finished lead's record for the next commit. It never
// blocks: with the queue full the record is dropped, counted and logged.
func (s *Store) Add(rec Record) { s.enqueue(op{kind: opFinish, rec: &rec}) }

// Flush waits until everything queued before it is committed (tests,
// shutdown); with a Log, until this instance's view applied the log as
// far as it reached (bounded).
func (s *Store) Flush() {
	o := op{kind: opFlush, done: make(chan struct{})}
	if s.closed.Load() {
		return // closed: nothing left to wait for
	}
	select {
	case s.ops <- o:
		s.wake()
	case <-s.done:
		return
	}
	select {
	case <-o.done:
	case <-s.done:
	}
}

func (s *Store) enqueue(o op) {
	if s.closed.Load() { // the channel is never closed: a send races nothing
		s.dropped.Add(1)
		return
	}
	select {
	case s.ops <- o:
		if len(s.ops) >= maxCommit {
			s.wake()
		}
	default:
		s.drop("the history queue is full")
	}
}

// drop counts a lost record and logs it (once a second at most).
func (s *Store) drop(why string) {
	n := s.dropped.Add(1)
	now := s.cfg.Now().Unix()
	if last := s.lastDropLog.Load(); now != last && s.lastDropLog.CompareAndSwap(last, now) {
		s.log.Warn("lead history dropped records; leads are not affected", "why", why, "dropped_total", n)
	}
}

// commitLoop writes the queued operations, many per transaction. After
// the first op of a batch it lingers without taking anything, so the ops
// that arrive meanwhile wake no one (a channel send to a waiting receiver
// would wake the committer once per lead), then takes what is queued.
func (s *Store) commitLoop() {
	defer close(s.done)
	for {
		o, ok := s.take()
		if !ok {
			return
		}
		batch := []op{o}
		if o.kind != opFlush {
			s.linger()
			batch = s.drain(batch)
		}
		s.write(batch)
		closeWaiters(batch)
	}
}

// linger waits Linger for company; a Flush, a commit's worth of queued ops
// (enqueue) or Close cut it short. With a commit's worth queued already it
// does not wait: the wake-ups of those ops (one is kept, the rest dropped)
// may have been spent. Every op is followed by a pending wake-up or by a
// drain that takes it, so a Flush never waits for the linger.
func (s *Store) linger() {
	if len(s.ops) >= maxCommit-1 {
		return
	}
	t := time.NewTimer(s.cfg.Linger)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.kick:
	case <-s.quit:
	}
}

// drain adds what is queued to batch without waiting: up to maxCommit ops,
// ending at a flush.
func (s *Store) drain(batch []op) []op {
	for len(batch) < maxCommit && batch[len(batch)-1].kind != opFlush {
		select {
		case o := <-s.ops:
			batch = append(batch, o)
		default:
			return batch
		}
	}
	return batch
}

// wake cuts the committer's linger short (a stale wake-up only makes a
// smaller batch).
func (s *Store) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// take returns the next queued op, waiting for one; once the store is
// closing it returns what is left, then false.
func (s *Store) take() (op, bool) {
	select {
	case o := <-s.ops:
		return o, true
	case <-s.quit:
		select {
		case o := <-s.ops:
			return o, true
		default:
			return op{}, false
		}
	}
}

// write commits a batch of ops: to the cluster's log, or to the file
// (then reports the batches it completed and applies the retention).
func (s *Store) write(batch []op) {
	if s.cfg.Log != nil {
		s.publish(batch)
		return
	}
	s.commit(batch)
	for _, b := range s.doneBatches {
		if s.cfg.OnBatchDone != nil {
			s.cfg.OnBatchDone(b)
		}
	}
	s.doneBatches = s.doneBatches[:0]
	s.maybePrune()
}

func closeWaiters(batch []op) {
	for _, o := range batch {
		if o.done != nil {
			close(o.done)
		}
	}
}

func (s *Store) commit(batch []op) {
	now := s.cfg.Now()
	var written, dups uint64
	var added int64
	err := s.db.Update(func(tx *bolt.Tx) error {
		written, dups, added = 0, 0, 0
		s.doneBatches = s.doneBatches[:0]
		for _, o := range batch {
			switch o.kind {
			case opAttempt:
				n, err := s.attemptTx(tx, o.lead, *o.att)
				if err != nil {
					return err
				}
				added += n
			case opNotified:
				if err := s.notifiedTx(tx, o.lead); err != nil {
					return err
				}
			case opStart:
				if err := s.startTx(tx, o.lead, now); err != nil {
					return err
				}
			case opFinish:
				n, err := s.finishTx(tx, o.rec, now)
				if err != nil {
					return err
				}
				if n == 0 {
					dups++
				} else {
					written++
					added += n
				}
			}
		}
		return s.addBytes(tx, added)
	})
	if err != nil {
		s.doneBatches = s.doneBatches[:0]
		s.failed.Add(1)
		for range written + dups {
			s.drop("writing the history failed: " + err.Error())
		}
		return
	}
	s.commits.Add(1)
	s.written.Add(written)
	s.dups.Add(dups)
}

func (s *Store) addBytes(tx *bolt.Tx, n int64) error {
	if n == 0 {
		return nil
	}
	v := s.bytes.Add(n)
	if v < 0 {
		v = 0
		s.bytes.Store(0)
	}
	return tx.Bucket(bMeta).Put(kBytes, binary.BigEndian.AppendUint64(nil, uint64(v)))
}

// pending is what Begin keeps of an accepted lead until it finishes.
type pending struct {
	Batch     string    `json:"b,omitempty"`
	RequestID string    `json:"r,omitempty"`
	Accepted  time.Time `json:"a"`
}

// finishTx stores one record, returning the bytes it added (0: the lead
// has a record already — a redelivery — and the first one stands).
func (s *Store) finishTx(tx *bolt.Tx, rec *Record, now time.Time) (int64, error) {
	ids := tx.Bucket(bID)
	if rec.ID == "" || len(rec.ID) > 256 || ids.Get([]byte(rec.ID)) != nil {
		return 0, nil
	}
	var added int64
	leads := tx.Bucket(bLead)
	if v := leads.Get([]byte(rec.ID)); v != nil {
		var p pending
		if json.Unmarshal(v, &p) == nil {
			rec.Batch = cmpOr(rec.Batch, p.Batch)
			rec.RequestID = cmpOr(rec.RequestID, p.RequestID)
			if rec.Accepted.IsZero() {
				rec.Accepted = p.Accepted
			}
		}
		added -= int64(len(rec.ID) + len(v))
		if err := leads.Delete([]byte(rec.ID)); err != nil {
			return 0, err
		}
	}
	val, err := rec.AppendJSON(binary.BigEndian.AppendUint64(make([]byte, 0, 1024), uint64(now.UnixNano())))
	if err != nil {
		return 0, nil // cannot happen for a Record's times; never fail the batch
	}
	recs := tx.Bucket(bRec)
	recs.FillPercent = 0.9 // appended in order: full pages, not half-full
	seq, err := recs.NextSequence()
	if err != nil {
		return 0, err
	}
	key := binary.BigEndian.AppendUint64(nil, seq)
	if err := recs.Put(key, val); err != nil {
		return 0, err
	}
	if err := ids.Put([]byte(rec.ID), key); err != nil {
		return 0, err
	}
	added += int64(len(key) + len(val) + len(rec.ID) + len(key))
	if rec.Batch != "" {
		bk := append(append([]byte(rec.Batch), 0), key...)
		bx := tx.Bucket(bBx)
		bx.FillPercent = 0.9
		if err := bx.Put(bk, nil); err != nil {
			return 0, err
		}
		added += int64(len(bk))
		if err := s.moveTx(tx, rec.Batch, rec.ID, stateDone, rec.Outcome, now); err != nil {
			return 0, err
		}
	}
	return added, nil
}

func (s *Store) startTx(tx *bolt.Tx, lead string, now time.Time) error {
	v := tx.Bucket(bLead).Get([]byte(lead))
	if v == nil {
		return nil
	}
	var p pending
	if json.Unmarshal(v, &p) != nil || p.Batch == "" {
		return nil
	}
	return s.moveTx(tx, p.Batch, lead, stateRunning, "", now)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
