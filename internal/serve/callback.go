package serve

// Completion callbacks (package history's Sender): an integration's
// callback: section, or a batch's callback_url, receives each result or
// each batch's summary. A callback is a queue job of kind callback,
// published before the lead's own result is stored, so it survives a
// kill -9; the queue retries it with backoff and dead-letters it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/history"
	"github.com/plumbhq/plumb/internal/queue"
	"github.com/plumbhq/plumb/steps"
)

// callbackOf returns the integration's callback: section and its runner
// (nil, nil without one).
func (s *Server) callbackOf(name string) (*steps.Callback, *engine.Runner) {
	e := s.reg.lookup(name)
	if e == nil {
		return nil, nil
	}
	r := e.current()
	if r == nil || r.Plan().Model().Callback == nil {
		return nil, nil
	}
	return r.Plan().Model().Callback, r
}

// callbackURL is the integration's own callback URL ("" when none).
func callbackURL(cb *steps.Callback, r *engine.Runner) string {
	if name := cb.URLSetting(); name != "" {
		v, _ := r.Value(name)
		u, _ := v.(string)
		return u
	}
	return cb.URL.Value
}

func wants(cb *steps.Callback, ev steps.CallbackEvent) bool {
	e := steps.CallbackEvent(cb.Events.Value)
	if e == "" {
		e = steps.CallbackEvents.Default
	}
	return e == ev || e == steps.CallbackAll
}

// checkCallbackURL checks a POST /leads callback_url; the answer is the
// reason it is refused ("" when accepted).
func (s *Server) checkCallbackURL(name, raw string) string {
	cb, _ := s.callbackOf(name)
	if cb == nil {
		return fmt.Sprintf("integration %q has no callback: section (its secret signs the callbacks)", name)
	}
	origins := make([]string, len(cb.Origins))
	for i, o := range cb.Origins {
		origins[i] = o.Value
	}
	if err := s.cbPolicy().Check(raw, origins); err != nil {
		return err.Error()
	}
	return ""
}

func (s *Server) cbPolicy() history.URLPolicy {
	return history.URLPolicy{Allow: s.cfg.CallbackAllow, AllowPrivate: s.cfg.CallbackAllowPrivate}
}

// queueResultCallbacks publishes the callbacks of a finished lead, before
// its result is stored. A failure is logged; the lead is not retried for
// it.
func (s *Server) queueResultCallbacks(ctx context.Context, rec history.Record, res *engine.Result) {
	cb, r := s.callbackOf(rec.Integration)
	if cb == nil || !wants(cb, steps.CallbackResult) || s.hist == nil {
		return
	}
	body, err := history.CallbackBody(history.EventResult, time.Now(), map[string]any{
		"id": rec.ID, "integration": rec.Integration, "source": rec.Source, "batch": rec.Batch,
		"request_id": rec.RequestID, "result": json.RawMessage(mustResult(res))})
	if err != nil {
		return
	}
	var jobs []history.CallbackJob
	if u := callbackURL(cb, r); u != "" {
		jobs = append(jobs, history.CallbackJob{ID: history.ResultCallbackID(rec.ID), Integration: rec.Integration, URL: u, Body: body})
	}
	if rec.Batch != "" {
		if b, ok, _ := s.hist.Batch(rec.Batch); ok && b.CallbackURL != "" {
			jobs = append(jobs, history.CallbackJob{ID: history.ResultCallbackID(rec.ID) + "-b", Integration: rec.Integration,
				URL: b.CallbackURL, Untrusted: true, Body: body})
		}
	}
	s.publishCallbacks(ctx, jobs)
}

func mustResult(res *engine.Result) []byte {
	b, err := marshalResult(res)
	if err != nil {
		return []byte("null")
	}
	return b
}

func (s *Server) publishCallbacks(ctx context.Context, jobs []history.CallbackJob) bool {
	ok := true
	for _, c := range jobs {
		j, err := c.Job()
		if err == nil {
			_, err = s.q.Load().Publish(ctx, j)
		}
		if err != nil {
			ok = false
			s.log.Error("queueing a callback failed; it is not sent", "callback", c.ID, "integration", c.Integration, "err", err)
		}
	}
	return ok
}

// batchDone queues a batch's summary callbacks (the history calls it when
// the batch's last lead is recorded, and Start for those a crash left).
func (s *Server) batchDone(b history.Batch) {
	cb, r := s.callbackOf(b.Integration)
	if cb == nil || !wants(cb, steps.CallbackBatch) {
		s.hist.Notified(b.ID) // nothing to send
		return
	}
	body, err := history.CallbackBody(history.EventBatch, time.Now(), b)
	if err != nil {
		return
	}
	var jobs []history.CallbackJob
	if u := callbackURL(cb, r); u != "" {
		jobs = append(jobs, history.CallbackJob{ID: history.BatchCallbackID(b.ID), Integration: b.Integration, URL: u, Body: body})
	}
	if b.CallbackURL != "" {
		jobs = append(jobs, history.CallbackJob{ID: history.BatchCallbackID(b.ID) + "-b", Integration: b.Integration,
			URL: b.CallbackURL, Untrusted: true, Body: body})
	}
	s.cbWG.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if s.publishCallbacks(ctx, jobs) {
			s.hist.Notified(b.ID)
		}
	})
}

// renotify queues the summaries of batches done but not notified.
func (s *Server) renotify() {
	if s.hist == nil {
		return
	}
	bs, err := s.hist.Unnotified()
	if err != nil {
		s.log.Warn("lead history: finding batches to notify", "err", err)
	}
	for _, b := range bs {
		s.batchDone(b)
	}
}

// errNoCallback: the callback's integration has no callback: section now.
var errNoCallback = errors.New("the integration has no callback: section (any more)")

// workCallback delivers one callback: an error retries it with backoff;
// the queue dead-letters it after its last delivery.
func (s *Server) workCallback(ctx context.Context, d queue.Delivery) ([]byte, error) {
	var c history.CallbackJob
	if err := json.Unmarshal(d.Payload, &c); err != nil {
		return nil, fmt.Errorf("stored callback: %w", err)
	}
	cb, r := s.callbackOf(c.Integration)
	status, err := 0, errNoCallback
	redact := func(s string) string { return s }
	if cb != nil {
		redact = r.Redact
		v, _ := r.Value(cb.SecretSetting())
		secret, _ := v.(string)
		status, err = s.sender.Send(ctx, c, secret)
	}
	a := history.Attempt{At: time.Now(), Attempt: d.Attempt, URL: redact(c.URL), Status: status, Dead: err != nil && d.Attempt >= s.maxDeliver()}
	if err != nil {
		a.Error = redact(err.Error())
	}
	if s.hist != nil {
		s.hist.AddAttempt(c.ID, a)
	}
	s.log.Info("callback", "callback", c.ID, "integration", c.Integration, "attempt", d.Attempt, "status", status,
		"err", a.Error, "dead", a.Dead)
	if err != nil {
		return nil, errors.New(a.Error)
	}
	return json.Marshal(map[string]any{"delivered": true, "status": status})
}

// getCallback answers a callback's attempts.
func (s *Server) getCallback(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !queue.ValidID(id) {
		writeError(w, http.StatusBadRequest, CodeInvalidID, "callback ids are 1-128 of A-Z a-z 0-9 _ = -")
		return
	}
	if !s.historyOr(w) {
		return
	}
	list, err := s.hist.Attempts(id)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, err.Error())
		return
	}
	if len(list) == 0 {
		writeError(w, http.StatusNotFound, CodeNotFound, "no attempts of callback "+id)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "attempts": list})
}

// reconcileLimit bounds the leads reconcileHistory looks up at a start.
const reconcileLimit = 100_000

// reconcileHistory records the leads of unfinished batches that the queue
// says are done (or dead) but the history has no record of: a kill -9
// loses the records still waiting for their commit, not the results. The
// queue's stored result is the record (without tries).
func (s *Server) reconcileHistory() {
	if s.hist == nil {
		return
	}
	todo, err := s.hist.Unfinished(reconcileLimit)
	if err != nil {
		s.log.Warn("lead history: finding unfinished batches", "err", err)
		return
	}
	if len(todo) == 0 {
		return
	}
	s.cbWG.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		names := map[string]string{}
		n := 0
		for _, u := range todo {
			if s.stopping.Load() {
				return
			}
			if n += s.reconcileLead(ctx, u, names); n > 0 && n%1000 == 0 {
				s.hist.Flush()
			}
		}
		s.log.Info("lead history: recorded leads a crash had left out", "leads", n, "looked_at", len(todo))
	})
}

// reconcileLead records one lead if the queue has it finished (1) or not (0).
func (s *Server) reconcileLead(ctx context.Context, u history.Unfinished, names map[string]string) int {
	if _, ok, _ := s.hist.Get(u.Lead); ok {
		return 0
	}
	st, err := s.q.Load().Status(ctx, u.Lead)
	if err != nil || (st.State != queue.StateDone && st.State != queue.StateDead) {
		return 0
	}
	name, ok := names[u.Batch]
	if !ok {
		b, _, _ := s.hist.Batch(u.Batch)
		name, names[u.Batch] = b.Integration, b.Integration
	}
	res := &engine.Result{Outcome: engine.Error, Class: engine.ClassInternal, Reason: "dead-lettered: " + st.LastError}
	if st.State == queue.StateDone {
		b, err := s.q.Load().GetResult(ctx, u.Lead)
		if err != nil || json.Unmarshal(b, res) != nil {
			return 0
		}
	}
	s.hist.Add(history.NewRecord(ctx, history.Meta{ID: u.Lead, Integration: name, Source: history.SourceLeads,
		Batch: u.Batch, Started: st.Updated.Add(-time.Duration(res.Duration)), Finished: st.Updated}, res))
	return 1
}
