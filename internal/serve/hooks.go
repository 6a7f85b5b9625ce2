package serve

// Webhook receivers: an integration with a webhook: section is also served
// at its hook path (default /v1/hooks/{name}). A delivery is verified over
// its raw bytes, deduplicated, stored durably in the queue and answered at
// once; a worker later runs the event through the integration's steps as
// the lead. docs/webhooks.md is the reference.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/history"
	"github.com/plumbhq/plumb/internal/hookjob"
	"github.com/plumbhq/plumb/internal/queue"
	"github.com/plumbhq/plumb/webhook"
)

// Error codes of refused deliveries, besides the API's.
const (
	CodeMissingSignature = "missing_signature"
	CodeBadSignature     = "bad_signature"
	CodeStale            = "stale"
)

// boundHook is the receiver of one loaded integration file.
type boundHook struct {
	hook *webhook.Hook
	path string
}

// hookState is the service's webhook bookkeeping.
type hookState struct {
	once       sync.Once
	deliveries *prometheus.CounterVec // integration, result

	mu  sync.Mutex
	kvs map[time.Duration]jetstream.KeyValue // dedupe buckets by window

	log deliveryRing // GET /v1/hooks/deliveries (deliveries.go)
}

// HookAnswer is the answer to an accepted delivery.
type HookAnswer struct {
	// ID is the event's job id (the same for every copy of one event).
	ID string `json:"id"`
	// Duplicate: the event was received before; nothing was stored.
	Duplicate bool   `json:"duplicate"`
	Status    string `json:"status_url"`
}

// bindHook builds the receiver of a bound integration, nil when it has no
// webhook: section. The secrets come from the runner's resolved settings;
// the section was compiled with the rest of the plan (the file is not read
// again).
func bindHook(r *engine.Runner) (*boundHook, error) {
	h, err := r.Hook()
	if err != nil || h == nil {
		return nil, err
	}
	return &boundHook{hook: h, path: r.Plan().HookPath()}, nil
}

// currentHook returns the entry's running receiver (nil if none).
func (e *entry) currentHook() *boundHook {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.hook
}

// hookRoute is the route of every webhook receiver (front sends it the
// requests whose path is an integration's hook path): open, the signature
// is the authentication.
func (s *Server) hookRoute() http.Handler {
	s.hooks.once.Do(func() {
		s.hooks.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plumb_serve_webhooks_total",
			Help: "Webhook deliveries by integration and result: accepted, duplicate, or why they were refused (missing_signature, bad_signature, stale, body_too_large, unsupported_media_type, invalid_json, queue_error).",
		}, []string{"integration", "result"})
		s.metrics.reg.MustRegister(s.hooks.deliveries)
		s.hooks.kvs = map[time.Duration]jetstream.KeyValue{}
	})
	return s.route("webhook", []string{http.MethodPost}, true, s.receiveHook)
}

// hookAt finds the integration whose receiver serves path.
func (s *Server) hookAt(path string) (*entry, *boundHook) {
	for _, e := range s.reg.list() {
		if h := e.currentHook(); h != nil && h.path == path {
			return e, h
		}
	}
	return nil, nil
}

// receiveHook accepts one delivery: verify, dedupe, store, answer. No
// partner is called before the answer.
func (s *Server) receiveHook(w http.ResponseWriter, r *http.Request) {
	e, h := s.hookAt(r.URL.Path)
	if e == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, "no route "+r.URL.Path)
		return
	}
	name := e.info().Name
	if s.stopping.Load() {
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "shutting down; deliver again later")
		return
	}
	d, err := h.hook.Receive(r.Header, http.MaxBytesReader(w, r.Body, h.hook.MaxBytes()))
	if err != nil {
		code := webhook.Code(err)
		s.hooks.deliveries.WithLabelValues(name, code).Inc()
		if code == "internal" {
			code = CodeBadRequest
		}
		status := webhook.Status(err)
		if status == http.StatusInternalServerError {
			status = http.StatusBadRequest // the body could not be read
		}
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Signature realm="plumb webhook"`)
		}
		s.logDelivery(r, name, webhook.Code(err), status, "", err.Error())
		writeError(w, status, code, err.Error())
		return
	}
	dup, err := s.storeHook(r.Context(), name, h.hook, d)
	if err != nil {
		s.hooks.deliveries.WithLabelValues(name, CodeQueue).Inc()
		s.log.ErrorContext(r.Context(), "storing a webhook delivery", "integration", name, "lead_id", d.JobID, "err", err)
		s.logDelivery(r, name, CodeQueue, http.StatusServiceUnavailable, d.JobID, "the event could not be stored")
		writeError(w, http.StatusServiceUnavailable, CodeQueue, "the event could not be stored; deliver it again")
		return
	}
	result := "accepted"
	if dup {
		result = "duplicate"
	} else {
		s.metrics.accepted.WithLabelValues(name).Inc()
	}
	s.hooks.deliveries.WithLabelValues(name, result).Inc()
	s.logDelivery(r, name, result, http.StatusOK, d.JobID, "")
	s.logQueued(r.Context(), name, []Accepted{{ID: d.JobID, Duplicate: dup}}, []error{nil})
	writeJSON(w, http.StatusOK, HookAnswer{ID: d.JobID, Duplicate: dup, Status: "/v1/leads/" + d.JobID})
}

// storeHook stores an accepted delivery in the queue unless its event was
// seen within the hook's window; it reports a duplicate. The order keeps
// every answered event: the job is stored (fsynced) first, the key marked
// after; a crash in between leaves the job stored and unmarked, and the
// worker marks it when it runs. Two copies arriving at once are told apart
// by the queue's own message-id dedupe (same job id).
func (s *Server) storeHook(ctx context.Context, name string, h *webhook.Hook, d *webhook.Delivery) (bool, error) {
	var kv jetstream.KeyValue
	if d.Key != "" {
		var err error
		if kv, err = s.hookKV(ctx, h.Window()); err != nil {
			return false, err
		}
		if _, err := kv.Get(ctx, d.JobID); err == nil {
			return true, nil
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted) {
			return false, err
		}
	}
	job := queue.Job{ID: d.JobID, Kind: queue.KindWebhook, Integration: name, Payload: hookjob.Encode(name, d)}
	jobTrace(ctx, &job)
	p, err := s.q.Load().Publish(ctx, job)
	if err != nil {
		return false, err
	}
	if kv != nil {
		if _, err := kv.Put(ctx, d.JobID, []byte(d.Received.Format(time.RFC3339Nano))); err != nil {
			s.log.WarnContext(ctx, "marking a webhook event as seen; its worker will", "integration", name, "lead_id", d.JobID, "err", err)
		}
	}
	return p.Duplicate, nil
}

// hookKV opens the dedupe bucket of a window: one bucket per distinct
// window, its entries expiring after it.
func (s *Server) hookKV(ctx context.Context, window time.Duration) (jetstream.KeyValue, error) {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	if kv := s.hooks.kvs[window]; kv != nil {
		return kv, nil
	}
	secs := max(1, int64(window/time.Second))
	kv, err := s.q.Load().KV(ctx, "hooks_"+strconv.FormatInt(secs, 10), time.Duration(secs)*time.Second)
	if err != nil {
		return nil, err
	}
	s.hooks.kvs[window] = kv
	return kv, nil
}

// workHook runs one stored delivery through its integration's steps. An
// error outcome (the partner failed, the event lacks a field) is returned
// as an error, so the queue retries it with backoff and dead-letters it
// after its last delivery (POST /v1/dead/{id}/retry replays it); success,
// failure and skip are results.
func (s *Server) workHook(ctx context.Context, d queue.Delivery) ([]byte, error) {
	env, delivery, err := hookjob.Decode(d.Payload)
	if err != nil {
		res := &engine.Result{Outcome: engine.Error, Class: engine.ClassInput, Reason: err.Error(), Steps: []engine.StepResult{}}
		s.metrics.observe(d.Integration, "webhook", res)
		return marshalResult(res)
	}
	var h *boundHook
	if e := s.reg.lookup(d.Integration); e != nil {
		h = e.currentHook()
	}
	var hook *webhook.Hook
	if h != nil {
		hook = h.hook
		if env.Webhook.Key != "" {
			// the accepting process may have died before marking the key
			if kv, err := s.hookKV(ctx, hook.Window()); err == nil {
				_, _ = kv.Create(ctx, d.ID, []byte(env.Webhook.Received.Format(time.RFC3339Nano)))
			}
		}
	}
	lead, err := hook.Lead(delivery)
	if err != nil {
		res := &engine.Result{Outcome: engine.Error, Class: engine.ClassInput, Reason: err.Error(), Steps: []engine.StepResult{}}
		s.metrics.observe(d.Integration, "webhook", res)
		return marshalResult(res)
	}
	l := leadRun{id: d.ID, name: d.Integration, source: history.SourceWebhook, accepted: d.Enqueued}
	ctx, started := s.startLead(ctx, l)
	res, err := s.run(ctx, d.Integration, "webhook", lead)
	if err != nil {
		return nil, err
	}
	if res != nil && (res.Outcome != engine.Error || d.Attempt >= s.maxDeliver()) && ctx.Err() == nil {
		s.finishLead(ctx, l, started, res) // an error is retried: its last try is the record
	}
	if res == nil {
		return nil, fmt.Errorf("integration %q is not served here", d.Integration)
	}
	if res.Outcome == engine.Error {
		if ctx.Err() != nil {
			return nil, errStopping
		}
		msg := res.Reason
		if res.Step != "" {
			msg = "step " + res.Step + ": " + msg
		}
		return nil, fmt.Errorf("%s (class %s)", msg, res.Class)
	}
	return marshalResult(res)
}
