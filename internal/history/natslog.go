package history

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// NATSLog is a Log on a JetStream stream: Append publishes asynchronously
// and waits for the acks (one round trip for many ops), Follow reads the
// stream with an ordered consumer from a sequence on.
type NATSLog struct {
	js      jetstream.JetStream
	stream  jetstream.Stream
	subject string
}

// NewNATSLog is the log of stream, whose ops are published on subject.
func NewNATSLog(js jetstream.JetStream, stream jetstream.Stream, subject string) *NATSLog {
	return &NATSLog{js: js, stream: stream, subject: subject}
}

// Append implements Log.
func (l *NATSLog) Append(ctx context.Context, ops [][]byte) (uint64, error) {
	futs := make([]jetstream.PubAckFuture, 0, len(ops))
	for _, m := range ops {
		f, err := l.js.PublishAsync(l.subject, m)
		if err != nil {
			return 0, fmt.Errorf("publishing: %w", err)
		}
		futs = append(futs, f)
	}
	var last uint64
	for _, f := range futs {
		select {
		case ack := <-f.Ok():
			last = max(last, ack.Sequence)
		case err := <-f.Err():
			return 0, fmt.Errorf("publishing: %w", err)
		case <-ctx.Done():
			return 0, fmt.Errorf("publishing: %w", ctx.Err())
		}
	}
	return last, nil
}

// Follow implements Log.
func (l *NATSLog) Follow(ctx context.Context, after uint64, out chan<- Entry) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{l.subject}}
	if after > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, err := l.stream.OrderedConsumer(cctx, cfg)
	cancel()
	if err != nil {
		return fmt.Errorf("reading the log: %w", err)
	}
	it, err := c.Messages()
	if err != nil {
		return fmt.Errorf("reading the log: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		m, err := it.Next()
		if err != nil {
			return fmt.Errorf("reading the log: %w", err)
		}
		md, err := m.Metadata()
		if err != nil {
			continue
		}
		select {
		case out <- Entry{Seq: md.Sequence.Stream, Data: m.Data()}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Last implements Log.
func (l *NATSLog) Last(ctx context.Context) (uint64, error) {
	si, err := l.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("reading the log's state: %w", err)
	}
	return si.State.LastSeq, nil
}
