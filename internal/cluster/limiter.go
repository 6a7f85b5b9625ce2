package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Limiter is a rate budget shared by every instance of the cluster: a
// token bucket kept in one KV key, changed only by compare-and-set on the
// key's revision.
//
// A Wait reserves, as golang.org/x/time/rate does: it reads {tokens, last},
// refills by the time since last (at most burst), takes one token even if
// that leaves the bucket in debt, and writes the result with Update at the
// revision it read. When the write wins, the caller's turn is when the
// debt is paid off (debt/rate from now), and it sleeps until then. When
// another instance wrote first, the write fails and it reads again. So
// every token is handed out exactly once, in the order the writes landed.
// Within an instance the reservations of one budget are serialised by a
// mutex, and one write takes a token for the caller and for each caller
// queued behind it (up to 32), whose turns follow at 1/rate; the instance
// keeps the entry it last wrote, so a write needs no read unless another
// instance wrote since. Waiting costs no round trips: one write per batch
// of callers, plus a failed write and a read per conflict.
//
// Accuracy. With the instances' clocks in step, the grants in any window
// of W seconds number at most burst + rate·W — the bound of a local token
// bucket. What the partner sees also moves by the time from the grant to
// its arrival there (a few milliseconds: a request's own latency jitter),
// so counted by arrival, a window may hold a little more: about
// rate·jitter. Clock skew between instances does not add up over time:
// last only moves forward (the larger of the stored value and the
// writer's clock), so a clock that runs ahead mints at most rate·skew
// tokens once, capped by burst. A wait cancelled after its reservation
// does not give its token back (the budget errs towards fewer requests).
//
// Availability. While NATS cannot answer (a leader election: seconds), a
// Wait retries until its context ends; a lead whose deadline passes meanwhile
// fails with a limits error rather than exceeding the partner's budget.
type Limiter struct {
	kv  jetstream.KeyValue
	key string
	log *slog.Logger

	mu    sync.Mutex // serialises this instance's reservations
	rate  float64
	burst int
	have  bool // st and rev are the entry as last read or written
	st    bucketState
	rev   uint64
	// prepaid are turns the last write reserved for callers queued on mu.
	prepaid []time.Time
	waiting atomic.Int32 // callers in reserve

	reservations, conflicts, errs, missed atomic.Int64
}

// bucketState is the stored value.
type bucketState struct {
	Tokens float64 `json:"tokens"`
	Last   int64   `json:"last"`  // unix nanoseconds
	Rate   float64 `json:"rate"`  // informational: each writer refills at its own rate
	Burst  int     `json:"burst"` // informational
}

// LimiterStats counts a Limiter's KV traffic.
type LimiterStats struct {
	// Reservations is the number of successful writes (each reserving
	// turns for one or more callers); Conflicts the writes that lost a
	// compare-and-set;
	// Errors the KV calls that failed otherwise; Missed the turns given
	// up because the caller woke more than Late after them.
	Reservations, Conflicts, Errors, Missed int64
}

// Stats returns the limiter's counters.
func (l *Limiter) Stats() LimiterStats {
	return LimiterStats{l.reservations.Load(), l.conflicts.Load(), l.errs.Load(), l.missed.Load()}
}

// ErrWouldExceedDeadline: the caller's deadline passes before its turn.
var ErrWouldExceedDeadline = errors.New("the cluster's rate budget has no turn before the deadline")

// Late is how far past its turn a Wait may wake and still go. A caller
// woken later than that (a starved CPU, a long GC pause) gives the turn up
// and reserves a new one, so late wake-ups do not bunch up with the turns
// after theirs: the budget then runs below its rate instead of above it.
const Late = 10 * time.Millisecond

// Wait implements engine.RateLimiter.
func (l *Limiter) Wait(ctx context.Context) error {
	for {
		at, interval, err := l.reserve(ctx)
		if err != nil {
			return err
		}
		if err := sleep(ctx, time.Until(at)); err != nil {
			return err
		}
		if time.Since(at) <= max(Late, interval) {
			return nil
		}
		l.missed.Add(1)
	}
}

// Reserve takes a turn and returns when it is; Wait is Reserve and a
// sleep until then.
func (l *Limiter) Reserve(ctx context.Context) (time.Time, error) {
	at, _, err := l.reserve(ctx)
	return at, err
}

// maxBatch bounds the turns one write reserves.
const maxBatch = 32

// reserve also returns the interval between turns (1/rate). A caller
// first takes a turn an earlier write reserved for it (prepaid); else it
// reserves one turn for itself and one for each caller queued behind it
// on this instance, in one write.
func (l *Limiter) reserve(ctx context.Context) (time.Time, time.Duration, error) {
	l.waiting.Add(1)
	defer l.waiting.Add(-1)
	l.mu.Lock()
	defer l.mu.Unlock()
	backoff := 20 * time.Millisecond
	for {
		if err := ctx.Err(); err != nil {
			return time.Time{}, 0, context.Cause(ctx)
		}
		interval := time.Duration(float64(time.Second) / l.rate)
		// Turns whose waiter left (or woke too late to use them) lapse.
		stale := time.Now().Add(-max(Late, interval))
		for len(l.prepaid) > 0 && l.prepaid[0].Before(stale) {
			l.prepaid = l.prepaid[1:]
			l.missed.Add(1)
		}
		if len(l.prepaid) > 0 {
			at := l.prepaid[0]
			if dl, ok := ctx.Deadline(); ok && at.After(dl) {
				return time.Time{}, 0, fmt.Errorf("%w (%s to wait)", ErrWouldExceedDeadline, time.Until(at).Round(time.Millisecond))
			}
			l.prepaid = l.prepaid[1:]
			return at, interval, nil
		}
		k := min(max(int(l.waiting.Load()), 1), maxBatch)
		turns, err := l.tryReserve(ctx, k)
		switch {
		case err == nil:
			l.reservations.Add(1)
			l.prepaid = append(l.prepaid[:0], turns[1:]...)
			return turns[0], interval, nil
		case errors.Is(err, ErrWouldExceedDeadline):
			return time.Time{}, 0, err
		case conflict(err):
			l.conflicts.Add(1)
			l.have = false
		default:
			l.errs.Add(1)
			l.have = false
			if l.errs.Load()%100 == 1 {
				l.log.Warn("shared rate budget: KV unavailable, retrying", "budget", l.key, "err", err)
			}
			if err := sleep(ctx, backoff); err != nil {
				return time.Time{}, 0, err
			}
			backoff = min(backoff*2, time.Second)
		}
	}
}

// tryReserve does one read (unless the last entry is cached) and one
// compare-and-set write taking k tokens; it returns their turns.
func (l *Limiter) tryReserve(ctx context.Context, k int) ([]time.Time, error) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if !l.have {
		e, err := l.kv.Get(cctx, l.key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			l.st, l.rev = bucketState{Tokens: float64(l.burst), Last: time.Now().UnixNano()}, 0
		case err != nil:
			return nil, err
		default:
			var st bucketState
			if err := json.Unmarshal(e.Value(), &st); err != nil {
				st = bucketState{Tokens: float64(l.burst), Last: time.Now().UnixNano()}
			}
			l.st, l.rev = st, e.Revision()
		}
		l.have = true
	}
	now := time.Now()
	st := l.st.refill(now, l.rate, l.burst)
	turns := make([]time.Time, k)
	for i := range k {
		st.Tokens--
		var wait time.Duration
		if st.Tokens < 0 {
			wait = time.Duration(-st.Tokens / l.rate * 1e9)
		}
		turns[i] = now.Add(wait)
		if i == 0 {
			if dl, ok := ctx.Deadline(); ok && turns[0].After(dl) {
				return nil, fmt.Errorf("%w (%s to wait)", ErrWouldExceedDeadline, wait.Round(time.Millisecond))
			}
		}
	}
	b, _ := json.Marshal(st)
	var rev uint64
	var err error
	if l.rev == 0 {
		rev, err = l.kv.Create(cctx, l.key, b)
	} else {
		rev, err = l.kv.Update(cctx, l.key, b, l.rev)
	}
	if err != nil {
		return nil, err
	}
	l.st, l.rev = st, rev
	return turns, nil
}

// refill is the bucket at now: the tokens earned since Last at rate,
// never more than burst, however long the bucket was idle (a cluster idle
// overnight must not fire its backlog at once). Last only moves forward.
func (st bucketState) refill(now time.Time, rate float64, burst int) bucketState {
	if n := now.UnixNano(); n > st.Last {
		st.Tokens += float64(n-st.Last) / 1e9 * rate
		st.Last = n
	}
	st.Tokens = min(st.Tokens, float64(burst))
	st.Rate, st.Burst = rate, burst
	return st
}

// limiters hands out one Limiter per budget name.
type limiters struct {
	kv     jetstream.KeyValue
	log    *slog.Logger
	mu     sync.Mutex
	byName map[string]*Limiter
}

func (ls *limiters) get(name string, perSecond float64, burst int) *Limiter {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.byName[name]
	if l == nil {
		l = &Limiter{kv: ls.kv, key: budgetKey(name), log: ls.log}
		ls.byName[name] = l
	}
	// A reload may change the rate; the bucket carries on.
	l.mu.Lock()
	l.rate, l.burst = perSecond, max(burst, 1)
	l.mu.Unlock()
	return l
}

// Limiter returns the budget called name if one was made (for tests and
// metrics).
func (c *Cluster) Limiter(name string) *Limiter {
	c.lims.mu.Lock()
	defer c.lims.mu.Unlock()
	return c.lims.byName[name]
}

var unsafeKey = regexp.MustCompile(`[^-_a-zA-Z0-9]+`)

// budgetKey is a readable KV key for a budget name ("crm/enrich" →
// "crm_enrich.1a2b3c4d"): the name's safe characters and a hash, so two
// names never share a key.
func budgetKey(name string) string {
	safe := unsafeKey.ReplaceAllString(name, "_")
	if len(safe) > 64 {
		safe = safe[:64]
	}
	return safe + "." + hashHex(name)[:16]
}

func hashHex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
