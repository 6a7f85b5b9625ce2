package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// HeaderState is set on a stored record: the job's state in it.
const HeaderState = "Plumb-State"

// kvRecords keeps records in a JetStream KV bucket (<name>_leads), one key
// per job id: what every process on a cluster shares. A batch of writes
// goes as one atomic batch where the bucket's stream takes them (one write
// to the store, so one fsync on a server that fsyncs every write), else
// as pipelined publishes.
type kvRecords struct {
	q      *Queue
	kv     jetstream.KeyValue
	stream jetstream.Stream
	prefix string // "$KV.<bucket>."
	atomic bool
}

func (s *kvRecords) get(ctx context.Context, id string) (Record, uint64, error) {
	e, err := s.kv.Get(ctx, id)
	if err != nil {
		return Record{}, 0, notFound(err)
	}
	rec, err := decodeRecord(e.Value())
	return rec, e.Revision(), err
}

// message is the stored form of w: its record, the job's sequence and
// state in headers (read by finished without decoding), and the revision
// the write expects.
func (s *kvRecords) message(w *recordWrite) (*nats.Msg, error) {
	b, err := w.rec.encode()
	if err != nil {
		return nil, err
	}
	m := &nats.Msg{Subject: s.prefix + w.rec.ID, Data: b, Header: nats.Header{}}
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(w.prev, 10))
	m.Header.Set(HeaderSeq, strconv.FormatUint(w.rec.Seq, 10))
	m.Header.Set(HeaderState, string(w.rec.State))
	return m, nil
}

func (s *kvRecords) put(ctx context.Context, ws []*recordWrite) {
	msgs := make([]*nats.Msg, 0, len(ws))
	todo := make([]*recordWrite, 0, len(ws))
	for _, w := range ws {
		m, err := s.message(w)
		if err != nil {
			w.err = err
			continue
		}
		msgs, todo = append(msgs, m), append(todo, w)
	}
	if s.atomic && len(msgs) > 1 {
		last, err := s.q.publishBatch(ctx, msgs)
		if err == nil {
			for i, w := range todo {
				w.rev, w.err = last-uint64(len(todo)-1-i), nil
			}
			return
		}
		if errors.Is(err, ErrStorage) {
			for _, w := range todo {
				w.err = err
			}
			return
		}
		// refused as a whole (one write's revision was stale, an
		// election): each on its own, which says which
	}
	s.pipelined(ctx, msgs, todo)
}

// pipelined publishes msgs without waiting for each, then collects the
// acknowledgements.
func (s *kvRecords) pipelined(ctx context.Context, msgs []*nats.Msg, ws []*recordWrite) {
	ctx, cancel := s.q.writeCtx(ctx, s.q.cfg.PublishTimeout)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		futures[i], ws[i].err = s.q.js.PublishMsgAsync(m)
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			ws[i].rev, ws[i].err = ack.Sequence, nil
		case err := <-f.Err():
			ws[i].err = s.writeErr(err)
		case <-ctx.Done():
			err := ctx.Err()
			if cause := context.Cause(ctx); errors.Is(cause, ErrStorage) {
				err = cause
			}
			ws[i].err = s.q.writeFailed(err)
		}
	}
}

// writeErr classifies a refused record write.
func (s *kvRecords) writeErr(err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return fmt.Errorf("%w: %w", errConflict, err)
	}
	return s.q.writeFailed(err)
}

func (s *kvRecords) finished(ctx context.Context, since time.Time, fn func(seq uint64) bool) error {
	return scanDone(ctx, s.stream, since, fn)
}

// scanDone calls fn, newest first, with the job sequence of each done
// record (or result of an earlier version: no state header) stored in
// stream since since, until fn returns false.
func scanDone(ctx context.Context, st jetstream.Stream, since time.Time, fn func(seq uint64) bool) error {
	info, err := st.Info(ctx)
	if err != nil {
		return err
	}
	for seq := info.State.LastSeq; seq >= info.State.FirstSeq && seq > 0; seq-- {
		raw, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if raw.Time.Before(since) {
			break
		}
		if state := raw.Header.Get(HeaderState); state != "" && state != string(StateDone) {
			continue
		}
		done, _ := strconv.ParseUint(raw.Header.Get(HeaderSeq), 10, 64)
		if !fn(done) {
			return nil
		}
	}
	return nil
}

// openKVRecords opens (creating or updating) the records bucket.
func (q *Queue) openKVRecords(ctx context.Context) (*kvRecords, error) {
	kv, err := q.kv(ctx, "leads", q.cfg.ResultTTL)
	if err != nil {
		return nil, err
	}
	s := &kvRecords{q: q, kv: kv, prefix: "$KV." + kv.Bucket() + "."}
	name := "KV_" + kv.Bucket()
	// each call bounded and retried: a cluster starting or electing may
	// not answer the first ones (a single call could hang until ctx ends)
	s.stream, err = retry(ctx, func(ctx context.Context) (jetstream.Stream, error) { return q.js.Stream(ctx, name) })
	if err != nil {
		return nil, fmt.Errorf("queue: bucket %s: %w", kv.Bucket(), err)
	}
	// a batch of records is one atomic batch where the server takes them
	// (nats-server 2.12 and later)
	cfg := s.stream.CachedInfo().Config
	if !cfg.AllowAtomicPublish {
		cfg.AllowAtomicPublish = true
		if st, err := retry(ctx, func(ctx context.Context) (jetstream.Stream, error) { return q.js.UpdateStream(ctx, cfg) }); err == nil {
			s.stream = st
		} else {
			q.log.Debug("the records bucket takes no atomic batches; records are written one by one", "err", err)
		}
	}
	s.atomic = s.stream.CachedInfo().Config.AllowAtomicPublish
	return s, nil
}
