// Package cluster holds what the instances of a plumb serve cluster share
// beyond the queue: OAuth2 tokens and their renewal lock, rate budgets and
// last-known-good answers, each in a JetStream KV bucket of the queue's
// NATS cluster (internal/queue), so no instance keeps them in memory alone.
//
//	c, err := cluster.Open(ctx, q, cluster.Config{Key: tokenKey})
//	engine.Config{Tokens: c.Tokens(), RateLimiter: c.RateLimiter, Store: c.Cache()}
//
// # Buckets (queue name "plumb")
//
//	KV plumb_tokens   OAuth2 tokens by auth.StoreKey; AES-256-GCM sealed
//	                  when Config.Key is set
//	KV plumb_locks    token renewal leases: a key exists while an instance
//	                  renews; the bucket's MaxAge (Config.Lease) ends a lease
//	                  whose holder died
//	KV plumb_limits   one token bucket per rate budget name
//	KV plumb_lkg      last-known-good answers (engine cache fallbacks)
//
// # Token renewal lock: a lease in a MaxAge bucket
//
// Lock creates the key with KeyValue.Create, which JetStream refuses when
// the key exists (compare-and-set on "no revision"), so one instance holds
// it. The lock bucket's MaxAge is the lease: the server deletes an entry
// Config.Lease after its last write, so a holder killed with the lock is
// replaced after at most Lease. While held, the lease is re-written
// (Update by revision) every Lease/3, so a slow token endpoint does not
// lose it. Unlock deletes the key only at the revision it last wrote, so
// an instance never removes a lease another instance took over.
//
// Why the server's MaxAge and not a lease timestamp in the value that
// others compare with their clock: the expiry is then decided by one clock
// (the stream leader's), so clock skew between machines cannot make two
// holders. The cost is MaxAge's granularity (the server checks expiry about
// once a second for short ages), which only matters after a crash.
//
// Waiters poll (20-100 ms with jitter) rather than watch: a renewal happens
// once per token lifetime per key, and each instance's authenticator lets
// only one of its goroutines wait.
//
// # Rate budgets: a token bucket in one key, updated by compare-and-set
//
// See Limiter.
package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/queue"
)

// Defaults applied by Open.
const (
	DefaultLease     = 10 * time.Second
	DefaultOpTimeout = 5 * time.Second
	DefaultCacheTTL  = 7 * 24 * time.Hour
)

// Config configures Open.
type Config struct {
	// Key, when set (32 bytes), seals the tokens with AES-256-GCM before
	// they reach NATS. Without it tokens are stored as JSON, readable by
	// whoever can read the NATS account.
	Key []byte
	// Lease bounds how long a token renewal lock outlives a holder that
	// died (default 10s).
	Lease time.Duration
	// OpTimeout bounds one KV operation of the token store, whose
	// interface has no context (default 5s).
	OpTimeout time.Duration
	// CacheTTL is how long a last-known-good answer is kept (default 7
	// days).
	CacheTTL time.Duration
	// Logger receives warnings (default: discard).
	Logger *slog.Logger
}

// Cluster is the shared state of the instances on one NATS cluster.
type Cluster struct {
	cfg    Config
	log    *slog.Logger
	owner  string
	tokens *TokenStore
	limits jetstream.KeyValue
	cache  *CacheStore
	lims   *limiters
}

// Open opens (creating) the buckets on q's NATS cluster.
func Open(ctx context.Context, q *queue.Queue, cfg Config) (*Cluster, error) {
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = DefaultOpTimeout
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{cfg: cfg, log: cfg.Logger.With("component", "cluster"), owner: rand.Text()}
	tokens, err := q.KV(ctx, "tokens", 0)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	locks, err := q.KV(ctx, "locks", cfg.Lease)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c.tokens, err = newTokenStore(tokens, locks, cfg, c.owner)
	if err != nil {
		return nil, err
	}
	// A budget nobody used for a day is dropped; it starts full again.
	c.limits, err = q.KV(ctx, "limits", 24*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c.lims = &limiters{kv: c.limits, log: c.log, byName: map[string]*Limiter{}}
	lkg, err := q.KV(ctx, "lkg", cfg.CacheTTL)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c.cache = &CacheStore{kv: lkg}
	return c, nil
}

// Tokens is the cluster's token store (an auth.SharedTokenStore).
func (c *Cluster) Tokens() *TokenStore { return c.tokens }

// Cache is the cluster's last-known-good answer store (a store.Store).
func (c *Cluster) Cache() *CacheStore { return c.cache }

// RateLimiter returns the cluster-wide budget called name; it fits
// engine.Config.RateLimiter. Every instance asking for the same name with
// the same rate shares one token bucket.
func (c *Cluster) RateLimiter(name string, perSecond float64, burst int) engine.RateLimiter {
	return c.lims.get(name, perSecond, burst)
}

// opCtx bounds a KV call made for an interface without a context.
func opCtx(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// conflict reports whether err is a failed compare-and-set.
func conflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}
