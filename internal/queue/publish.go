package queue

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Message headers the queue sets on jobs and dead letters.
const (
	HeaderJobID       = "Plumb-Job-Id"
	HeaderIntegration = "Plumb-Integration"
	HeaderDedupeKey   = "Plumb-Dedupe-Key"
	HeaderError       = "Plumb-Error"
	HeaderDeliveries  = "Plumb-Deliveries"
	HeaderEnqueued    = "Plumb-Enqueued"
)

// Job is one unit of work: usually one lead for one integration.
type Job struct {
	// ID names the job for status and result lookups. Empty: Publish
	// generates one. Letters, digits, '-', '_' and '=' only, at most 128.
	ID string
	// Integration the job is for (informational for the queue).
	Integration string
	// Payload is the job's body, typically the lead as JSON.
	Payload []byte
	// DedupeKey makes Publish idempotent within Config.DedupeWindow: a
	// second Publish with the same key is not stored. Empty: the ID is the
	// key (so re-publishing a job with a caller-chosen ID is also deduped).
	DedupeKey string
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
func (q *Queue) Publish(ctx context.Context, job Job) (Published, error) {
	if job.ID == "" {
		job.ID = NewID()
	}
	if !ValidID(job.ID) {
		return Published{}, fmt.Errorf("queue: publish: job id %q: %w", job.ID, ErrInvalidID)
	}
	for what, v := range map[string]string{"integration": job.Integration, "dedupe key": job.DedupeKey} {
		if err := headerValue(v); err != nil {
			return Published{}, fmt.Errorf("queue: publish job %s: %s: %w", job.ID, what, err)
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
	if job.Integration != "" {
		msg.Header.Set(HeaderIntegration, job.Integration)
	}
	if job.DedupeKey != "" {
		msg.Header.Set(HeaderDedupeKey, job.DedupeKey)
	}
	msg.Header.Set(HeaderEnqueued, time.Now().UTC().Format(time.RFC3339Nano))
	ack, err := q.publish(ctx, msg, key)
	if err != nil {
		return Published{}, fmt.Errorf("queue: publish job %s: %w", job.ID, err)
	}
	p := Published{ID: job.ID, Sequence: ack.Sequence, Duplicate: ack.Duplicate}
	if ack.Duplicate {
		p.ID = ""
		if orig, err := q.jobs.GetMsg(ctx, ack.Sequence); err == nil {
			p.ID = orig.Header.Get(HeaderJobID)
		}
	}
	return p, nil
}

// publish sends msg with the given Nats-Msg-Id, retrying for up to
// ConnectTimeout while the cluster has no leader for the stream (an
// election after a node loss). Retrying is safe: the message id dedupes a
// write that did land.
func (q *Queue) publish(ctx context.Context, msg *nats.Msg, msgID string) (*jetstream.PubAck, error) {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.ConnectTimeout)
	defer cancel()
	return retry(ctx, func(callCtx context.Context) (*jetstream.PubAck, error) {
		return q.js.PublishMsg(callCtx, msg, jetstream.WithMsgID(msgID))
	})
}

// notFound maps the client's not-found errors to ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrKeyNotFound) ||
		errors.Is(err, jetstream.ErrKeyDeleted) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
