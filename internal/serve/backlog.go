package serve

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plumbhq/plumb/internal/queue"
)

// Backpressure: POST /leads refuses leads (429 queue_behind, Retry-After)
// while the queue is behind — a body's leads would take it past
// MaxQueueDepth unfinished leads, or its oldest lead not yet started has
// waited MaxQueueAge — so a
// burst beyond what the workers can take is told to come back instead of
// growing the backlog without bound. Leads already accepted are not
// touched. Webhook deliveries are not refused: their senders often do not
// send again.

// Defaults of the backpressure limits.
const (
	DefaultMaxQueueDepth = 100_000
	DefaultMaxQueueAge   = 5 * time.Minute
)

// CodeQueueBehind: the queue is behind; nothing was stored (429, with
// Retry-After).
const CodeQueueBehind = "queue_behind"

// backlogFresh is how long a reading of the queue's depth and age serves
// the requests that follow it; the leads they accept meanwhile are added
// to it, so a burst cannot pass the limit by more than what other
// instances accept in that time.
const backlogFresh = 250 * time.Millisecond

// maxRetryAfter bounds the Retry-After of a 429 queue_behind, in seconds.
const maxRetryAfter = 60

// backlog is what the service last read of its queue's backlog.
type backlog struct {
	mu    sync.Mutex
	at    time.Time   // when st was read (zero: never)
	st    queue.Stats // as read then
	since int         // leads stored here since
	// admitted counts the leads admitted here and not yet stored or
	// given up (a reading does not reset it: they are not in it yet)
	admitted int
	// started counts the leads the workers started (work); rate is how
	// many started per second between the last two readings
	started     atomic.Int64
	lastStarted int64
	rate        float64
}

// refusal says why the queue is behind, if it is, and when to come back.
type refusal struct {
	why        string
	retryAfter int // seconds
}

// admit reads the queue's backlog (at most every backlogFresh) and admits
// n more leads, or refuses them when the queue is past a limit or the n
// would take it past the depth limit. Admitted leads count against the
// limit at once, before they are stored, so requests admitted together
// cannot pass it together; done ends the admission with how many of them
// were stored (call it once, whatever became of them). A queue that cannot
// be read refuses nothing here: the publish that follows says what is
// wrong.
func (s *Server) admit(ctx context.Context, q *queue.Queue, n int) (done func(stored int), ref *refusal) {
	maxDepth, maxAge := s.cfg.MaxQueueDepth, s.cfg.MaxQueueAge
	if maxDepth < 0 && maxAge < 0 {
		return func(int) {}, nil
	}
	b := &s.backlog
	b.mu.Lock()
	defer b.mu.Unlock()
	now := s.now()
	if b.at.IsZero() || now.Sub(b.at) >= backlogFresh {
		st, err := q.Stats(ctx)
		if err != nil {
			return b.reserve(n), nil
		}
		started := b.started.Load()
		if !b.at.IsZero() {
			if d := now.Sub(b.at).Seconds(); d > 0 {
				b.rate = float64(started-b.lastStarted) / d
			}
		}
		b.at, b.st, b.since, b.lastStarted = now, st, 0, started
	}
	depth := int(b.st.Depth) + b.since + b.admitted
	pending := int(b.st.Pending) + b.since + b.admitted
	switch {
	case maxDepth > 0 && depth+n > maxDepth:
		return nil, &refusal{why: fmt.Sprintf("the queue holds %d leads not finished, the limit is %d (--max-queue-depth); this body's %d would pass it", depth, maxDepth, n),
			retryAfter: retryAfter(depth+n-maxDepth, b.rate)}
	case maxAge > 0 && !b.st.OldestPending.IsZero() && now.Sub(b.st.OldestPending) >= maxAge:
		age := now.Sub(b.st.OldestPending).Round(time.Second)
		return nil, &refusal{why: fmt.Sprintf("the oldest lead not yet started has waited %s, the limit is %s (--max-queue-age)", age, maxAge),
			retryAfter: retryAfter(pending, b.rate)}
	}
	return b.reserve(n), nil
}

// reserve counts n admitted leads until the returned done says how many
// of them were stored. The caller holds b.mu.
func (b *backlog) reserve(n int) func(stored int) {
	b.admitted += n
	var once sync.Once
	return func(stored int) {
		once.Do(func() {
			b.mu.Lock()
			b.admitted -= n
			b.since += stored
			b.mu.Unlock()
		})
	}
}

// retryAfter is how many seconds the workers need to start n leads at
// rate per second: at least 1, at most maxRetryAfter, which is also the
// answer while they start none.
func retryAfter(n int, rate float64) int {
	if rate <= 0 {
		return maxRetryAfter
	}
	return int(min(maxRetryAfter, max(1, math.Ceil(float64(n)/rate))))
}

// writeBehind answers 429 queue_behind.
func (s *Server) writeBehind(w http.ResponseWriter, name string, leads int, r *refusal) {
	s.metrics.refused.WithLabelValues(name, CodeQueueBehind).Add(float64(leads))
	w.Header().Set("Retry-After", strconv.Itoa(r.retryAfter))
	writeError(w, http.StatusTooManyRequests, CodeQueueBehind,
		"the queue is behind: "+r.why+"; nothing was stored, send the leads again after Retry-After")
}

// pendingAge is how long, in seconds, the oldest lead not yet started has
// waited (0 when none waits).
func pendingAge(st queue.Stats, now time.Time) float64 {
	if st.OldestPending.IsZero() {
		return 0
	}
	return max(0, now.Sub(st.OldestPending).Seconds())
}

// now is the service's clock (Config.now in tests).
func (s *Server) now() time.Time {
	if s.cfg.now != nil {
		return s.cfg.now()
	}
	return time.Now()
}
