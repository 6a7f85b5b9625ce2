package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults applied by Open to zero Config fields.
const (
	DefaultName           = "plumb"
	DefaultMaxDeliver     = 5
	DefaultAckWait        = 5 * time.Second
	DefaultResultTTL      = 24 * time.Hour
	DefaultDedupeWindow   = 30 * time.Second
	DefaultWorkers        = 4
	DefaultRetryDelay     = time.Second
	DefaultMaxRetryDelay  = time.Minute
	DefaultDrainTimeout   = 30 * time.Second
	DefaultMaxAckPending  = 1000
	DefaultPublishTimeout = 10 * time.Second
)

// Errors returned by the queue. Test with errors.Is.
var (
	// ErrNotFound: no job, result, dead letter or key with that id.
	ErrNotFound = errors.New("queue: not found")
	// ErrInvalidID: an id or name has characters that cannot be a NATS
	// subject token or KV key.
	ErrInvalidID = errors.New("queue: invalid id")
	// ErrClosed: the queue was closed.
	ErrClosed = errors.New("queue: closed")
)

// Config configures Open. The zero value (plus a DataDir) is a working
// embedded single-node queue.
type Config struct {
	// DataDir holds the embedded server's file store (DataDir/nats). Required
	// when URLs is empty; ignored otherwise.
	DataDir string
	// URLs of an external NATS cluster ("nats://a:4222"). Each entry may
	// itself be a comma-separated list. Empty means: embed a server.
	URLs []string
	// Name prefixes every stream, subject and bucket, so that several queues
	// can share one NATS account. Lower-case letters, digits, '_' and '-'.
	// Default "plumb".
	Name string
	// Replicas of every stream and bucket (1..5). Default 1; an embedded
	// server only supports 1. Use 3 on a 3-node cluster.
	Replicas int
	// MaxDeliver is how many times a job is delivered before it is
	// dead-lettered. Default 5.
	MaxDeliver int
	// AckWait is how long a delivered job may go without an ack or a
	// progress signal before the server redelivers it. Running jobs (and
	// finished ones whose record waits for the storage) are kept alive
	// automatically (InProgress every AckWait/5), so AckWait bounds the
	// redelivery delay after a crashed or cut-off process — on a cluster,
	// how soon another instance (or the restarted one) runs what it held —
	// not the job's run time. An embedded queue does not wait it out at a
	// restart: it is the only consumer, so Open hands every job left in
	// flight back at once. Default 5s: a live process's signals can be late
	// by four of their intervals (4s) before its jobs run twice.
	AckWait time.Duration
	// ResultTTL is how long records (state and result) are kept.
	// Default 24h.
	ResultTTL time.Duration
	// DedupeWindow: a Publish with the same dedupe key (Job.DedupeKey, or
	// the job id) within this window is reported as a duplicate and not
	// stored again. It covers a publish sent again after an unanswered one
	// (PublishTimeout) and copies sent at the same moment; the server keeps
	// every key of the window in memory (about 180 bytes each), so it costs
	// jobs per second × window. Default 30s, and never shorter than
	// PublishTimeout (a publish retried within one call is recognised).
	DedupeWindow time.Duration
	// Workers is the number of concurrent handlers in Consume. Default 4.
	Workers int
	// RetryDelay is the first redelivery delay after a handler error; it
	// doubles per attempt up to MaxRetryDelay, with ±20% jitter.
	// Defaults 1s and 1m.
	RetryDelay    time.Duration
	MaxRetryDelay time.Duration
	// DrainTimeout is how long Consume waits, once its context is done, for
	// running handlers to finish before cancelling their contexts.
	// Default 30s.
	DrainTimeout time.Duration
	// MaxAckPending caps the jobs delivered and not yet acked across all
	// consumers of the queue (all processes). Default 1000.
	MaxAckPending int
	// SyncInterval applies to the embedded server only. 0 (the default)
	// means every write is fsynced before JetStream acknowledges it
	// (nats-server's sync_always), so an acknowledged Publish survives a
	// kill -9 and an OS crash or power loss. A positive value fsyncs on that
	// interval instead: faster, still safe against kill -9 (writes reach the
	// OS before the ack), but an OS crash can lose up to the interval.
	SyncInterval time.Duration
	// ConnectTimeout bounds starting the embedded server and connecting.
	// Default 10s.
	ConnectTimeout time.Duration
	// PublishTimeout bounds one Publish or PublishAll call, retries while a
	// cluster elects a stream leader included. A write the storage refuses
	// (full) fails at once with ErrStorage. Default 10s.
	PublishTimeout time.Duration
	// MaxFileStore caps the embedded server's file storage in bytes
	// (nats-server's max_file_store); writes beyond it are refused
	// (ErrStorage). 0: nats-server's default, 75% of the free space of
	// DataDir's filesystem at start. Ignored with URLs.
	MaxFileStore int64
	// MinFreeDisk: an embedded queue refuses new jobs (ErrStorage, see
	// Writable) while DataDir's filesystem has less free space than this,
	// keeping it for the results of the jobs already accepted.
	// 0: 5% of the filesystem, at most 64 MiB; negative: no check.
	MinFreeDisk int64
	// CommitBatch bounds how many finished jobs' records the committer
	// stores in one write (commit.go). Default 256.
	CommitBatch int
	// CommitWait is the longest the committer waits, after a job finished,
	// for other running jobs to finish and share the write. It waits only
	// while other handlers are running; 0 keeps the default, negative
	// never waits (a batch is then what finished while the last write was
	// in flight). Default 2ms.
	CommitWait time.Duration
	// Logger receives queue events and, for the embedded server, its
	// notices, warnings and errors. Default: discard.
	Logger *slog.Logger
	// CommitHook is for crash tests only: when set, the committer calls it
	// at the two moments of each group commit a test kills the process
	// at (CommitPoint). `plumb serve` never sets it — no flag, file or
	// environment variable reaches it; only a test's child process does.
	CommitHook func(CommitPoint)

	// releaseEarly (measurements only) frees a worker when its record is
	// handed to the committer instead of once it is stored; recordsKV
	// keeps an embedded queue's records in a KV bucket, as on a cluster.
	releaseEarly, recordsKV bool
}

var nameRE = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

func (c *Config) setDefaults() error {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if !nameRE.MatchString(c.Name) {
		return fmt.Errorf("queue: name %q: want 1-32 of [a-z0-9_-]: %w", c.Name, ErrInvalidID)
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		return fmt.Errorf("queue: replicas %d: want 1..5", c.Replicas)
	}
	if len(c.URLs) == 0 {
		if c.DataDir == "" {
			return errors.New("queue: DataDir is required for the embedded server")
		}
		if c.Replicas != 1 {
			return fmt.Errorf("queue: replicas %d needs a NATS cluster (Config.URLs); the embedded server has one node", c.Replicas)
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(d *int, v int) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt(&c.MaxDeliver, DefaultMaxDeliver)
	defInt(&c.Workers, DefaultWorkers)
	defInt(&c.MaxAckPending, DefaultMaxAckPending)
	defInt(&c.CommitBatch, DefaultCommitBatch)
	if c.CommitWait == 0 {
		c.CommitWait = DefaultCommitWait
	}
	def(&c.AckWait, DefaultAckWait)
	def(&c.ResultTTL, DefaultResultTTL)
	def(&c.DedupeWindow, DefaultDedupeWindow)
	def(&c.RetryDelay, DefaultRetryDelay)
	def(&c.MaxRetryDelay, DefaultMaxRetryDelay)
	def(&c.DrainTimeout, DefaultDrainTimeout)
	def(&c.ConnectTimeout, 10*time.Second)
	def(&c.PublishTimeout, DefaultPublishTimeout)
	c.DedupeWindow = max(c.DedupeWindow, c.PublishTimeout)
	if c.MaxRetryDelay < c.RetryDelay {
		c.MaxRetryDelay = c.RetryDelay
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Queue is a durable job queue with results, dead letters and KV buckets.
// It is safe for concurrent use. Close it when done.
type Queue struct {
	cfg      Config
	log      *slog.Logger
	emb      *embedded // nil when connected to external URLs
	storeDir string    // the embedded server's store
	nc       *nats.Conn
	js       jetstream.JetStream
	jobs     jetstream.Stream
	// atomic: the jobs stream takes atomic batches (PublishAll)
	atomic bool
	dead   jetstream.Stream
	cons   jetstream.Consumer

	// records: one per job, with its state and result (record.go)
	records records
	probeKV jetstream.KeyValue // health.go's probe writes
	lostKV  jetstream.KeyValue // jobs lost from a damaged stream (lost.go)

	ledger       *ledger
	ledgerStream jetstream.Stream
	lost         LostReport
	// handedBack: jobs at or below this sequence were delivered before
	// Open handed them back (a redelivery, though counted as the first)
	handedBack uint64
	// storedBefore: jobs at or below this sequence were stored before
	// Open, so they may have run before it (the consumer's state on disk
	// can lag the acks of an embedded server killed with it): their record
	// is looked up before they run
	storedBefore uint64
	// running: the deliveries this process runs now (id → *runningJob)
	running sync.Map

	health      *health
	lastRestart time.Time // of the embedded server, by the probe loop
	faults      faultCounters
	bgStop      chan struct{}
	bg          sync.WaitGroup

	jobsStream, deadStream, consumerName string
	jobsPrefix, deadPrefix               string
	// the jobs stream of versions before records (a work queue): Open
	// moves what it holds to the jobs stream
	oldJobsStream, oldJobsPrefix string
	unlock                       func() // releases the data dir lock
	closed                       chan struct{}
	closeErr                     error
}

// Open starts (or connects to) NATS JetStream and creates or updates the
// queue's streams, consumer and buckets. It is idempotent: many processes
// may Open the same queue on one cluster.
func Open(ctx context.Context, cfg Config) (*Queue, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	q := &Queue{
		cfg:           cfg,
		log:           cfg.Logger.With("component", "queue", "queue", cfg.Name),
		jobsStream:    streamName(cfg.Name, "WORK"),
		deadStream:    streamName(cfg.Name, "DEAD"),
		consumerName:  "workers",
		jobsPrefix:    cfg.Name + ".work.",
		deadPrefix:    cfg.Name + ".dead.",
		oldJobsStream: streamName(cfg.Name, "JOBS"),
		oldJobsPrefix: cfg.Name + ".jobs.",
		closed:        make(chan struct{}),
		health:        newHealth(),
		bgStop:        make(chan struct{}),
	}
	q.ledger = newLedger(q)
	if err := q.connect(); err != nil {
		q.shutdown()
		return nil, err
	}
	if err := q.setup(ctx); err != nil {
		q.shutdown()
		return nil, err
	}
	if err := q.checkLost(ctx); err != nil {
		q.shutdown()
		return nil, err
	}
	if q.emb != nil {
		if err := q.handBackInFlight(ctx); err != nil {
			q.shutdown()
			return nil, err
		}
	}
	info, err := retry(ctx, func(ctx context.Context) (*jetstream.StreamInfo, error) { return q.jobs.Info(ctx) })
	if err != nil {
		q.shutdown()
		return nil, fmt.Errorf("queue: stream %s: %w", q.jobsStream, err)
	}
	q.storedBefore = info.State.LastSeq
	q.bg.Go(func() { q.probeLoop(q.bgStop) })
	q.bg.Go(func() { q.ledger.loop(q.bgStop) })
	q.bg.Go(func() { q.purgeLoop(q.bgStop) })
	return q, nil
}

// streamName is the name of one of queue name's streams.
func streamName(name, what string) string {
	return strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_" + what
}

// handBackInFlight makes the jobs an embedded queue had delivered and not
// finished when it last stopped (killed with jobs running) deliverable at
// once instead of after AckWait: the embedded queue is the only consumer, so
// no other process runs them. (On a cluster, other processes may be
// running them; there a crashed process's jobs come back after AckWait.)
func (q *Queue) handBackInFlight(ctx context.Context) error {
	ci, err := q.cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("queue: consumer %s: %w", q.consumerName, err)
	}
	if ci.NumAckPending == 0 {
		return nil
	}
	if _, err := q.js.ResetConsumer(ctx, q.jobsStream, q.consumerName); err != nil {
		return fmt.Errorf("queue: handing back the jobs in flight: %w", err)
	}
	q.handedBack = ci.Delivered.Stream
	q.log.Info("jobs left in flight by the last run are delivered again now", "jobs", ci.NumAckPending)
	return nil
}

func (q *Queue) connect() error {
	cfg := q.cfg
	opts := []nats.Option{
		nats.Name("plumb-" + cfg.Name),
		nats.MaxReconnects(-1),
		nats.Timeout(cfg.ConnectTimeout),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				q.log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			q.log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			q.log.Warn("nats async error", "err", err)
		}),
	}
	var url string
	if len(cfg.URLs) == 0 {
		storeDir := filepath.Join(cfg.DataDir, "nats")
		if err := os.MkdirAll(storeDir, 0o700); err != nil {
			return fmt.Errorf("queue: data dir: %w", err)
		}
		unlock, err := lockDir(storeDir)
		if err != nil {
			return err
		}
		q.unlock = unlock
		q.storeDir = storeDir
		q.emb = &embedded{
			opts: &server.Options{
				ServerName:        "plumb-embedded",
				JetStream:         true,
				StoreDir:          storeDir,
				JetStreamMaxStore: cfg.MaxFileStore,
				DontListen:        true, // in-process connections only
				NoSigs:            true,
				NoLog:             true,
				SyncAlways:        cfg.SyncInterval == 0,
				SyncInterval:      cfg.SyncInterval,
			},
			log:        cfg.Logger.With("component", "nats-server"),
			timeout:    cfg.ConnectTimeout,
			onWriteErr: q.watchBroken,
		}
		if err := q.emb.start(); err != nil {
			return err
		}
		// reconnects (after a restart of the server) come at once
		opts = append(opts, nats.InProcessServer(q.emb), nats.ReconnectWait(50*time.Millisecond))
	} else {
		url = strings.Join(cfg.URLs, ",")
		opts = append(opts, nats.RetryOnFailedConnect(false))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("queue: connect to nats %q: %w", redactURLs(url), err)
	}
	q.nc = nc
	// (asynchronous writes are records, each waited for by the committer,
	// which reports what went wrong)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(q.cfg.PublishTimeout))
	if err != nil {
		return fmt.Errorf("queue: jetstream: %w", err)
	}
	q.js = js
	return nil
}

func redactURLs(s string) string {
	if s == "" {
		return "embedded"
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if scheme := strings.Index(p, "://"); scheme >= 0 && scheme < at {
				parts[i] = p[:scheme+3] + "***" + p[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}

// setup creates or updates the streams, consumer and buckets. On a cluster
// that has just started, JetStream answers "temporarily unavailable" until
// it elected a meta leader, so each call is retried until ctx or
// ConnectTimeout ends.
func (q *Queue) setup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.ConnectTimeout+20*time.Second)
	defer cancel()
	cfg := q.cfg
	var err error
	q.jobs, err = retry(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return q.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        q.jobsStream,
			Description: "plumb jobs: finished ones are purged below the workers' ack floor (purge.go)",
			Subjects:    []string{q.jobsPrefix + "*"},
			// Limits, not a work queue: an ack then only moves the
			// consumer's state, and finished jobs leave the stream in one
			// purge for many (a work queue deletes, and fsyncs, per ack)
			Retention:  jetstream.LimitsPolicy,
			Storage:    jetstream.FileStorage,
			Replicas:   cfg.Replicas,
			Duplicates: cfg.DedupeWindow,
			Discard:    jetstream.DiscardNew,
			// PublishAll stores a body's leads as one batch (one fsync);
			// a server before 2.12 ignores it and PublishAll goes job by job
			AllowAtomicPublish: true,
		})
	})
	if err != nil {
		return fmt.Errorf("queue: stream %s: %w", q.jobsStream, err)
	}
	q.atomic = q.jobs.CachedInfo().Config.AllowAtomicPublish
	q.dead, err = retry(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return q.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:              q.deadStream,
			Description:       "plumb dead letters",
			Subjects:          []string{q.deadPrefix + "*"},
			Retention:         jetstream.LimitsPolicy,
			Storage:           jetstream.FileStorage,
			Replicas:          cfg.Replicas,
			MaxMsgsPerSubject: 1,
			Duplicates:        cfg.DedupeWindow,
		})
	})
	if err != nil {
		return fmt.Errorf("queue: stream %s: %w", q.deadStream, err)
	}
	q.cons, err = retry(ctx, func(ctx context.Context) (jetstream.Consumer, error) {
		return q.js.CreateOrUpdateConsumer(ctx, q.jobsStream, jetstream.ConsumerConfig{
			Durable:       q.consumerName,
			Description:   "plumb workers",
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       cfg.AckWait,
			MaxDeliver:    -1, // the queue dead-letters itself, so nothing is dropped silently
			MaxAckPending: cfg.MaxAckPending,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			Replicas:      cfg.Replicas,
		})
	})
	if err != nil {
		return fmt.Errorf("queue: consumer %s: %w", q.consumerName, err)
	}
	var store records
	if q.emb != nil && !cfg.recordsKV {
		store, err = q.openLocalRecords()
	} else {
		store, err = q.openKVRecords(ctx)
	}
	if err != nil {
		return err
	}
	if q.records, err = q.withLegacy(ctx, store); err != nil {
		if c, ok := store.(interface{ close() error }); ok {
			_ = c.close()
		}
		return err
	}
	if q.probeKV, err = q.kv(ctx, "queue_probe", 0); err != nil {
		return err
	}
	if q.lostKV, err = q.kv(ctx, "queue_lost", cfg.ResultTTL); err != nil {
		return err
	}
	q.ledgerStream, err = retry(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return q.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        strings.ToUpper(strings.ReplaceAll(cfg.Name, "-", "_")) + "_LEDGER",
			Description: "plumb job ledger: the sequence and id of every accepted job",
			Subjects:    []string{q.ledger.subject},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			MaxAge:      cfg.ResultTTL,
		})
	})
	if err != nil {
		return fmt.Errorf("queue: job ledger: %w", err)
	}
	return q.migrate(ctx)
}

// JetStream returns the queue's JetStream client, for streams or buckets
// the queue does not model. Do not close its connection; Close does.
func (q *Queue) JetStream() jetstream.JetStream { return q.js }

// retry calls f until it succeeds, fails with an error that retrying will
// not fix, or ctx ends.
//
// Each attempt has its own timeout, 1s at first and doubling up to 5s:
// when several processes create the same stream at once on a fresh
// cluster (a Deployment's replicas starting together), nats-server leaves
// all but one of the concurrent creates of a bucket with a TTL unanswered,
// and the next attempt finds it made.
func retry[T any](ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	return retryIf(ctx, transient, f)
}

// retryIf is retry with again deciding which errors are worth another
// attempt.
func retryIf[T any](ctx context.Context, again func(error) bool, f func(context.Context) (T, error)) (T, error) {
	delay := 50 * time.Millisecond
	attempt := time.Second
	for {
		callCtx, cancel := context.WithTimeout(ctx, attempt)
		attempt = min(2*attempt, 5*time.Second)
		v, err := f(callCtx)
		cancel()
		if err == nil || !again(err) {
			return v, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, fmt.Errorf("%w (gave up: %v)", err, ctx.Err())
		case <-t.C:
		}
		delay = min(delay*2, time.Second)
	}
}

// transient reports whether err is the kind a starting or re-electing
// cluster returns.
func transient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.Code == 503 {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "temporarily unavailable") || strings.Contains(msg, "no suitable peers") ||
		strings.Contains(msg, "insufficient resources")
}

// Close closes the connection (draining buffered publishes and
// subscriptions) and, for an embedded server, shuts it down and waits for
// it to flush its store. Stop Consume (cancel its context and wait for it to
// return) before calling Close. Close is idempotent.
func (q *Queue) Close() error {
	select {
	case <-q.closed:
		return q.closeErr
	default:
	}
	q.closeErr = q.shutdown()
	close(q.closed)
	return q.closeErr
}

func (q *Queue) shutdown() error {
	var errs []error
	close(q.bgStop) // the probe and purge loops end; the ledger writes what is left
	q.bg.Wait()
	if q.nc != nil {
		done := make(chan struct{})
		q.nc.SetClosedHandler(func(*nats.Conn) { close(done) })
		if err := q.nc.Drain(); err != nil {
			q.nc.Close()
		} else {
			t := time.NewTimer(q.cfg.ConnectTimeout)
			select {
			case <-done:
			case <-t.C:
				errs = append(errs, errors.New("queue: nats drain timed out"))
				q.nc.Close()
			}
			t.Stop()
		}
	}
	if c, ok := q.records.(interface{ close() error }); ok {
		errs = append(errs, c.close())
	}
	if q.emb != nil {
		q.emb.stop()
	}
	if q.unlock != nil {
		q.unlock()
	}
	return errors.Join(errs...)
}
