package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Delivery is one delivery of a job to a Handler.
type Delivery struct {
	Job
	// Attempt counts deliveries of this job, starting at 1. Redeliveries
	// after a crash count too.
	Attempt int
	// Enqueued is when the job was stored.
	Enqueued time.Time
	// LastError is the previous attempt's error, if it returned one.
	LastError string
}

// Handler runs one job. It returns the job's result, which the queue
// stores before it acknowledges the job; a nil result is stored as empty.
// A job's first stored result stands: should a job run twice, the second
// result is discarded. An error (or a panic) means the job is retried after a backoff,
// and dead-lettered once Config.MaxDeliver deliveries are used up.
//
// ctx is cancelled when Consume stops and its DrainTimeout has passed.
// Handlers may run more than once for a job (at-least-once delivery).
type Handler func(ctx context.Context, d Delivery) (result []byte, err error)

// Consume runs handler on jobs with Config.Workers concurrent workers until
// ctx is done. It then stops fetching, hands back jobs fetched but not
// started, waits up to DrainTimeout for running handlers, cancels the
// handlers' context and waits for them to return. It returns nil after a
// shutdown through ctx and an error only if it could not start.
//
// Several Consume calls, in one process or many, share the work: each job
// goes to one of them at a time.
func (q *Queue) Consume(ctx context.Context, handler Handler) error {
	select {
	case <-q.closed:
		return ErrClosed
	default:
	}
	workers := q.cfg.Workers
	// A pull asks for as many jobs as there are idle workers, and each job
	// goes to a worker the moment it arrives: nothing waits in a client
	// buffer, where its AckWait would run without progress signals. The
	// pull's expiry bounds how long a shutdown waits for it.
	fetchWait := min(time.Second, q.cfg.AckWait/2)
	handlerCtx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	// the committer stores what the handlers leave; it stops waiting for
	// the storage when the handlers' context ends
	com := newCommitter(q, handlerCtx).run()
	slots := make(chan struct{}, workers)
	var wg sync.WaitGroup
	errDelay := 50 * time.Millisecond
	for ctx.Err() == nil {
		if q.health.err() != nil {
			// A job run now would end with a result the storage cannot
			// take: fetch nothing until it recovers.
			select {
			case <-q.health.healthy():
			case <-ctx.Done():
				continue
			}
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		n := 1
	more:
		for n < workers {
			select {
			case slots <- struct{}{}:
				n++
			default:
				break more
			}
		}
		batch, err := q.cons.Fetch(n, jetstream.FetchMaxWait(fetchWait))
		if err == nil {
			got := 0
			for msg := range batch.Messages() {
				got++
				if ctx.Err() != nil {
					q.handBack(msg)
					<-slots
					continue
				}
				wg.Add(1)
				com.start()
				go func() {
					defer wg.Done()
					q.handle(handlerCtx, com, msg, handler, sync.OnceFunc(func() { <-slots }))
				}()
			}
			n -= got
			err = batch.Error()
		}
		for range n {
			<-slots
		}
		if err == nil || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
			errDelay = 50 * time.Millisecond
			continue
		}
		// Disconnected, or the cluster is electing a leader: back off.
		q.log.Warn("fetching jobs", "err", err, "retry_in", errDelay)
		t := time.NewTimer(errDelay)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		errDelay = min(2*errDelay, 2*time.Second)
	}

	// Drain: running handlers get DrainTimeout, then their context (and
	// the committer's wait for the storage) is cancelled.
	t := time.AfterFunc(q.cfg.DrainTimeout, func() {
		q.log.Warn("drain timeout: cancelling running jobs", "timeout", q.cfg.DrainTimeout)
		cancelHandlers()
	})
	defer t.Stop()
	wg.Wait()
	com.close()
	return nil
}

// handBack returns a fetched, unstarted job to the queue. The delivery
// still counts towards MaxDeliver.
func (q *Queue) handBack(msg jetstream.Msg) {
	if err := msg.Nak(); err != nil {
		q.log.Warn("handing back a job", "subject", msg.Subject(), "err", err)
	}
}

// handle runs one delivery: skip it if its job is done already,
// dead-letter it if its deliveries are used up, else run the handler
// (telling the server the job is in progress meanwhile) and hand its record
// to the committer, which acknowledges the job once the record is durable
// — or hands it back for another attempt after a failure. release frees the
// worker's slot: it is called once the record is handed over, so the
// worker takes its next job while the record is stored; the job is kept
// in progress until then.
func (q *Queue) handle(ctx context.Context, com *committer, msg jetstream.Msg, handler Handler, release func()) {
	defer release()
	handedOver := false
	finish := func() {
		if !handedOver {
			handedOver = true
			com.finish()
		}
	}
	defer finish()
	// ctl is for the queue's own bookkeeping: it outlives a cancelled
	// handler so a record can still be stored during shutdown.
	ctl, cancel := context.WithTimeout(context.WithoutCancel(ctx), q.cfg.ConnectTimeout)
	defer cancel()
	meta, err := msg.Metadata()
	if err != nil {
		q.log.Error("job without metadata; terminating it", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	d := q.delivery(msg, meta)
	log := q.log.With("job", d.ID, "attempt", d.Attempt)
	rec := &Record{ID: d.ID, Seq: meta.Sequence.Stream, Kind: d.Kind, Integration: d.Integration, Enqueued: d.Enqueued}
	prev, done := q.redelivery(ctl, msg, &d, log)
	if done {
		return
	}
	log = q.log.With("job", d.ID, "attempt", d.Attempt)
	if d.Attempt > q.cfg.MaxDeliver {
		reason := "deliveries exhausted: the last attempt did not finish (worker crashed, stopped or lost its connection)"
		if d.LastError != "" {
			reason += "; last error: " + d.LastError
		}
		q.deadLetter(ctx, msg, meta, d, reason, log)
		return
	}
	rec.Attempts, rec.Started = d.Attempt, time.Now().UTC()
	if d.Attempt > 1 {
		// A redelivery is recorded before it runs, so a job that takes
		// its process down with it is counted and reaches MaxDeliver. (A
		// first delivery is not: the redelivery after such a crash counts
		// it.)
		running := *rec
		running.State, running.LastError = StateRunning, d.LastError
		e := &entry{w: recordWrite{rec: &running, prev: prev}, msg: msg, meta: meta, d: d, then: thenNone, log: log}
		com.store(e)
		switch {
		case e.exists:
			return // finished meanwhile by another worker: acknowledged
		case e.w.err != nil:
			log.Warn("the attempt could not be recorded; handing the job back", "err", e.w.err)
			q.nak(msg, 0, log)
			return
		}
		prev = e.w.rev
	}

	stopProgress := q.keepAlive(msg, log)
	defer stopProgress() // kept in progress until its record is stored
	q.running.Store(d.ID, &runningJob{seq: rec.Seq, attempt: d.Attempt, started: rec.Started})
	result, herr := q.call(ctx, handler, d)
	q.running.Delete(d.ID)
	fresh := prev == 0 && d.Attempt == 1 && rec.Seq > q.storedBefore
	e := &entry{w: recordWrite{rec: rec, prev: prev, fresh: fresh}, msg: msg, meta: meta, d: d, log: log}
	switch {
	case herr == nil:
		if result == nil {
			result = []byte{}
		}
		rec.State, rec.Result = StateDone, result
		e.then = thenAck
	case ctx.Err() != nil:
		// Shutting down: hand the job back now; it is not dead-lettered for
		// an attempt the shutdown cut short (a later delivery past
		// MaxDeliver is).
		log.Info("job interrupted by shutdown; handing it back", "err", herr)
		rec.State, rec.LastError = StateQueued, herr.Error()
		e.then = thenNak
	case d.Attempt >= q.cfg.MaxDeliver:
		q.deadLetter(ctx, msg, meta, d, herr.Error(), log)
		return
	default:
		e.delay = q.backoff(d.Attempt)
		log.Info("job failed; retrying", "err", herr, "delay", e.delay)
		rec.State, rec.LastError = StateQueued, herr.Error()
		e.then = thenNak
	}
	com.submit(e)
	finish()
	if q.cfg.releaseEarly {
		release()
	}
	<-e.done
}

// runningJob is a delivery this process runs now (Queue.running).
type runningJob struct {
	seq     uint64
	attempt int
	started time.Time
}

// delivery reads a job's delivery from its message.
func (q *Queue) delivery(msg jetstream.Msg, meta *jetstream.MsgMetadata) Delivery {
	h := msg.Headers()
	d := Delivery{
		Job: Job{
			ID:          h.Get(HeaderJobID),
			Kind:        kindOf(h),
			Integration: h.Get(HeaderIntegration),
			Payload:     msg.Data(),
			DedupeKey:   h.Get(HeaderDedupeKey),
		},
		Attempt:  int(meta.NumDelivered),
		Enqueued: meta.Timestamp,
	}
	traceOf(h, &d.Job)
	if d.ID == "" {
		d.ID = strings.TrimPrefix(msg.Subject(), q.jobsPrefix)
	}
	return d
}

// redelivery looks up the record of a job that may have been delivered
// before — delivered more than once, or stored before this process opened
// the queue: a job whose record says done (its ack was lost to a crash or
// a dropped connection) is acknowledged without running again (done);
// otherwise its record gives the attempts made and the last error. The
// server's delivery count can fall back after the server itself is killed
// (consumer state is flushed lazily), and a job Open handed back after a
// kill was delivered at least once, so d.Attempt becomes the largest of
// what each says. prev is the record's revision (0: none).
func (q *Queue) redelivery(ctx context.Context, msg jetstream.Msg, d *Delivery, log loggerLike) (prev uint64, done bool) {
	meta, _ := msg.Metadata()
	seq := meta.Sequence.Stream
	handedBack := seq <= q.handedBack
	if d.Attempt <= 1 && seq > q.storedBefore {
		return 0, false
	}
	cur, rev, err := q.records.get(ctx, d.ID)
	switch {
	case err == nil && cur.State == StateDone:
		log.Info("redelivered job already has a result; acking")
		q.ack(msg, log)
		return 0, true
	case err == nil:
		prev = rev
		if cur.Seq == seq {
			d.LastError = cur.LastError
			d.Attempt = max(d.Attempt, cur.Attempts+1)
		}
	case !errors.Is(err, ErrNotFound):
		log.Warn("reading the job's record; running it", "err", err)
	}
	if handedBack {
		d.Attempt = max(d.Attempt, 2)
	}
	return prev, false
}

// keep writes what a finished job left (its result, its dead letter; what
// names it for the log) with write until it is stored, counting each
// failed write in failures. A write the storage refuses is tried again once
// the storage has recovered (the probe says so), any other failure after a
// backoff; meanwhile the job stays in progress and its handler does not run
// again. It returns nil once stored, else the error that ended it: one that
// writing again cannot fix (permanentWriteErr), or, once ctx is done (the
// end of a shutdown's drain), the last one.
func (q *Queue) keep(ctx context.Context, what string, failures *atomic.Uint64, write func(context.Context) error, log loggerLike) error {
	held := false
	defer func() {
		if held {
			q.faults.held.Add(-1)
		}
	}()
	for attempt := 1; ; attempt++ {
		wctx, cancel := q.writeCtx(context.WithoutCancel(ctx), q.cfg.PublishTimeout)
		err := write(wctx)
		if cause := context.Cause(wctx); err != nil && errors.Is(cause, ErrStorage) {
			err = cause
		}
		cancel()
		if err == nil {
			if held {
				log.Warn(what+" is stored after all", "attempts", attempt)
			}
			return nil
		}
		err = q.writeFailed(err)
		failures.Add(1)
		if permanentWriteErr(err) {
			return err
		}
		if !held {
			held = true
			q.faults.held.Add(1)
			log.Error(what+" could not be stored; keeping it and writing it again once the storage takes it (the job does not run again)", "err", err)
		} else if attempt%10 == 0 {
			log.Warn(what+" still cannot be stored", "attempts", attempt, "err", err)
		}
		wait := make(<-chan struct{})
		if errors.Is(err, ErrStorage) {
			wait = q.health.healthy()
		}
		t := time.NewTimer(min(q.backoff(attempt), heldRetryEvery))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-wait:
		case <-t.C:
		}
		t.Stop()
	}
}

// call runs the handler, turning a panic into an error.
func (q *Queue) call(ctx context.Context, handler Handler, d Delivery) (result []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			q.log.Error("handler panicked", "job", d.ID, "panic", r, "stack", string(debug.Stack()))
			result, err = nil, fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return handler(ctx, d)
}

// keepAlive tells the server the job is still running every AckWait/5, so
// a long job is not redelivered while it runs. The returned func stops it.
func (q *Queue) keepAlive(msg jetstream.Msg, log loggerLike) func() {
	every := progressEvery(q.cfg.AckWait)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := msg.InProgress(); err != nil {
					log.Warn("progress signal", "err", err)
				}
			}
		}
	}()
	return func() { close(stop); <-done }
}

// progressEvery is how often a job delivered with ackWait is said to be
// in progress: five times within it, so four signals can be late (a GC
// pause, a starved CPU, a blip of the connection) before the server
// redelivers a job that is still running.
func progressEvery(ackWait time.Duration) time.Duration { return ackWait / 5 }

// loggerLike is the part of *slog.Logger the helpers use.
type loggerLike interface {
	Info(msg string, args ...any)
	Warn(msg string, args ...any)
	Error(msg string, args ...any)
}

// ack acknowledges msg without waiting for the server's confirmation: its
// record is durable already, so a lost ack only means a redelivery, which
// finds the record and acknowledges the job without running it.
func (q *Queue) ack(msg jetstream.Msg, log loggerLike) {
	if err := msg.Ack(); err != nil {
		log.Warn("ack not sent; the job will be redelivered and acknowledged then", "err", err)
	}
}

func (q *Queue) nak(msg jetstream.Msg, delay time.Duration, log loggerLike) {
	var err error
	if delay > 0 {
		err = msg.NakWithDelay(delay)
	} else {
		err = msg.Nak()
	}
	if err != nil {
		log.Warn("nak failed; the job is redelivered after AckWait", "err", err)
	}
}

// backoff is RetryDelay·2^(attempt-1), capped at MaxRetryDelay, ±20%.
func (q *Queue) backoff(attempt int) time.Duration {
	d := q.cfg.RetryDelay
	for i := 1; i < attempt && d < q.cfg.MaxRetryDelay; i++ {
		d *= 2
	}
	d = min(d, q.cfg.MaxRetryDelay)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// deadLetter stores the job in the dead-letter stream with reason, then
// acks it. If the dead letter cannot be stored the job is nakked instead
// and dead-lettered on its next delivery.
func (q *Queue) deadLetter(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, d Delivery, reason string, log loggerLike) {
	dl := &nats.Msg{Subject: q.deadPrefix + d.ID, Data: d.Payload, Header: nats.Header{}}
	for k, v := range msg.Headers() {
		if strings.HasPrefix(k, "Plumb-") {
			dl.Header[k] = v
		}
	}
	if len(reason) > 4096 {
		reason = reason[:4096] + "…"
	}
	dl.Header.Set(HeaderError, sanitizeHeader(reason))
	dl.Header.Set(HeaderDeliveries, strconv.Itoa(d.Attempt))
	if dl.Header.Get(HeaderEnqueued) == "" {
		dl.Header.Set(HeaderEnqueued, d.Enqueued.UTC().Format(time.RFC3339Nano))
	}
	dl.Header.Set(HeaderSeq, strconv.FormatUint(meta.Sequence.Stream, 10))
	msgID := "dead-" + d.ID + "-" + strconv.FormatUint(meta.Sequence.Stream, 10)
	err := q.keep(ctx, "the job's dead letter", &q.faults.deadRetries, func(ctx context.Context) error {
		_, err := q.publish(ctx, dl, msgID)
		return err
	}, log)
	if err != nil {
		// It stays in the jobs stream and is dead-lettered (without
		// running) at its next delivery.
		log.Error("the job's dead letter could not be stored; it stays queued", "err", err)
		q.nak(msg, q.cfg.MaxRetryDelay, log)
		return
	}
	log.Warn("job dead-lettered", "reason", reason)
	q.ack(msg, log)
}

// sanitizeHeader keeps a header value on one line.
func sanitizeHeader(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}
