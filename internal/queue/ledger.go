package queue

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ledgerFlushAt is how many ledger entries go in one message at most.
const ledgerFlushAt = 4000

// ledger records, for every job the jobs stream acknowledged, its stream
// sequence and id in the ledger stream (<NAME>_LEDGER), many jobs per
// message: at the next start the queue can then tell how many jobs a
// damaged jobs stream lost and which ones. Entries are written in the
// background, so accepting a job waits for nothing more than its own
// write; the writer sends whatever gathered over ledgerGather and while its
// previous write was in flight. A crash loses the entries not yet written:
// their jobs, if the stream lost them too, are counted but cannot be
// named.
type ledger struct {
	q       *Queue
	subject string

	mu   sync.Mutex
	buf  bytes.Buffer
	n    int
	wake chan struct{}
}

func newLedger(q *Queue) *ledger {
	return &ledger{q: q, subject: q.cfg.Name + ".ledger", wake: make(chan struct{}, 1)}
}

// add records that job id is at seq in the jobs stream.
func (l *ledger) add(seq uint64, id string) {
	l.mu.Lock()
	l.buf.WriteString(strconv.FormatUint(seq, 10))
	l.buf.WriteByte(' ')
	l.buf.WriteString(id)
	l.buf.WriteByte('\n')
	l.n++
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// ledgerGather is how long the ledger writer lets entries gather after the
// first one before it writes them: jobs published one at a time then share
// a write (and its fsync) instead of costing one each.
const ledgerGather = 10 * time.Millisecond

// loop writes entries as they come until stop is closed, then writes what
// is left.
func (l *ledger) loop(stop <-chan struct{}) {
	gather := time.NewTimer(ledgerGather)
	defer gather.Stop()
	for {
		select {
		case <-stop:
			l.mu.Lock()
			pending := l.n
			l.mu.Unlock()
			if err := l.q.health.err(); err != nil && pending > 0 {
				// a write would wait out its timeout: the ids of these
				// jobs go unrecorded (a loss of them would be counted, not named)
				l.q.log.Warn("closing with job ledger entries unwritten", "err", err)
				return
			}
			l.flush()
			return
		case <-l.wake:
		}
		gather.Reset(ledgerGather)
		select {
		case <-stop:
		case <-gather.C:
		}
		for l.flush() {
		}
	}
}

// flush writes up to ledgerFlushAt pending entries and reports whether
// more are pending. A failed write keeps its entries for the next one.
func (l *ledger) flush() (more bool) {
	l.mu.Lock()
	if l.n == 0 {
		l.mu.Unlock()
		return false
	}
	data := bytes.Clone(l.buf.Bytes())
	cut, n := len(data), l.n
	if n > ledgerFlushAt {
		cut, n = 0, 0
		for n < ledgerFlushAt {
			cut += bytes.IndexByte(data[cut:], '\n') + 1
			n++
		}
		data = data[:cut]
	}
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), l.q.cfg.PublishTimeout)
	defer cancel()
	if _, err := l.q.js.PublishMsg(ctx, &nats.Msg{Subject: l.subject, Data: data}); err != nil {
		l.q.log.Warn("writing the job ledger; will retry with the next jobs", "err", err, "entries", n)
		return false
	}
	l.mu.Lock()
	rest := l.buf.Bytes()[cut:]
	l.buf.Reset()
	l.buf.Write(rest)
	l.n -= n
	more = l.n > 0
	l.mu.Unlock()
	return more
}

// parseLedger calls fn for each entry of a ledger message.
func parseLedger(data []byte, fn func(seq uint64, id string)) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		seqText, id, ok := bytes.Cut(sc.Bytes(), []byte{' '})
		if seq, err := strconv.ParseUint(string(seqText), 10, 64); ok && err == nil {
			fn(seq, string(id))
		}
	}
}

// lastLedgerSeq returns the highest jobs-stream sequence of the ledger's
// last message (0 when the ledger is empty).
func (q *Queue) lastLedgerSeq(ctx context.Context) (uint64, error) {
	raw, err := q.ledgerStream.GetLastMsgForSubject(ctx, q.ledger.subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var last uint64
	parseLedger(raw.Data, func(seq uint64, _ string) { last = max(last, seq) })
	return last, nil
}

// scan calls fn with each message of stream stored at or after since, its
// headers only when headersOnly.
func scan(ctx context.Context, stream jetstream.Stream, since time.Time, headersOnly bool, fn func(jetstream.Msg)) error {
	info, err := stream.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs == 0 || info.State.LastTime.Before(since) {
		return nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since, HeadersOnly: headersOnly,
	})
	if err != nil {
		return err
	}
	// each message says how many follow: fetch exactly those
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		return err
	}
	pending := uint64(1)
	take := func(msg jetstream.Msg) {
		fn(msg)
		if meta, err := msg.Metadata(); err == nil {
			pending = meta.NumPending
		}
	}
	take(msg)
	for pending > 0 {
		batch, err := cons.Fetch(int(min(pending, 1000)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return err
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			take(msg)
		}
		if err := batch.Error(); err != nil {
			return err
		}
		if got == 0 {
			return fmt.Errorf("stream %s: %d messages announced, none came", info.Config.Name, pending)
		}
	}
	return nil
}
