package serve

import (
	"context"
	"errors"
	"fmt"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/history"
	"github.com/plumbhq/plumb/internal/hookjob"
	"github.com/plumbhq/plumb/internal/queue"
)

// errStopping hands a lead back to the queue during a shutdown.
var errStopping = errors.New("serve: shutting down; the lead stays in the queue")

// sem is the concurrency limit of one integration, shared by sync runs and
// workers and kept across reloads.
func (s *Server) sem(name string) chan struct{} {
	s.semMu.Lock()
	defer s.semMu.Unlock()
	c := s.sems[name]
	if c == nil {
		c = make(chan struct{}, s.cfg.Concurrency)
		s.sems[name] = c
	}
	return c
}

// run runs lead with the integration's current runner, within its
// concurrency limit. A runner closed by a reload under the lead is replaced
// by the new one. nil means the integration is not served (any more).
func (s *Server) run(ctx context.Context, name, mode string, lead map[string]any) (*engine.Result, error) {
	sem := s.sem(name)
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-sem }()
	running := s.metrics.running.WithLabelValues(name)
	running.Inc()
	defer running.Dec()
	for range 3 {
		e := s.reg.lookup(name)
		var r *engine.Runner
		if e != nil {
			r = e.current()
		}
		if r == nil {
			return nil, nil
		}
		res := r.Run(ctx, lead)
		if errors.Is(res.Err, engine.ErrClosed) {
			if s.stopping.Load() {
				return nil, errStopping
			}
			continue // reloaded under us: the next lookup finds the new runner
		}
		s.metrics.observe(name, mode, res)
		if !onAccessLine(ctx, name, mode, res) {
			s.logLead(ctx, name, mode, res)
		}
		return res, nil
	}
	return nil, errStopping
}

// notServed is the result of a lead whose integration is not loaded.
func notServed(name string, lead map[string]any) *engine.Result {
	return &engine.Result{Outcome: engine.Error, Class: engine.ClassInput,
		Reason: fmt.Sprintf("integration %q is not served here", name), Steps: []engine.StepResult{}, Lead: lead}
}

// work is the queue handler: it runs one lead and returns its result JSON,
// which the queue stores before it acknowledges the lead. Errors hand the
// lead back (a shutdown); everything about the lead itself is in the
// result.
func (s *Server) work(ctx context.Context, d queue.Delivery) ([]byte, error) {
	ctx, end := s.startJob(ctx, d) // observe.go: the lead's ids and trace
	defer end()
	// a webhook delivery stored before jobs had kinds is told by its id
	if d.Kind == queue.KindWebhook || d.Kind == "" && hookjob.IsJob(d.ID) {
		return s.workHook(ctx, d)
	}
	if d.Kind == history.KindCallback {
		return s.workCallback(ctx, d)
	}
	s.backlog.started.Add(1)
	lead, err := engine.DecodeLead(d.Payload)
	if err != nil {
		res := &engine.Result{Outcome: engine.Error, Class: engine.ClassInput, Reason: "stored lead: " + err.Error(), Steps: []engine.StepResult{}}
		s.metrics.observe(d.Integration, "async", res)
		return marshalResult(res)
	}
	l := leadRun{id: d.ID, name: d.Integration, source: history.SourceLeads, accepted: d.Enqueued}
	ctx, started := s.startLead(ctx, l)
	res, err := s.run(ctx, d.Integration, "async", lead)
	if err != nil {
		return nil, err
	}
	if res == nil {
		res = notServed(d.Integration, lead)
		s.metrics.observe(d.Integration, "async", res)
		s.log.WarnContext(ctx, "lead for an integration that is not served", "integration", d.Integration)
	}
	if ctx.Err() != nil && res.Outcome == engine.Error {
		// cut short by the end of a shutdown's drain: run it again later
		return nil, errStopping
	}
	s.finishLead(ctx, l, started, res)
	return marshalResult(res)
}
