package serve

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// How many wrong bearer tokens a client may present: AuthFailBurst in a
// row, then one more per AuthFailEvery. A client over it gets 429 with
// Retry-After, its tokens not even checked, until it is back under.
const (
	AuthFailBurst = 10
	AuthFailEvery = 6 * time.Second
)

// authFailClients bounds the clients the limiter remembers; past it, new
// clients share one bucket (an attacker with many addresses cannot reset
// its own buckets by crowding them out).
const authFailClients = 4096

// failLimiter counts wrong bearer tokens per client in token buckets. It
// never sleeps: a client over its budget is answered 429 at once. A bucket
// may go into debt (failures that were in flight together all count), so
// the long-run rate of guesses stays at one per AuthFailEvery whatever the
// client's concurrency.
type failLimiter struct {
	now   func() time.Time
	burst float64
	every time.Duration
	max   int

	mu       sync.Mutex
	clients  map[string]*bucket
	overflow bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newFailLimiter(now func() time.Time) *failLimiter {
	if now == nil {
		now = time.Now
	}
	return &failLimiter{now: now, burst: AuthFailBurst, every: AuthFailEvery, max: authFailClients,
		clients: map[string]*bucket{}, overflow: bucket{tokens: AuthFailBurst, at: now()}}
}

// refill brings b up to now.
func (l *failLimiter) refill(b *bucket, now time.Time) {
	if el := now.Sub(b.at); el > 0 {
		b.tokens = min(l.burst, b.tokens+float64(el)/float64(l.every))
	}
	b.at = now
}

// wait is how long key must wait before presenting a token again (0: now).
func (l *failLimiter) wait(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.clients[key]
	if b == nil {
		if len(l.clients) < l.max {
			return 0
		}
		b = &l.overflow
	}
	now := l.now()
	l.refill(b, now)
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(l.every))
}

// fail counts a wrong token presented by key. It reports whether key has
// just run out (for one log line per episode, not one per request).
func (l *failLimiter) fail(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.clients[key]
	if b == nil {
		b = l.slot(key, now)
	}
	l.refill(b, now)
	was := b.tokens >= 1
	// at most a day of debt: enough for any burst, and floats stay exact
	b.tokens = math.Max(b.tokens-1, -float64(24*time.Hour/l.every))
	return was && b.tokens < 1
}

// slot makes key's bucket, forgetting clients whose buckets are full again
// when the table is full; the shared overflow bucket when none is.
func (l *failLimiter) slot(key string, now time.Time) *bucket {
	if len(l.clients) >= l.max {
		for k, b := range l.clients {
			if l.refill(b, now); b.tokens >= l.burst {
				delete(l.clients, k)
			}
		}
	}
	if len(l.clients) >= l.max {
		return &l.overflow
	}
	b := &bucket{tokens: l.burst, at: now}
	l.clients[key] = b
	return b
}

// clientKey is the client a request counts against: its TCP peer's
// address (never a header the client writes), an IPv6 client by its /64,
// which one host usually holds whole.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// throttled answers 429 when r's client has presented too many wrong
// tokens lately, and reports whether it did.
func (s *Server) throttled(w http.ResponseWriter, r *http.Request) bool {
	wait := s.limiter.wait(clientKey(r))
	if wait <= 0 {
		return false
	}
	s.metrics.authThrottled.Inc()
	secs := int64(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	writeError(w, http.StatusTooManyRequests, CodeTooManyAuthFailures,
		"too many wrong bearer tokens from this address; try again in "+strconv.FormatInt(secs, 10)+"s")
	return true
}
