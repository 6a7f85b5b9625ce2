package serve

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/cluster"
	"github.com/plumbhq/plumb/internal/oauthflow"
	"github.com/plumbhq/plumb/internal/queue"
)

// openQueue opens the queue (embedded, or the external cluster of
// Config.NATS) and, on an external cluster, the state the instances share
// (package cluster): OAuth2 tokens and their renewal lock, rate budgets,
// last-known-good answers. It runs before the integrations bind, so it
// sizes the workers from the files the directory holds.
func (s *Server) openQueue() error {
	cfg := s.cfg
	files, err := Discover(cfg.Dir)
	if err != nil {
		return fmt.Errorf("serve: reading %s: %w", cfg.Dir, err)
	}
	qc := cfg.Queue
	qc.DataDir = cfg.DataDir
	if qc.DataDir != "" {
		qc.DataDir = filepath.Clean(qc.DataDir)
	}
	qc.URLs = cfg.NATS
	qc.Replicas = Replicas(cfg.NATS, qc.Replicas)
	qc.Workers = cfg.Concurrency * max(1, len(files))
	if cfg.ResultTTL > 0 {
		qc.ResultTTL = cfg.ResultTTL
	}
	qc.DrainTimeout = cfg.DrainTimeout
	if qc.Logger == nil {
		qc.Logger = slog.New(atLeast{cfg.Logger.Handler(), slog.LevelWarn})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := queue.Open(ctx, qc)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	s.q.Store(q)
	if len(cfg.NATS) == 0 {
		return nil
	}
	c, err := cluster.Open(ctx, q, cluster.Config{Key: cfg.TokenKey, Logger: cfg.Logger})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	s.cluster = c
	s.metrics.reg.MustRegister(c.Collector())
	if !c.Tokens().Encrypted() {
		s.log.Warn("cluster: OAuth2 tokens are shared through NATS unencrypted; set PLUMB_TOKEN_KEY (the same on every instance) to seal them")
	}
	s.log.Info("joined a NATS cluster", "replicas", qc.Replicas)
	return nil
}

// Replicas is the stream and bucket replica count for the NATS URLs:
// explicit when set (--replicas), else 3 when three or more servers are
// listed and 1 otherwise (an embedded server, or a single node).
func Replicas(urls []string, explicit int) int {
	if explicit > 0 || len(urls) == 0 {
		return explicit
	}
	n := 0
	for _, u := range urls {
		for _, p := range strings.Split(u, ",") {
			if strings.TrimSpace(p) != "" {
				n++
			}
		}
	}
	if n >= 3 {
		return 3
	}
	return 1
}

// tokenStore is where OAuth2 tokens are kept when a token key is set: the
// cluster's KV bucket (sealed with the key) on a cluster, otherwise the
// encrypted file store under TokenDir.
func (s *Server) tokenStore() (auth.TokenStore, error) {
	if s.cluster != nil {
		return s.cluster.Tokens(), nil
	}
	dir := s.cfg.TokenDir
	if dir == "" {
		dir = filepath.Join(s.cfg.DataDir, "tokens")
	}
	store, err := oauthflow.NewEncryptedFileStore(dir, s.cfg.TokenKey)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	return store, nil
}

// shareInCluster makes a runner on a cluster use the shared state: tokens
// (one fetch per expiry window for the cluster), rate budgets (a partner's
// rate: holds for the cluster) and last-known-good answers. Batches and
// max_in_flight stay per instance.
func (s *Server) shareInCluster(cfg *engine.Config) {
	if s.cluster == nil {
		return
	}
	if cfg.Tokens == nil {
		cfg.Tokens = s.cluster.Tokens()
	}
	cfg.RateLimiter = s.cluster.RateLimiter
	cfg.Store = s.cluster.Cache()
}

// Cluster is the shared state of a server on an external NATS cluster
// (nil when the queue is embedded).
func (s *Server) Cluster() *cluster.Cluster { return s.cluster }
