package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// HeaderSeq is set on a stored result and a dead letter: the jobs-stream
// sequence of the job it finished. It is how the queue tells, at its next
// start, a job that finished from one that was lost.
const HeaderSeq = "Plumb-Seq"

// StateLost is the state of a job that was accepted and then lost from a
// damaged jobs stream (see Lost).
const StateLost State = "lost"

// maxLostNamed bounds the lost jobs a LostReport names and the lost bucket
// records.
const maxLostNamed = 10000

// maxLostCheck bounds the gaps in the jobs stream Open checks one by one.
const maxLostCheck = 1 << 20

// LostReport is what Open found missing from the jobs stream: jobs it had
// accepted, that never finished (no result, no dead letter), and that the
// stream no longer holds (its files were damaged or truncated while the
// queue was down).
type LostReport struct {
	// Count of lost jobs.
	Count int
	// IDs of the lost jobs the job ledger names (at most 10,000); the
	// others were accepted just before a crash or longer ago than the
	// ledger keeps (Config.ResultTTL).
	IDs []string
	// Seqs are the lost jobs' jobs-stream sequences (at most 10,000).
	Seqs []uint64
	// Unverified counts gaps in the stream that could not be checked
	// (results stored by an older version carry no sequence); they are not
	// in Count.
	Unverified int
	// Detected is when Open found them.
	Detected time.Time
}

// Lost returns what Open found lost from the jobs stream (zero when
// nothing was).
func (q *Queue) Lost() LostReport { return q.lost }

// lostKey names a lost job in the lost bucket.
func lostKey(id string) string { return "id." + id }

func lostSeqKey(seq uint64) string { return "seq." + strconv.FormatUint(seq, 10) }

// checkLost compares the jobs stream with what the queue accepted and
// finished, before the workers start: every job above the consumer's ack
// floor, up to the last sequence the stream or the job ledger knows, must
// be in the stream unless its result or dead letter (HeaderSeq) was
// stored. Those missing are reported (Lost, an ERROR log) and recorded in
// the lost bucket, where Status finds them.
func (q *Queue) checkLost(ctx context.Context) error {
	// the ledger first: on a cluster other processes publish meanwhile, and
	// every job it names must then be in the stream state read next
	// each read is bounded and retried (retry): on a cluster still
	// electing its leaders a request can go unanswered
	ledgerLast, err := retry(ctx, q.lastLedgerSeq)
	if err != nil {
		return fmt.Errorf("queue: reading the job ledger: %w", err)
	}
	info, err := retry(ctx, func(ctx context.Context) (*jetstream.StreamInfo, error) {
		return q.jobs.Info(ctx, jetstream.WithDeletedDetails(true))
	})
	if err != nil {
		return fmt.Errorf("queue: checking the jobs stream: %w", err)
	}
	ci, err := retry(ctx, q.cons.Info)
	if err != nil {
		return fmt.Errorf("queue: checking the jobs stream: %w", err)
	}
	cand := gaps(info.State, ci.AckFloor.Stream, ledgerLast)
	if len(cand) == 0 {
		return nil
	}
	since, err := q.scanStart(ctx, info.State, cand)
	if err != nil {
		return err
	}
	unverified, err := q.dropFinished(ctx, since, cand)
	if err != nil {
		return err
	}
	for seq := range cand { // reported at an earlier start already
		if _, err := retry(ctx, func(ctx context.Context) (jetstream.KeyValueEntry, error) {
			return q.lostKV.Get(ctx, lostSeqKey(seq))
		}); err == nil {
			delete(cand, seq)
		}
	}
	if unverified {
		q.lost = LostReport{Unverified: len(cand), Detected: time.Now()}
		q.log.Warn("the jobs stream has gaps the queue cannot check (results of an older version carry no sequence)",
			"gaps", len(cand))
		return nil
	}
	if len(cand) == 0 {
		return nil
	}
	return q.reportLost(ctx, since, cand)
}

// gaps returns the sequences above the ack floor, up to the last one the
// stream or the ledger knows, that the stream does not hold.
func gaps(st jetstream.StreamState, floor, ledgerLast uint64) map[uint64]bool {
	cand := map[uint64]bool{}
	add := func(seq uint64) bool {
		if seq > floor && len(cand) < maxLostCheck {
			cand[seq] = true
		}
		return len(cand) < maxLostCheck
	}
	last := st.LastSeq
	below := st.FirstSeq // everything under the first held message is gone
	if st.Msgs == 0 {
		below = last + 1
	}
	for seq := floor + 1; seq < below && add(seq); seq++ {
	}
	for _, seq := range st.Deleted {
		add(seq)
	}
	for seq := max(last, floor) + 1; seq <= ledgerLast && add(seq); seq++ {
	}
	if st.Lost != nil {
		for _, seq := range st.Lost.Msgs {
			add(seq)
		}
	}
	return cand
}

// scanStart is a time before which no candidate was accepted: the
// timestamp of a message held below the lowest candidate, or, lacking one,
// the oldest a result can be.
func (q *Queue) scanStart(ctx context.Context, st jetstream.StreamState, cand map[uint64]bool) (time.Time, error) {
	lowest := slices.Min(slicesKeys(cand))
	if st.Msgs > 0 && st.FirstSeq < lowest {
		raw, err := retry(ctx, func(ctx context.Context) (*jetstream.RawStreamMsg, error) {
			return q.jobs.GetMsg(ctx, st.FirstSeq)
		})
		if err == nil {
			return raw.Time, nil
		}
		if !errors.Is(err, jetstream.ErrMsgNotFound) {
			return time.Time{}, fmt.Errorf("queue: checking the jobs stream: %w", err)
		}
	}
	return time.Now().Add(-q.cfg.ResultTTL - time.Hour), nil
}

// dropFinished removes from cand the jobs whose record says done or whose
// dead letter was stored since since. It reads the newest first and stops
// once every candidate is accounted for: after a kill the candidates are
// the jobs finished in its last moments (their acks outran the consumer's
// state on disk), found among the last records. unverified is true when a
// result without a sequence (an older version's) was seen and candidates
// remain: the gaps cannot be told apart then.
func (q *Queue) dropFinished(ctx context.Context, since time.Time, cand map[uint64]bool) (unverified bool, err error) {
	take := func(seq uint64) bool {
		if seq == 0 {
			unverified = true
		}
		delete(cand, seq)
		return len(cand) > 0
	}
	if err := q.records.finished(ctx, since, take); err != nil {
		return false, fmt.Errorf("queue: checking the results: %w", err)
	}
	info, err := retry(ctx, func(ctx context.Context) (*jetstream.StreamInfo, error) { return q.dead.Info(ctx) })
	if err != nil {
		return false, fmt.Errorf("queue: checking the dead letters: %w", err)
	}
	for seq := info.State.LastSeq; seq >= info.State.FirstSeq && seq > 0 && len(cand) > 0; seq-- {
		raw, err := retry(ctx, func(ctx context.Context) (*jetstream.RawStreamMsg, error) { return q.dead.GetMsg(ctx, seq) })
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("queue: checking the dead letters: %w", err)
		}
		if raw.Time.Before(since) {
			break
		}
		done, _ := strconv.ParseUint(raw.Header.Get(HeaderSeq), 10, 64)
		take(done)
	}
	return unverified && len(cand) > 0, nil
}

// reportLost names the lost jobs from the ledger, records them in the lost
// bucket and logs them.
func (q *Queue) reportLost(ctx context.Context, since time.Time, cand map[uint64]bool) error {
	ids := map[uint64]string{}
	err := scan(ctx, q.ledgerStream, since, false, func(msg jetstream.Msg) {
		parseLedger(msg.Data(), func(seq uint64, id string) {
			if cand[seq] {
				ids[seq] = id
			}
		})
	})
	if err != nil {
		return fmt.Errorf("queue: reading the job ledger: %w", err)
	}
	seqs := slicesKeys(cand)
	slices.Sort(seqs)
	rep := LostReport{Count: len(seqs), Detected: time.Now()}
	for _, seq := range seqs[:min(len(seqs), maxLostNamed)] {
		rep.Seqs = append(rep.Seqs, seq)
		id := ids[seq]
		if id != "" {
			rep.IDs = append(rep.IDs, id)
			if _, err := q.lostKV.Put(ctx, lostKey(id), []byte(strconv.FormatUint(seq, 10))); err != nil {
				return fmt.Errorf("queue: recording lost jobs: %w", err)
			}
		}
		if _, err := q.lostKV.Put(ctx, lostSeqKey(seq), []byte(id)); err != nil {
			return fmt.Errorf("queue: recording lost jobs: %w", err)
		}
	}
	q.lost = rep
	q.log.Error("JOBS LOST: the jobs stream no longer holds jobs it had accepted (its files were damaged or truncated); they will not run",
		"lost", rep.Count, "named", len(rep.IDs), "ids", firstN(rep.IDs, 20), "seqs", firstN(rep.Seqs, 20))
	return nil
}

func slicesKeys(m map[uint64]bool) []uint64 {
	out := make([]uint64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func firstN[T any](s []T, n int) []T { return s[:min(len(s), n)] }
