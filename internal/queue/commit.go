package queue

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Group commit: a worker that finished a job hands its record (and the
// job's message) to the committer and takes the next job. The committer
// stores the records it has gathered in one write — one fsync for all of
// them on an embedded server — and only then acknowledges their jobs (or
// hands them back, for a failed attempt). A job is therefore acknowledged
// only once its record is durable, as before; what changed is that many
// jobs share the write.
//
// The committer waits for company only while it can come: after the first
// record of a batch it gathers more while other handlers are still running,
// for at most Config.CommitWait, and never beyond Config.CommitBatch
// records. With nothing running it writes at once, so a lone job pays no
// wait. Under load, records gather anyway while the previous write is in
// flight.

// Defaults of the group commit.
const (
	DefaultCommitBatch = 256
	DefaultCommitWait  = 2 * time.Millisecond
)

// CommitPoint is a moment in the middle of a group commit, given to
// Config.CommitHook.
type CommitPoint struct {
	// Synced is false once the batch's records are written to the record
	// log's segment file and not yet synced (embedded queue only), true
	// once they are stored and before any of their jobs is acknowledged.
	Synced bool
	// IDs are the jobs whose records the batch holds.
	IDs []string
	// File, Offset and Length say where the written batch is (Synced
	// false).
	File           string
	Offset, Length int64
}

// then is what follows a durable record.
type then int

const (
	thenAck  then = iota // the job is done (or was already): acknowledge it
	thenNak              // a failed attempt: hand the job back after delay
	thenNone             // a record the worker waits for (a redelivery's attempt)
)

// entry is one record for the committer and what to do once it is stored.
type entry struct {
	w     recordWrite
	msg   jetstream.Msg // nil for thenNone
	meta  *jetstream.MsgMetadata
	d     Delivery
	then  then
	delay time.Duration // for thenNak
	log   loggerLike
	// done is closed once the entry is handled (thenNone: stored, or not)
	done chan struct{}
	// exists: the job already had a result, which stands
	exists bool
	held   bool // counted in faults.held
}

// committer gathers records into batches and stores them (see above).
type committer struct {
	q  *Queue
	in chan *entry
	// busy counts handlers that may still hand over a record
	busy atomic.Int64
	idle chan struct{} // a signal when busy falls to 0
	// stopCtx ends a wait for the storage (the end of a shutdown's drain)
	stopCtx   context.Context
	wg        sync.WaitGroup
	closeOnce sync.Once
	// waiting, when set (tests), is called each time the committer starts
	// waiting for company
	waiting func()
}

func newCommitter(q *Queue, stopCtx context.Context) *committer {
	// room for the batch being gathered and the next one while a write is
	// under way
	c := &committer{q: q, in: make(chan *entry, 2*q.cfg.CommitBatch), idle: make(chan struct{}, 1), stopCtx: stopCtx}
	return c
}

// run starts the committer's loop.
func (c *committer) run() *committer {
	c.wg.Go(c.loop)
	return c
}

// start counts a handler that may hand over a record; its end (finish)
// must follow.
func (c *committer) start() { c.busy.Add(1) }

// finish ends a start.
func (c *committer) finish() {
	if c.busy.Add(-1) == 0 {
		select {
		case c.idle <- struct{}{}:
		default:
		}
	}
}

// submit hands e over; it blocks while the committer is a full batch
// behind (the workers then pause with it).
func (c *committer) submit(e *entry) {
	if e.done == nil {
		e.done = make(chan struct{})
	}
	c.in <- e
}

// store hands e over and waits until it is handled.
func (c *committer) store(e *entry) {
	c.submit(e)
	<-e.done
}

// close stores what was handed over and returns once every entry is
// handled. Call it after the last submit.
func (c *committer) close() {
	c.closeOnce.Do(func() { close(c.in) })
	c.wg.Wait()
}

func (c *committer) loop() {
	for {
		batch, ok := c.gather()
		if len(batch) > 0 {
			c.commit(batch)
		}
		if !ok {
			return
		}
	}
}

// gather returns the next batch; ok is false once the input is closed.
func (c *committer) gather() (batch []*entry, ok bool) {
	e, ok := <-c.in
	if !ok {
		return nil, false
	}
	batch = append(batch, e)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for len(batch) < c.q.cfg.CommitBatch {
		select {
		case e, ok := <-c.in:
			if !ok {
				return batch, false
			}
			batch = append(batch, e)
			continue
		default:
		}
		if c.busy.Load() == 0 || c.q.cfg.CommitWait <= 0 {
			return batch, true // no company can come
		}
		if timer == nil {
			timer = time.NewTimer(c.q.cfg.CommitWait)
		}
		if c.waiting != nil {
			c.waiting()
		}
		select {
		case e, ok := <-c.in:
			if !ok {
				return batch, false
			}
			batch = append(batch, e)
		case <-c.idle:
		case <-timer.C:
			return batch, true
		}
	}
	return batch, true
}

// commit stores a batch's records until each is stored, found standing
// already, or given up, then does what follows each.
func (c *committer) commit(batch []*entry) {
	q := c.q
	pending := batch
	for attempt := 1; len(pending) > 0; attempt++ {
		ws := make([]*recordWrite, len(pending))
		for i, e := range pending {
			e.w.rec.Updated = time.Now().UTC()
			ws[i] = &e.w
		}
		q.records.put(context.WithoutCancel(c.stopCtx), ws)
		if q.cfg.CommitHook != nil {
			q.cfg.CommitHook(CommitPoint{Synced: true, IDs: storedIDs(pending)})
		}
		var again []*entry
		var failed error
		for _, e := range pending {
			switch err := e.w.err; {
			case err == nil:
				c.after(e)
			case errors.Is(err, errConflict):
				if c.resolve(e) {
					again = append(again, e)
				}
			case permanentWriteErr(err):
				c.unheld(e)
				q.deadLetter(c.stopCtx, e.msg, e.meta, e.d, "the job ran, but its result could not be stored: "+err.Error(), e.log)
				close(e.done)
			default:
				failed = err
				again = append(again, e)
			}
		}
		pending = again
		if failed == nil || len(pending) == 0 {
			continue
		}
		// what was handed over meanwhile waits for the same storage: it
		// is held, and written, with these
	more:
		for {
			select {
			case e, ok := <-c.in:
				if !ok {
					break more
				}
				pending = append(pending, e)
			default:
				break more
			}
		}
		if !c.hold(pending, failed, attempt) {
			for _, e := range pending {
				c.giveUp(e, failed)
			}
			return
		}
	}
}

// after does what follows a stored record.
func (c *committer) after(e *entry) {
	c.unheld(e)
	switch e.then {
	case thenAck:
		if e.exists {
			e.log.Warn("job already has a stored result; keeping the first and discarding this run's")
		}
		c.q.ack(e.msg, e.log)
	case thenNak:
		c.q.nak(e.msg, e.delay, e.log)
	}
	close(e.done)
}

// resolve handles a conflicting write: the record changed since the
// worker read it. A done record stands (the job is acknowledged as done);
// any other is overwritten. It reports whether to write again.
func (c *committer) resolve(e *entry) (again bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.stopCtx), c.q.cfg.ConnectTimeout)
	defer cancel()
	cur, rev, err := c.q.records.get(ctx, e.w.rec.ID)
	switch {
	case err == nil && cur.State == StateDone:
		e.w.err = nil
		if e.then == thenAck {
			e.exists = true
			c.after(e)
			return false
		}
		// an attempt's record for a job another worker finished: the job
		// is done, so it is acknowledged instead of handed back
		e.then = thenAck
		e.exists = true
		c.after(e)
		return false
	case err == nil:
		e.w.prev = rev
	case errors.Is(err, ErrNotFound):
		e.w.prev = 0
	}
	e.w.fresh = false
	return true
}

// hold waits before writing the records again: for the storage to recover
// (or a backoff), counting them as held. It reports false once the
// committer must stop waiting (the end of a shutdown's drain).
func (c *committer) hold(pending []*entry, err error, attempt int) bool {
	q := c.q
	q.faults.resultRetries.Add(uint64(len(pending)))
	for _, e := range pending {
		if !e.held {
			e.held = true
			q.faults.held.Add(1)
			if attempt == 1 {
				e.log.Error("the job's record could not be stored; keeping it and writing it again once the storage takes it (the job does not run again)", "err", err)
			}
		}
	}
	if attempt%10 == 0 {
		q.log.Warn("records still cannot be stored", "jobs", len(pending), "attempts", attempt, "err", err)
	}
	wait := make(<-chan struct{})
	if errors.Is(err, ErrStorage) {
		wait = q.health.healthy()
	}
	t := time.NewTimer(min(q.backoff(attempt), heldRetryEvery))
	defer t.Stop()
	// meanwhile the jobs stay in progress: a held record must not have its
	// job redelivered
	beat := time.NewTicker(progressEvery(q.cfg.AckWait))
	defer beat.Stop()
	for {
		select {
		case <-c.stopCtx.Done():
			return false
		case <-wait:
			return true
		case <-t.C:
			return true
		case <-beat.C:
			for _, e := range pending {
				if e.msg != nil {
					_ = e.msg.InProgress()
				}
			}
		}
	}
}

// giveUp hands back a job whose record could not be stored before the
// shutdown's drain ended: it runs again at the next start.
func (c *committer) giveUp(e *entry, err error) {
	c.unheld(e)
	if e.then != thenNone {
		c.q.faults.unstored.Add(1)
		e.log.Error("shutting down before the job's record could be stored; it runs again at the next start", "err", err)
		c.q.nak(e.msg, 0, e.log)
	}
	e.w.err = err
	close(e.done)
}

func (c *committer) unheld(e *entry) {
	if e.held {
		e.held = false
		c.q.faults.held.Add(-1)
	}
}

// storedIDs are the ids of the entries whose records were stored.
func storedIDs(es []*entry) []string {
	var ids []string
	for _, e := range es {
		if e.w.err == nil {
			ids = append(ids, e.w.rec.ID)
		}
	}
	return ids
}
