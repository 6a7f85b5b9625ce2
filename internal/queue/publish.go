package queue

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Message headers the queue sets on jobs and dead letters.
const (
	HeaderJobID       = "Plumb-Job-Id"
	HeaderKind        = "Plumb-Kind"
	HeaderIntegration = "Plumb-Integration"
	HeaderDedupeKey   = "Plumb-Dedupe-Key"
	HeaderError       = "Plumb-Error"
	HeaderDeliveries  = "Plumb-Deliveries"
	HeaderEnqueued    = "Plumb-Enqueued"
	HeaderRequestID   = "Plumb-Request-Id"
	HeaderTraceParent = "Plumb-Traceparent"
	HeaderTraceState  = "Plumb-Tracestate"
)

// Job is one unit of work: usually one lead for one integration.
type Job struct {
	// ID names the job for status and result lookups. Empty: Publish
	// generates one. Letters, digits, '-', '_' and '=' only, at most 128.
	ID string
	// Kind says what the payload is; it travels with the job, its dead
	// letter and a retry of it. Empty on a job stored without one (by a
	// version of plumb before kinds).
	Kind Kind
	// Integration the job is for (informational for the queue).
	Integration string
	// Payload is the job's body, typically the lead as JSON.
	Payload []byte
	// DedupeKey makes Publish idempotent within Config.DedupeWindow: a
	// second Publish with the same key is not stored. Empty: the ID is the
	// key (so re-publishing a job with a caller-chosen ID is also deduped).
	DedupeKey string
	// RequestID, TraceParent and TraceState are the client request id
	// and the W3C trace context of the request that stored the job, so
	// its run logs and traces under them; they travel with the job, its
	// dead letter and a retry of it, like Kind. Each at most 512 bytes,
	// no control characters.
	RequestID, TraceParent, TraceState string
}

// Kind is what a job's payload is, so a handler chooses how to run it by
// a typed value instead of reading its id.
type Kind string

// The kinds of job plumb serve stores.
const (
	// KindLead is a lead to run through an integration's steps.
	KindLead Kind = "lead"
	// KindWebhook is a verified webhook delivery (its envelope).
	KindWebhook Kind = "webhook"
)

// kindOf reads a job's kind from its headers ("" when it has none).
func kindOf(h nats.Header) Kind { return Kind(h.Get(HeaderKind)) }

// traceHeaders are the headers of Job.RequestID, TraceParent, TraceState.
var traceHeaders = [...]string{HeaderRequestID, HeaderTraceParent, HeaderTraceState}

// setTrace sets a job's request id and trace context headers.
func setTrace(h nats.Header, job Job) {
	for i, v := range [...]string{job.RequestID, job.TraceParent, job.TraceState} {
		if v != "" {
			h.Set(traceHeaders[i], v)
		}
	}
}

// traceOf reads a job's request id and trace context from its headers.
func traceOf(h nats.Header, job *Job) {
	job.RequestID, job.TraceParent, job.TraceState = h.Get(HeaderRequestID), h.Get(HeaderTraceParent), h.Get(HeaderTraceState)
}

// Published is what Publish reports.
type Published struct {
	// ID of the job: the one given or generated, or, for a duplicate, the
	// original job's ID when it is still in the stream (empty when it was
	// already consumed).
	ID string
	// Sequence is the job's position in the jobs stream (the original's
	// for a duplicate).
	Sequence uint64
	// Duplicate is true when JetStream recognised the dedupe key within
	// the window and did not store the job again.
	Duplicate bool
	// Batched is true when PublishAll stored the job in an atomic batch.
	Batched bool
}

// maxHeaderValue bounds Job.Integration and Job.DedupeKey.
const maxHeaderValue = 512

// headerValue checks a value that travels in a message header: it may come
// from untrusted input (a webhook's delivery id), so it must not be able to
// end the header or add another.
func headerValue(v string) error {
	if len(v) > maxHeaderValue {
		return fmt.Errorf("%d bytes, want at most %d", len(v), maxHeaderValue)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("control character %U", r)
		}
	}
	return nil
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9_=-]{1,128}$`)

// ValidID reports whether id can be a job id.
func ValidID(id string) bool { return idRE.MatchString(id) }

// NewID returns a fresh, unique job id.
func NewID() string { return nuid.Next() }

// Publish stores job in the jobs stream and returns once JetStream
// acknowledged the write: on an embedded server with the default
// SyncInterval the job is fsynced; on a cluster it is on a quorum of
// replicas. An error means the job may or may not be stored; publishing it
// again with the same ID or DedupeKey is safe within the dedupe window.
// Writes are retried while a cluster elects a stream leader; a retried write
// that had in fact landed is reported as a Duplicate of itself (same ID).
// Payloads are limited by the server's max_payload (1 MiB by default).
//
// A queue whose storage is full or failing refuses the job at once with an
// error wrapping ErrStorage (see Writable); so does a write the storage
// refuses, and one it leaves unanswered because its store failed. The whole
// call takes at most Config.PublishTimeout.
func (q *Queue) Publish(ctx context.Context, job Job) (Published, error) {
	msg, key, err := q.message(job)
	if err != nil {
		return Published{}, err
	}
	if err := q.Writable(); err != nil {
		q.faults.refused.Add(1)
		return Published{}, fmt.Errorf("queue: publish job %s: %w", job.ID, err)
	}
	return q.publishJob(ctx, msg, key)
}

// message checks job and makes its message (a generated id is set on the
// message, and read back from it by publishJob) and dedupe key.
func (q *Queue) message(job Job) (*nats.Msg, string, error) {
	if job.ID == "" {
		job.ID = NewID()
	}
	if !ValidID(job.ID) {
		return nil, "", fmt.Errorf("queue: publish: job id %q: %w", job.ID, ErrInvalidID)
	}
	for what, v := range map[string]string{"integration": job.Integration, "dedupe key": job.DedupeKey,
		"request id": job.RequestID, "traceparent": job.TraceParent, "tracestate": job.TraceState} {
		if err := headerValue(v); err != nil {
			return nil, "", fmt.Errorf("queue: publish job %s: %s: %w", job.ID, what, err)
		}
	}
	key := job.DedupeKey
	if key == "" {
		key = job.ID
	}
	msg := &nats.Msg{
		Subject: q.jobsPrefix + job.ID,
		Data:    job.Payload,
		Header:  nats.Header{},
	}
	msg.Header.Set(HeaderJobID, job.ID)
	if job.Kind != "" {
		msg.Header.Set(HeaderKind, string(job.Kind))
	}
	msg.Header.Set(jetstream.MsgIDHeader, key) // dedupes a batch's jobs too
	if job.Integration != "" {
		msg.Header.Set(HeaderIntegration, job.Integration)
	}
	if job.DedupeKey != "" {
		msg.Header.Set(HeaderDedupeKey, job.DedupeKey)
	}
	setTrace(msg.Header, job)
	msg.Header.Set(HeaderEnqueued, time.Now().UTC().Format(time.RFC3339Nano))
	return msg, key, nil
}

// publishJob stores one job's message, waiting for its acknowledgement.
func (q *Queue) publishJob(ctx context.Context, msg *nats.Msg, key string) (Published, error) {
	id := msg.Header.Get(HeaderJobID)
	ack, err := q.publish(ctx, msg, key)
	if err != nil {
		if errors.Is(err, ErrStorage) {
			q.faults.refused.Add(1)
		}
		return Published{}, fmt.Errorf("queue: publish job %s: %w", id, err)
	}
	p := Published{ID: id, Sequence: ack.Sequence, Duplicate: ack.Duplicate}
	if !ack.Duplicate {
		q.ledger.add(ack.Sequence, id)
	}
	if ack.Duplicate {
		p.ID = ""
		if orig, err := q.jobs.GetMsg(ctx, ack.Sequence); err == nil {
			p.ID = orig.Header.Get(HeaderJobID)
		}
	}
	return p, nil
}

// MaxBatch is the most jobs PublishAll stores in one atomic batch (the
// server's default limit is 1,000).
const MaxBatch = 500

// PublishAll stores jobs as Publish does and returns what became of each,
// in order: its Published, or its error (nil entries mean stored). The jobs
// go in atomic batches of up to MaxBatch when the server supports them
// (nats-server 2.12 and later): a batch is stored whole or not at all, and
// on an embedded server that fsyncs every write it costs one fsync instead
// of one per job. A batch refused as a whole — one of its jobs is a
// duplicate within the dedupe window, a cluster is electing a leader, the
// server is older — is published again job by job (the message ids make
// that safe), which reports duplicates and errors per job as Publish does.
//
// Storage trouble ends the call: the jobs not stored yet fail at once with
// the error (wrapping ErrStorage) instead of each waiting out its own
// write; the whole call takes at most Config.PublishTimeout.
func (q *Queue) PublishAll(ctx context.Context, jobs []Job) ([]Published, []error) {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.PublishTimeout)
	defer cancel()
	out := make([]Published, len(jobs))
	errs := make([]error, len(jobs))
	msgs := make([]*nats.Msg, len(jobs))
	keys := make([]string, len(jobs))
	for i := range jobs {
		msgs[i], keys[i], errs[i] = q.message(jobs[i])
	}
	var stop stopAll
	if err := q.Writable(); err != nil {
		stop.set(err)
	}
	var single []int // jobs to publish one by one
	for start := 0; start < len(jobs) && stop.err() == nil; start += MaxBatch {
		end := min(start+MaxBatch, len(jobs))
		ok := q.atomic && end-start > 1
		for i := start; i < end && ok; i++ {
			ok = errs[i] == nil
		}
		if ok {
			seq, err := q.publishBatch(ctx, msgs[start:end])
			if err == nil {
				for i := start; i < end; i++ {
					out[i] = Published{ID: msgs[i].Header.Get(HeaderJobID), Sequence: seq - uint64(end-1-i), Batched: true}
					q.ledger.add(out[i].Sequence, out[i].ID)
				}
				continue
			}
			if errors.Is(err, ErrStorage) {
				stop.set(err)
				break
			}
			q.log.Debug("atomic batch refused; publishing its jobs one by one", "jobs", end-start, "err", err)
		}
		for i := start; i < end; i++ {
			if errs[i] == nil {
				single = append(single, i)
			}
		}
	}
	// one by one, a few at a time: each waits for its own (fsynced) write
	each(len(single), func(j int) {
		i := single[j]
		if stop.err() != nil {
			return
		}
		out[i], errs[i] = q.publishJob(ctx, msgs[i], keys[i])
		if errors.Is(errs[i], ErrStorage) || errors.Is(errs[i], context.DeadlineExceeded) {
			stop.set(errs[i])
		}
	})
	if err := stop.err(); err != nil {
		// the jobs not tried, or not stored, get the error that stopped the call
		for i := range jobs {
			if errs[i] == nil && out[i] == (Published{}) {
				errs[i] = fmt.Errorf("queue: publish job %s: not stored: %w", msgs[i].Header.Get(HeaderJobID), err)
				q.faults.refused.Add(1)
			}
		}
	}
	return out, errs
}

// stopAll is the first error that ends a PublishAll call.
type stopAll struct {
	mu    sync.Mutex
	first error
}

func (s *stopAll) set(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.first == nil {
		s.first = err
	}
}

func (s *stopAll) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first
}

// Known reports, for each id, whether the queue knows the job: queued,
// running, done or dead (within the results' lifetime). A job lost from a
// damaged stream is not known: publishing it again stores it. The lookups
// run a few at a time.
func (q *Queue) Known(ctx context.Context, ids []string) []bool {
	known := make([]bool, len(ids))
	each(len(ids), func(i int) {
		st, err := q.Status(ctx, ids[i])
		known[i] = err == nil && st.State != StateLost
	})
	return known
}

// each calls f(0) … f(n-1), up to 16 at a time.
func each(n int, f func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(16, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// publishBatch stores msgs as one atomic batch and returns the stream
// sequence of its last message (the batch's are consecutive). The messages
// are copied with the batch's headers added. Only the commit waits for an
// answer; a message the server refuses before it makes the commit fail as an
// incomplete batch, and nothing is stored.
func (q *Queue) publishBatch(ctx context.Context, msgs []*nats.Msg) (uint64, error) {
	if len(msgs) == 0 {
		return 0, errors.New("queue: an empty batch")
	}
	id := nuid.Next()
	batched := func(i int) *nats.Msg {
		// a copy: a one-by-one fallback sends msgs[i] without these
		b := &nats.Msg{Subject: msgs[i].Subject, Data: msgs[i].Data, Header: nats.Header{}}
		for k, v := range msgs[i].Header {
			b.Header[k] = v
		}
		b.Header.Set("Nats-Batch-Id", id)
		b.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
		return b
	}
	last := len(msgs) - 1
	for i := range last {
		if err := q.nc.PublishMsg(batched(i)); err != nil {
			return 0, err
		}
	}
	commit := batched(last)
	commit.Header.Set("Nats-Batch-Commit", "1")
	ctx, cancel := q.writeCtx(ctx, q.cfg.PublishTimeout)
	defer cancel()
	ack, err := q.js.PublishMsg(ctx, commit)
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, ErrStorage) {
			err = cause
		}
		return 0, q.writeFailed(err)
	}
	if ack.Sequence < uint64(len(msgs)) {
		return 0, fmt.Errorf("batch acknowledged at sequence %d, before its %d messages could fit", ack.Sequence, len(msgs))
	}
	return ack.Sequence, nil
}

// publish sends msg with the given Nats-Msg-Id, retrying for up to
// PublishTimeout while the cluster has no leader for the stream (an
// election after a node loss). Retrying is safe: the message id dedupes a
// write that did land. A write refused for lack of storage is not retried:
// its error wraps ErrStorage.
func (q *Queue) publish(ctx context.Context, msg *nats.Msg, msgID string) (*jetstream.PubAck, error) {
	ctx, cancel := q.writeCtx(ctx, q.cfg.PublishTimeout)
	defer cancel()
	ack, err := retryIf(ctx, transientWrite, func(callCtx context.Context) (*jetstream.PubAck, error) {
		return q.js.PublishMsg(callCtx, msg, jetstream.WithMsgID(msgID))
	})
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, ErrStorage) {
			err = cause
		}
		return nil, q.writeFailed(err)
	}
	return ack, nil
}

// transientWrite: a write worth another attempt (a cluster electing a
// leader), not one the storage refused.
func transientWrite(err error) bool {
	return transient(err) && !storageErr(err)
}

// notFound maps the client's not-found errors to ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrKeyNotFound) ||
		errors.Is(err, jetstream.ErrKeyDeleted) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
