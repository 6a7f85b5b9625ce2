package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/plumbhq/plumb/parse"
	"github.com/plumbhq/plumb/steps"
)

// verdict is what one answer (or the lack of one) means for a step.
type verdict struct {
	outcome  Outcome
	reason   string
	status   int
	captured map[string]any
	// keys are what retry rules match: "503", "5xx", "timeout",
	// "connection", "error_when", "failure_when".
	keys   []string
	header map[string][]string
	// flag names a lead field a defaults fallback sets to true.
	flag string
	// class and err say what kind of failure or error this is.
	class Class
	err   error
	// notes are what the answer showed that did not change the outcome
	// (a capture that found nothing).
	notes []string
}

// runStep runs one step for the lead of f. It reads f.done and writes only
// f.lead (appended fields) and f.vars (the step's vars).
func (s *Runner) runStep(ctx context.Context, st *step, f *flow) (sr StepResult) {
	p := s.plan
	start := time.Now()
	sr.Name = st.name
	ctx = context.WithValue(ctx, stepKey{}, st.name) // StepName: the step's events and lines see it
	if p.ev != nil {
		ctx = p.ev.StepStart(ctx, StepStart{Integration: p.Name(), Step: st.name})
		defer func() {
			p.ev.StepEnd(ctx, StepEnd{Integration: p.Name(), Step: st.name, Outcome: sr.Outcome, Class: sr.Class,
				Reason: sr.Reason, Fallback: sr.Fallback, Attempts: sr.Attempts, Duration: time.Duration(sr.Duration)})
		}()
	}
	defer func() {
		if v := recover(); v != nil {
			err := fmt.Errorf("internal error (a bug in plumb, please report it): %v", v)
			sr.Outcome, sr.Reason, sr.Class, sr.Err = Error, err.Error(), ClassInternal, err
		}
		sr.Duration = Duration(time.Since(start))
		f.maskStep(st, s, &sr)
	}()
	if err := ctx.Err(); err != nil {
		sr.Outcome, sr.Reason, sr.Class, sr.Err = Error, "not run: "+contextReason(ctx, err), endedClass(ctx), err
		return sr
	}
	data := f.data(s)
	if st.when != nil {
		ok, err := st.when.Eval(data)
		if err != nil {
			sr.Outcome, sr.Reason, sr.Class, sr.Err = Error, "when: "+err.Error(), ClassTemplate, err
			return sr
		}
		if !ok {
			sr.Outcome, sr.Reason = Skip, "when condition is false: "+st.when.Source()
			return sr
		}
	}
	if err := f.compute(ctx, st.vars, s); err != nil {
		sr.Outcome, sr.Reason, sr.Class, sr.Err = Error, "vars: "+err.Error(), ClassTemplate, err
		return sr
	}
	if st.batch != nil {
		return s.runBatched(ctx, st, f, data, sr)
	}
	req, err := p.build(ctx, st, data)
	if err != nil {
		sr.Outcome, sr.Reason, sr.Class, sr.Err = Error, "building the request: "+err.Error(), ClassTemplate, err
		return sr
	}
	req.mask = f.mask(s)
	sr.Method, sr.URL, sr.Variant, sr.Timeout = req.method, req.shownURL(), req.variant, Duration(req.timeout)
	if st.deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = withDeadline(ctx, "step", st.deadline)
		defer cancel()
	}
	key, rkey, v, err := s.cached(ctx, st, req, data, &sr)
	if err != nil {
		sr.Outcome, sr.Reason, sr.Class, sr.Err = Error, "cache key: "+err.Error(), ClassTemplate, err
		return sr
	}
	if sr.Cache != "hit" {
		v = s.call(ctx, st, req, key, rkey, data, &sr)
	}
	p.finish(ctx, st, v, data, f.lead, &sr)
	s.holdCaptured(f, &sr)
	if err := pastDeadline(ctx); err != nil && (sr.Outcome == Success || sr.Outcome == Failure) {
		// judging the answer (captures, conditions, append) took the time left
		sr.Outcome, sr.Class, sr.Err = Error, ClassTimeout, err
		sr.Reason = fmt.Sprintf("%v while the answer (status %d) was judged", err, sr.Status)
	}
	return sr
}

// maskStep masks a finished step's result with the lead's masker (the
// runner's secrets and the lead's redacted captures), keeping the raw
// captures for later steps.
func (f *flow) maskStep(st *step, s *Runner, sr *StepResult) {
	f.keepSecrets(st, sr)
	m := f.mask(s)
	sr.Reason = m.text(sr.Reason)
	for i := range sr.Tried {
		sr.Tried[i] = m.text(sr.Tried[i])
	}
	for i := range sr.Notes {
		sr.Notes[i] = m.text(sr.Notes[i])
	}
	if sr.Appended != nil {
		sr.Appended = m.valueMap(sr.Appended)
	}
	if sr.Captured != nil && !m.empty() {
		if sr.raw == nil {
			sr.raw = sr.Captured
		}
		sr.Captured = m.valueMap(sr.Captured)
	}
}

// cached works out the step's cache link key (cache fallbacks) and its
// response-cache key, and answers from the response cache when it holds a
// fresh answer (sr.Cache "hit", v its verdict). err is a response-cache key
// that does not render.
func (s *Runner) cached(ctx context.Context, st *step, req *request, data map[string]any, sr *StepResult) (key, rkey string, v verdict, err error) {
	p := s.plan
	if st.cached {
		if key, err = p.cacheKey(st, req, data); err != nil {
			// without a key this lead has no cache link; the rest still works
			key = ""
			p.log.DebugContext(ctx, "no cache key", "step", st.name, "error", s.Redact(err.Error()))
		}
	}
	if st.respCache == nil {
		return key, "", v, nil
	}
	k, err := st.respCache.key.Render(data)
	if err != nil {
		return key, "", v, err
	}
	rkey = p.Name() + "/" + st.name + "/response/" + k
	e, found, gerr := s.store.Get(ctx, rkey)
	if gerr == nil && found && p.clock.Now().Sub(e.At) <= st.respCache.ttl {
		sr.Cache, v = "hit", verdict{outcome: Success, captured: e.Values}
	} else {
		sr.Cache = "miss"
	}
	return key, rkey, v, nil
}

// call sends the step's request (through its circuit breaker, if any),
// falls back when the answer says so, and remembers a good answer for
// cache fallbacks (key) and the response cache (rkey).
func (s *Runner) call(ctx context.Context, st *step, req *request, key, rkey string, data map[string]any, sr *StepResult) verdict {
	var v verdict
	var giveUp bool
	if cb := s.breakers[st]; cb != nil {
		if done, err := cb.Allow(); err != nil {
			v, giveUp = breakerVerdict(st, err), true
		} else {
			_, v, giveUp = s.exchange(ctx, st, req, data, sr)
			var failed error
			if v.outcome == Error && v.class != ClassTemplate && v.class != ClassCanceled {
				failed = errors.New(v.reason) // the partner could not answer
			}
			done(failed)
		}
	} else {
		_, v, giveUp = s.exchange(ctx, st, req, data, sr)
	}
	sr.Waited = Duration(req.waited)
	if giveUp && len(st.fallback) > 0 {
		v = s.fallback(ctx, st, req, key, v, data, sr)
	} else if v.outcome == Success && key != "" {
		s.remember(ctx, st, key, v.captured)
	}
	if v.outcome == Success && rkey != "" && sr.Fallback == "" {
		s.remember(ctx, st, rkey, v.captured)
	}
	return v
}

// heldMin is the smallest capture counted against the response memory
// budget: below it, what a lead captures is bounded by the answers' own
// bounds and not worth the budget's lock.
const heldMin = 4 << 10

// holdCaptured counts a step's captured values against the runner's
// response memory budget until the lead's result is made (the answer's own
// bytes went back once it was judged; what was captured from it stays with
// the lead). Captures that do not fit make the step an error of class
// too_large, as an answer that does not fit does.
func (s *Runner) holdCaptured(f *flow, sr *StepResult) {
	if f.held == nil || sr.Captured == nil || (sr.Outcome != Success && sr.Outcome != Failure) {
		return
	}
	n := valueSize(sr.Captured)
	if n < heldMin {
		return
	}
	if !s.mem.take(n) {
		err := &MemoryBudgetError{Budget: s.mem.max}
		sr.Outcome, sr.Class, sr.Err = Error, ClassTooLarge, err
		sr.Reason = fmt.Sprintf("captured values of %d bytes: %v", n, err)
		sr.Captured, sr.Appended = nil, nil
		return
	}
	f.held.Add(n)
}

// finish records a step's verdict and, when the partner answered, appends
// its fields to the lead.
func (p *Plan) finish(ctx context.Context, st *step, v verdict, data, lead map[string]any, sr *StepResult) {
	sr.Outcome, sr.Reason, sr.Status, sr.Captured, sr.Notes = v.outcome, v.reason, v.status, v.captured, v.notes
	if v.outcome != Success && v.outcome != Skip {
		sr.Class, sr.Err = v.class, v.err
	}
	if sr.Outcome == Success || sr.Outcome == Failure {
		data["captured"] = sr.Captured
		if err := p.appendFields(ctx, st, data, lead, sr); err != nil {
			sr.Outcome, sr.Reason, sr.Class, sr.Err = Error, err.Error(), ClassTemplate, err
			return
		}
	}
	if v.flag != "" {
		if err := setPath(lead, strings.Split(v.flag, "."), true); err != nil {
			sr.Outcome, sr.Reason, sr.Class, sr.Err = Error, "flag "+v.flag+": "+err.Error(), ClassTemplate, err
			return
		}
		if sr.Appended == nil {
			sr.Appended = map[string]any{}
		}
		sr.Appended[v.flag] = true
	}
}

// exchange sends req under the step's retry rules until it has an answer
// or gives up, and returns the last response with its verdict. giveUp is
// true when the verdict may be replaced by the fallback chain.
func (s *Runner) exchange(ctx context.Context, st *step, req *request, data map[string]any, sr *StepResult) (resp parse.Response, v verdict, giveUp bool) {
	p := s.plan
	reauthed := false
	for attempt := 1; ; attempt++ {
		sr.Attempts++
		var t try
		resp, t = s.attempt(ctx, st, req, attempt)
		v = p.judge(st, req, resp, t.err, data, s.mem)
		s.mem.give(req.reserved)
		req.reserved = 0
		var r *rule
		if v.outcome != Success {
			r = st.match(v.keys)
		}
		capped := r != nil && st.maxAttempts > 0 && attempt >= st.maxAttempts &&
			(r.action == steps.ActionRetry || r.action == steps.ActionReauth)
		matched := ""
		switch {
		case capped:
			// the rule would try again, but max_attempts says no: that decided
			matched = fmt.Sprintf("give up (max_attempts: %d)", st.maxAttempts)
			sr.Rule = matched
		case r != nil:
			matched = string(r.action) + " (" + r.source + ")"
			sr.Rule = matched
		}
		s.tried(ctx, st, req, &t, resp, &v, r, matched)
		if r == nil {
			return resp, v, v.outcome == Error
		}
		switch r.action {
		case steps.ActionIgnore:
			v.outcome, v.reason = Success, ""
			return resp, v, false
		case steps.ActionFail:
			v.outcome = Failure
			return resp, v, false
		case steps.ActionStop:
			return resp, v, false
		case steps.ActionFallback:
			return resp, v, true
		}
		if capped {
			if st.maxAttempts > 1 {
				v.reason += fmt.Sprintf(" (gave up after %s: max_attempts)", pluralOf(attempt, "attempt"))
			}
			return resp, v, v.outcome == Error
		}
		switch r.action {
		case steps.ActionReauth:
			if reauthed {
				v.reason += " (again after re-authenticating)"
				return resp, v, false
			}
			reauthed = true
			if err := s.reauth(ctx, st, req); err != nil {
				v.reason += " (" + err.Error() + ")"
				return resp, v, false
			}
		case steps.ActionRetry:
			if attempt >= r.max {
				v.reason += fmt.Sprintf(" (gave up after %s)", pluralOf(attempt, "attempt"))
				return resp, v, v.outcome == Error
			}
			wait := r.backoff.wait(attempt)
			if r.retryAfter {
				if ra, ok := retryAfter(v.header, p.clock.Now()); ok {
					if ra > r.retryAfterMax {
						v.reason += fmt.Sprintf(" (the partner asked to wait %s, more than retry_after_max %s)", ra, r.retryAfterMax)
						return resp, v, v.outcome == Error
					}
					wait = ra
				}
			}
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
				v.reason += fmt.Sprintf(" (gave up after %s: waiting %s would pass the deadline)", pluralOf(attempt, "attempt"), wait)
				return resp, v, v.outcome == Error
			}
			if p.ev != nil {
				p.ev.Backoff(ctx, Backoff{Integration: p.Name(), Step: st.name, Attempt: attempt, Wait: wait})
			}
			if err := p.clock.Sleep(ctx, wait); err != nil {
				v.reason += " (" + contextReason(ctx, err) + " while waiting to retry)"
				return resp, v, v.outcome == Error
			}
		}
	}
}

func (p *Plan) appendFields(ctx context.Context, st *step, data, lead map[string]any, sr *StepResult) error {
	if len(st.appends) == 0 {
		return nil
	}
	sr.Appended = make(map[string]any, len(st.appends))
	for _, a := range st.appends {
		v, err := a.val.eval(ctx, data)
		if err != nil {
			return fmt.Errorf("append %s: %v", a.field, err)
		}
		if err := setPath(lead, a.path, v); err != nil {
			return fmt.Errorf("append %s: %v", a.field, err)
		}
		sr.Appended[a.field] = v
	}
	return nil
}
