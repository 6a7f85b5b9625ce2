package engine

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/internal/cond"
	"github.com/plumbhq/plumb/parse"
	"github.com/plumbhq/plumb/steps"
)

// run runs the plan's steps for one lead with the settings of s (see
// Runner.Run). A panic anywhere in the flow is a bug, but it ends only this
// lead, as an error.
func (p *Plan) run(ctx context.Context, lead map[string]any, s *Runner) (res *Result) {
	start := time.Now()
	s.run.enter()
	defer s.run.leave()
	if p.deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, p.deadline, fmt.Errorf("flow deadline %s exceeded", p.deadline))
		defer cancel()
	}
	res = &Result{Lead: normalizeMap(lead), Steps: make([]StepResult, 0, len(p.steps))}
	if p.ev != nil {
		ctx = p.ev.LeadStart(ctx, LeadStart{Integration: p.Name()})
	}
	defer func() {
		if v := recover(); v != nil {
			err := fmt.Errorf("internal error (a bug in plumb, please report it): %v", v)
			res.Outcome, res.Reason, res.Class, res.Err = Error, s.Redact(err.Error()), ClassInternal, err
			res.Duration = Duration(time.Since(start))
		}
		if p.ev != nil {
			p.ev.LeadEnd(ctx, LeadEnd{Integration: p.Name(), Outcome: res.Outcome, Class: res.Class,
				Reason: res.Reason, Step: res.Step, Duration: time.Duration(res.Duration)})
		}
	}()
	if res.Lead == nil {
		res.Lead = map[string]any{}
	}
	f := &flow{lead: res.Lead, vars: map[string]any{}, done: make(map[string]any, len(p.steps)), held: new(atomic.Int64)}
	defer func() { s.mem.give(f.held.Load()) }()
	if err := f.compute(ctx, p.vars, s); err != nil {
		res.Outcome, res.Reason, res.Class, res.Err = Error, s.Redact("vars: "+err.Error()), ClassTemplate, err
		res.Duration = Duration(time.Since(start))
		return res
	}
	var firstErr *StepResult
	for _, g := range p.stages {
		results := p.runStage(ctx, g, f, s)
		for i, sr := range results {
			res.Steps = append(res.Steps, sr)
			switch {
			case res.Outcome == Failure || res.Outcome == Error:
			case sr.Outcome == Failure || (sr.Outcome == Error && g.steps[i].onError != steps.OnErrorContinue):
				res.Outcome, res.Reason, res.Step, res.Class, res.Err = sr.Outcome, sr.Reason, sr.Name, sr.Class, sr.Err
			case sr.Outcome == Error && firstErr == nil:
				firstErr = &sr
			case sr.Outcome == Success:
				res.Outcome = Success
			}
		}
		if res.Outcome == Failure || res.Outcome == Error {
			break
		}
	}
	switch {
	case res.Outcome != "":
	case firstErr != nil:
		res.Outcome, res.Reason, res.Step, res.Class, res.Err = Error, firstErr.Reason, firstErr.Name, firstErr.Class, firstErr.Err
	default:
		res.Outcome, res.Reason = Skip, "every step was skipped"
	}
	res.Lead = f.mask(s).valueMap(res.Lead)
	res.Duration = Duration(time.Since(start))
	return res
}

// flow is the state of one lead between steps: the lead with its appended
// fields, the vars, and the captures of the steps done.
type flow struct {
	lead, vars, done map[string]any
	// secrets are the lead's redacted captures; m masks them with the
	// runner's secrets (built when first needed).
	secrets []string
	m       *masker
	// base is how many of secrets a parallel view inherited.
	base int
	// held is what the lead's captures hold of the runner's response
	// memory budget, given back when the lead ends (shared by the views
	// of a parallel group).
	held *atomic.Int64
}

// mask returns the masker for this lead: the runner's, plus the values of
// captures marked redact.
func (f *flow) mask(s *Runner) *masker {
	if len(f.secrets) == 0 {
		return s.mask
	}
	if f.m == nil {
		f.m = s.mask.with(f.secrets...) // the settings' forms are computed once, at Bind
	}
	return f.m
}

// keepSecrets records the step's redacted captures as secrets of the lead
// and masks them in its result (the raw values stay in sr.raw for later
// steps).
func (f *flow) keepSecrets(st *step, sr *StepResult) {
	if !st.redacts || sr.Captured == nil {
		return
	}
	sr.raw = sr.Captured
	shown := make(map[string]any, len(sr.Captured))
	for k, v := range sr.Captured {
		shown[k] = v
	}
	for _, c := range st.captures {
		if v, ok := sr.Captured[c.name]; ok && c.redact && v != nil {
			if t := plain(v); t != "" {
				f.secrets = append(f.secrets, t)
				f.m = nil
			}
			shown[c.name] = mask
		}
	}
	sr.Captured = shown
}

func (f *flow) data(s *Runner) map[string]any {
	return map[string]any{"lead": f.lead, "settings": s.values, "vars": f.vars, "steps": f.done}
}

// compute evaluates vars in order into f.vars; each may read earlier ones.
func (f *flow) compute(ctx context.Context, vars []namedValue, s *Runner) error {
	if len(vars) == 0 {
		return nil
	}
	data := f.data(s)
	for _, v := range vars {
		x, err := v.val.eval(ctx, data)
		if err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
		f.vars[v.name] = x
	}
	return nil
}

// runStage runs one step, or a parallel group: each of its steps works on
// its own copy of the lead and vars, and their captures, appended fields and
// vars are merged in declaration order once all are done.
func (p *Plan) runStage(ctx context.Context, g *stage, f *flow, s *Runner) []StepResult {
	out := make([]StepResult, len(g.steps))
	if len(g.steps) == 1 {
		out[0] = p.runOne(ctx, g.steps[0], f, s)
		return out
	}
	gctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	views := make([]*flow, len(g.steps))
	var wg sync.WaitGroup
	for i, st := range g.steps {
		views[i] = &flow{lead: copyMap(f.lead), vars: copyMap(f.vars), done: f.done, secrets: slices.Clip(f.secrets), base: len(f.secrets), held: f.held}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = p.runStep(gctx, st, views[i], s)
			if g.failFast && (out[i].Outcome == Failure || out[i].Outcome == Error) {
				cancel(fmt.Errorf("step %s of the parallel group ended in %s (fail_fast)", st.name, out[i].Outcome))
			}
		}()
	}
	wg.Wait()
	for i, st := range g.steps {
		p.settle(st, out[i], views[i], f)
	}
	return out
}

// runOne runs a step outside a group.
func (p *Plan) runOne(ctx context.Context, st *step, f *flow, s *Runner) StepResult {
	var sr StepResult
	if err := ctx.Err(); err != nil {
		return StepResult{Name: st.name, Outcome: Error, Reason: "not run: " + contextReason(ctx, err), Class: ClassCanceled, Err: err}
	}
	sr = p.runStep(ctx, st, f, s)
	p.settle(st, sr, f, f)
	return sr
}

// settle records a finished step's captures for later steps, and copies
// what it wrote in its view (appended fields, vars) into the flow.
func (p *Plan) settle(st *step, sr StepResult, view, f *flow) {
	if sr.Outcome == Success || sr.Outcome == Failure {
		f.done[st.name] = sr.Captured
		if sr.raw != nil {
			f.done[st.name] = sr.raw
		}
	}
	if view == f {
		return
	}
	if len(view.secrets) > view.base {
		f.secrets = append(f.secrets, view.secrets[view.base:]...)
		f.m = nil
	}
	for _, a := range st.appends {
		if v, ok := sr.Appended[a.field]; ok {
			setPath(f.lead, a.path, v)
		}
	}
	for field, v := range sr.Appended {
		if _, declared := st.appendsByField(field); !declared {
			setPath(f.lead, strings.Split(field, "."), v) // a fallback flag
		}
	}
	for _, v := range st.vars {
		if x, ok := view.vars[v.name]; ok {
			f.vars[v.name] = x
		}
	}
}

func (st *step) appendsByField(field string) (appendField, bool) {
	for _, a := range st.appends {
		if a.field == field {
			return a, true
		}
	}
	return appendField{}, false
}

func contextReason(ctx context.Context, err error) string {
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return cause.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "deadline exceeded"
	}
	return "cancelled"
}

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
}

// runStep runs one step for the lead of f. It reads f.done and writes only
// f.lead (appended fields) and f.vars (the step's vars).
func (p *Plan) runStep(ctx context.Context, st *step, f *flow, s *Runner) (sr StepResult) {
	start := time.Now()
	sr.Name = st.name
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
		f.keepSecrets(st, &sr)
		m := f.mask(s)
		sr.Reason = m.text(sr.Reason)
		for i := range sr.Tried {
			sr.Tried[i] = m.text(sr.Tried[i])
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
	}()
	if err := ctx.Err(); err != nil {
		sr.Outcome, sr.Reason, sr.Class, sr.Err = Error, "not run: "+contextReason(ctx, err), ClassCanceled, err
		return sr
	}
	ctx = context.WithValue(ctx, stepKey{}, st.name)
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
		return p.runBatched(ctx, st, f, data, s, sr)
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
		ctx, cancel = context.WithTimeoutCause(ctx, st.deadline, fmt.Errorf("step deadline %s exceeded", st.deadline))
		defer cancel()
	}
	var key, rkey string
	if st.cached {
		if key, err = p.cacheKey(st, req, data); err != nil {
			// without a key this lead has no cache link; the rest still works
			key = ""
			p.log.DebugContext(ctx, "no cache key", "step", st.name, "error", s.Redact(err.Error()))
		}
	}
	var v verdict
	if st.respCache != nil {
		k, err := st.respCache.key.Render(data)
		if err != nil {
			sr.Outcome, sr.Reason, sr.Class, sr.Err = Error, "cache key: "+err.Error(), ClassTemplate, err
			return sr
		}
		rkey = p.Name() + "/" + st.name + "/response/" + k
		e, found, err := s.store.Get(ctx, rkey)
		if err == nil && found && p.clock.Now().Sub(e.At) <= st.respCache.ttl {
			sr.Cache, v = "hit", verdict{outcome: Success, captured: e.Values}
		} else {
			sr.Cache = "miss"
		}
	}
	if sr.Cache != "hit" {
		var giveUp bool
		if cb := s.breakers[st]; cb != nil {
			if done, err := cb.Allow(); err != nil {
				v, giveUp = breakerVerdict(st, err), true
			} else {
				_, v, giveUp = p.exchange(ctx, st, req, data, s, &sr)
				var failed error
				if v.outcome == Error && v.class != ClassTemplate && v.class != ClassCanceled {
					failed = errors.New(v.reason) // the partner could not answer
				}
				done(failed)
			}
		} else {
			_, v, giveUp = p.exchange(ctx, st, req, data, s, &sr)
		}
		sr.Waited = Duration(req.waited)
		if giveUp && len(st.fallback) > 0 {
			v = p.fallback(ctx, st, req, key, v, data, s, &sr)
		} else if v.outcome == Success && key != "" {
			p.remember(ctx, s, st, key, v.captured)
		}
		if v.outcome == Success && rkey != "" && sr.Fallback == "" {
			p.remember(ctx, s, st, rkey, v.captured)
		}
	}
	p.finish(ctx, st, v, data, f.lead, &sr)
	s.holdCaptured(f, &sr)
	return sr
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
	sr.Outcome, sr.Reason, sr.Status, sr.Captured = v.outcome, v.reason, v.status, v.captured
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
func (p *Plan) exchange(ctx context.Context, st *step, req *request, data map[string]any, s *Runner, sr *StepResult) (resp parse.Response, v verdict, giveUp bool) {
	reauthed := false
	for attempt := 1; ; attempt++ {
		sr.Attempts++
		var t try
		resp, t = p.attempt(ctx, st, req, s, attempt)
		v = p.judge(st, req, resp, t.err, data)
		s.mem.give(req.reserved)
		req.reserved = 0
		var r *rule
		if v.outcome != Success {
			r = st.match(v.keys)
		}
		matched := ""
		if r != nil {
			matched = string(r.action) + " (" + r.source + ")"
			sr.Rule = matched
		}
		p.tried(ctx, st, req, &t, resp, &v, r, matched, s)
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
		if st.maxAttempts > 0 && attempt >= st.maxAttempts {
			if st.maxAttempts > 1 {
				v.reason += fmt.Sprintf(" (gave up after %d attempts: max_attempts)", attempt)
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
			if err := p.reauth(ctx, st, req, s); err != nil {
				v.reason += " (" + err.Error() + ")"
				return resp, v, false
			}
		case steps.ActionRetry:
			if attempt >= r.max {
				v.reason += fmt.Sprintf(" (gave up after %d attempts)", attempt)
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
				v.reason += fmt.Sprintf(" (gave up after %d attempts: waiting %s would pass the deadline)", attempt, wait)
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

// try is what attempt tells exchange about one try: ctx is the try's
// context for its end event (nil when nothing was sent: no limits: slot),
// ex its exchange when the plan has an observer.
type try struct {
	attempt  int
	ctx      context.Context
	ex       *Exchange
	err      error
	duration time.Duration
}

// attempt sends req once, bounded by timeout, and reads the whole (capped)
// answer. It is the unit that retry rules repeat.
func (p *Plan) attempt(ctx context.Context, st *step, pr *request, s *Runner, n int) (parse.Response, try) {
	if s.limited(st) {
		// get the token first: a slot is not spent waiting for it, and
		// requests do not bunch up behind one token fetch
		if pre, ok := s.authn(pr.auth).(auth.Preparer); ok {
			if err := pre.Prepare(s.authContext(ctx, pr.auth)); err != nil {
				return parse.Response{}, try{attempt: n, ctx: p.tryStart(ctx, st, pr, n), err: &AuthError{Err: err}}
			}
		}
	}
	release, waited, lerr := s.limits(ctx, st)
	pr.waited += waited
	if lerr != nil {
		return parse.Response{}, try{attempt: n, err: lerr}
	}
	defer release()
	start := time.Now()
	ctx = p.tryStart(ctx, st, pr, n)
	timeout := pr.timeout
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var tr *tracer
	if p.obs != nil {
		tr = &tracer{start: start}
		tctx = httptrace.WithClientTrace(tctx, tr.trace())
	}
	resp, err := p.send(tctx, st, pr, s)
	if err != nil && ctx.Err() == nil && tctx.Err() != nil {
		err = &TimeoutError{After: timeout}
	} else if err != nil && ctx.Err() != nil {
		err = &CanceledError{Reason: contextReason(ctx, ctx.Err())}
	}
	t := try{attempt: n, ctx: ctx, err: err, duration: time.Since(start)}
	if tr == nil {
		return resp, t
	}
	sent := pr.header
	if pr.sent != nil {
		sent = pr.sent
	}
	t.ex = &Exchange{Step: st.name, Attempt: n, Method: pr.method, URL: pr.shownURL(),
		RequestHeader: redactHeader(sent, pr.mask, pr.cred), RequestBody: pr.mask.body(pr.body),
		Status: resp.Status, ResponseHeader: redactHeader(resp.Header, pr.mask, nil), ResponseBody: pr.mask.body(resp.Body),
		Timing: tr.timing()}
	if err != nil {
		t.ex.Err = pr.mask.text(err.Error())
	}
	return resp, t
}

// tryStart tells the plan's events that try n of st begins, and returns
// the try's context.
func (p *Plan) tryStart(ctx context.Context, st *step, pr *request, n int) context.Context {
	if p.ev == nil {
		return ctx
	}
	return p.ev.TryStart(ctx, TryStart{Integration: p.Name(), Step: st.name, Method: pr.method, URL: pr.shownURL(),
		Attempt: n, Fallback: pr.fallback})
}

// tried tells the plan's events how try t ended: its verdict v, then the
// rule r it matched (nil: none), then its exchange, completed.
func (p *Plan) tried(ctx context.Context, st *step, pr *request, t *try, resp parse.Response, v *verdict, r *rule, rule string, s *Runner) {
	if p.ev != nil {
		if t.ctx != nil {
			e := TryEnd{Integration: p.Name(), Step: st.name, Method: pr.method, URL: pr.shownURL(), Attempt: t.attempt,
				Fallback: pr.fallback, Status: resp.Status, Rule: rule, Duration: t.duration}
			if v.outcome != Success {
				e.Class = v.class
			}
			if t.err != nil {
				e.Err = pr.mask.text(t.err.Error()) // the lead's redacted captures too
			}
			p.ev.TryEnd(t.ctx, e)
		}
		if r != nil {
			p.ev.Retry(ctx, Retry{Integration: p.Name(), Step: st.name, Attempt: t.attempt, Action: string(r.action),
				Rule: r.source, Reason: pr.mask.text(v.reason)})
		}
	}
	if t.ex == nil {
		return
	}
	if st.redacts {
		maskRedacted(t.ex, st, *v, resp, pr.mask)
	}
	t.ex.Action, t.ex.Fallback = rule, pr.fallback
	p.obs.Exchange(ctx, t.ex)
}

// TimeoutError is a try that did not complete within its timeout.
type TimeoutError struct{ After time.Duration }

// Error implements error.
func (e *TimeoutError) Error() string { return fmt.Sprintf("timeout after %s", e.After) }

// CanceledError is a try cut short by the caller, or by a step or flow
// deadline.
type CanceledError struct{ Reason string }

// Error implements error.
func (e *CanceledError) Error() string { return e.Reason }

// BodyTooLargeError is an answer larger than the step's max_bytes.
type BodyTooLargeError struct{ Limit int64 }

// Error implements error.
func (e *BodyTooLargeError) Error() string {
	return fmt.Sprintf("response body larger than %d bytes (raise response.max_bytes if this is expected)", e.Limit)
}

func (p *Plan) send(ctx context.Context, st *step, pr *request, s *Runner) (parse.Response, error) {
	if st.redirects != "" {
		ctx = context.WithValue(ctx, redirectKey{}, st.redirects)
	}
	req, err := pr.httpRequest(ctx, s.authn(pr.auth) != nil || p.inj != nil)
	if err != nil {
		return parse.Response{}, err
	}
	if p.inj != nil {
		p.inj.InjectHeaders(ctx, req.Header)
	}
	if err := p.sign(ctx, st, req, pr, s); err != nil {
		return parse.Response{}, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the caller names the (redacted) URL
		}
		return parse.Response{}, err
	}
	defer resp.Body.Close()
	body, reserved, err := readCapped(resp, st.maxBytes, s.mem)
	pr.reserved += reserved
	return parse.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, err
}

// judge decides what one try's answer means: captures, then the outcome.
func (p *Plan) judge(st *step, req *request, resp parse.Response, err error, data map[string]any) verdict {
	if err != nil {
		return unanswered(req, resp, err)
	}
	v := verdict{status: resp.Status, header: resp.Header}
	doc := parse.NewDoc(resp, st.format)
	capErr := formatError(st, resp, doc)
	var firstCapErr error
	v.captured, firstCapErr = captureAll(st, doc)
	if capErr == nil {
		capErr = firstCapErr
	}
	data["captured"] = v.captured
	if st.needsResponse {
		data["response"] = responseValue(doc)
	}
	switch {
	case resp.Status < 200 || resp.Status >= 300:
		judgeStatus(&v, resp, req.mask)
	case capErr != nil:
		v.outcome, v.reason, v.keys, v.class, v.err = Error, capErr.Error(), []string{"error_when"}, ClassCapture, capErr
	default:
		if !judgeConds(&v, st, data) {
			return v // a condition failed to evaluate: its error is the reason
		}
	}
	authorReason(&v, st, resp, capErr, data)
	return v
}

// unanswered is the verdict on a try that had no answer to judge: an error
// whose class (and retry keys) say why.
func unanswered(req *request, resp parse.Response, err error) verdict {
	v := verdict{outcome: Error, status: resp.Status, reason: fmt.Sprintf("%s %s: %v", req.method, req.shownURL(), err), err: err}
	var te *TimeoutError
	var ce *CanceledError
	var be *BodyTooLargeError
	switch {
	case errors.As(err, &te):
		v.keys, v.class = []string{"timeout"}, ClassTimeout
	case errors.As(err, &ce):
		v.class = ClassCanceled
	case errors.As(err, &be), errors.As(err, new(*MemoryBudgetError)):
		v.class = ClassTooLarge
	case errors.As(err, new(*AuthError)):
		v.class = ClassAuth
	case errors.As(err, new(*LimitError)):
		v.class = ClassLimit
	case isTLSError(err):
		v.keys, v.class = []string{"tls"}, ClassTLS
	default:
		v.keys, v.class = []string{"connection"}, ClassConnection
	}
	return v
}

// formatError tells why a 2xx answer with a body is not in the format the
// step declares (nil when it is, or when the step declares none).
func formatError(st *step, resp parse.Response, doc *parse.Doc) error {
	if resp.Status < 200 || resp.Status >= 300 || len(bytes.TrimSpace(resp.Body)) == 0 {
		return nil
	}
	switch st.format {
	case parse.JSON:
		if err := doc.JSONValid(); err != nil {
			return fmt.Errorf("%w (the step declares response.format: json)", err)
		}
	case parse.XML:
		if _, err := doc.XMLRoot(); err != nil {
			return fmt.Errorf("%w (the step declares response.format: xml)", err)
		}
	}
	return nil
}

// captureAll extracts the step's captures from doc (a default stands in for
// one not found), and returns them with the first capture that failed or
// was required and not found.
func captureAll(st *step, doc *parse.Doc) (map[string]any, error) {
	captured := make(map[string]any, len(st.captures))
	var capErr error
	for _, c := range st.captures {
		x, found, err := c.ext.Extract(doc)
		switch {
		case err != nil:
			if capErr == nil {
				capErr = fmt.Errorf("capture %s: %w", c.name, err)
			}
		case !found && c.def != nil:
			x = c.def
		case !found && c.required:
			if capErr == nil {
				capErr = fmt.Errorf("capture %s: not found in the response (%s)", c.name, c.ext.Kind())
			}
		}
		captured[c.name] = x
	}
	return captured, capErr
}

// judgeStatus judges an answer whose status is not 2xx: an error (auth for
// 401 and 407), or a failure when the partner said no (see partnerSaidNo).
func judgeStatus(v *verdict, resp parse.Response, m *masker) {
	v.outcome, v.reason, v.class = Error, httpReason(resp, m), ClassStatus
	if partnerSaidNo(resp.Status) {
		v.outcome = Failure
	} else if resp.Status == 401 || resp.Status == 407 {
		v.class = ClassAuth
	}
	code := strconv.Itoa(resp.Status)
	v.keys = []string{code, code[:1] + "xx"}
}

// judgeConds judges a 2xx answer whose captures all held by the step's
// error_when, then its failure_when: a success unless one holds. It
// returns false when a condition failed to evaluate (v is then that error).
func judgeConds(v *verdict, st *step, data map[string]any) bool {
	v.outcome = Success
	for _, r := range []struct {
		c   *cond.Program
		o   Outcome
		key string
	}{{st.errWhen, Error, "error_when"}, {st.failWhen, Failure, "failure_when"}} {
		if r.c == nil {
			continue
		}
		hit, err := r.c.Eval(data)
		if err != nil {
			v.outcome, v.reason, v.class, v.err = Error, err.Error(), ClassTemplate, err
			return false
		}
		if hit {
			v.outcome, v.reason, v.keys, v.class = r.o, r.key+" holds: "+r.c.Source(), []string{r.key}, ClassRejected
			return true
		}
	}
	return true
}

// authorReason puts the step's reason: template in place of v's reason
// when the step did not succeed, the template renders non-empty, and it
// speaks for what the partner said: a 4xx, a 2xx whose body failure_when or
// error_when judged, or — when it reads the answer (captured, response) —
// any status (a SOAP fault comes as a 500); beside a 3xx or 5xx the status
// is kept.
func authorReason(v *verdict, st *step, resp parse.Response, capErr error, data map[string]any) {
	said := (resp.Status >= 400 && resp.Status < 500) || (resp.Status < 300 && capErr == nil) || st.reasonReadsAnswer
	if v.outcome == Success || st.reason == nil || !said || resp.Status <= 0 {
		return
	}
	why, err := st.reason.Render(data)
	if err != nil || strings.TrimSpace(why) == "" {
		return
	}
	if resp.Status >= 300 && (resp.Status < 400 || resp.Status >= 500) {
		why += fmt.Sprintf(" (HTTP %d %s)", resp.Status, http.StatusText(resp.Status))
	}
	v.reason = why
}

// partnerSaidNo tells a 4xx that is an answer about the lead (failure) from
// one that means no answer was had (error): 401 and 407 (our credentials
// were refused), 408 (timeout) and 429 (rate limited).
func partnerSaidNo(status int) bool {
	switch status {
	case 401, 407, 408, 429:
		return false
	}
	return status >= 400 && status < 500
}

func httpReason(resp parse.Response, m *masker) string {
	reason := fmt.Sprintf("HTTP %d %s", resp.Status, http.StatusText(resp.Status))
	if snippet := bodySnippet(resp.Body, m); snippet != "" {
		reason += ": " + snippet
	}
	return reason
}

// bodySnippet is the start of an answer for a reason: its words, one space
// apart, masked, then cut to 200 bytes (masked before the cut, so the cut
// leaves no piece of a secret).
func bodySnippet(b []byte, m *masker) string {
	const shown, margin = 200, 4096 // margin: room for a secret across the cut
	var out strings.Builder
	space := false
	for len(b) > 0 && out.Len() < shown+margin {
		r, n := utf8.DecodeRune(b)
		if unicode.IsSpace(r) {
			space = out.Len() > 0
		} else {
			if space {
				out.WriteByte(' ')
				space = false
			}
			out.Write(b[:n])
		}
		b = b[n:]
	}
	return m.clip(out.String(), shown)
}

func responseValue(doc *parse.Doc) map[string]any {
	r := doc.Response()
	headers := make(map[string]any, len(r.Header))
	for k, v := range r.Header {
		if len(v) > 0 {
			headers[strings.ToLower(k)] = v[0]
		}
	}
	body, err := doc.Value()
	if err != nil {
		body = string(r.Body)
	}
	return map[string]any{"status": r.Status, "headers": headers, "body": body}
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

// setPath sets lead[a][b]… = v, creating objects on the way.
func setPath(m map[string]any, path []string, v any) error {
	for i, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			if _, exists := m[k]; exists && m[k] != nil {
				return fmt.Errorf("lead field %s is not an object", strings.Join(path[:i+1], "."))
			}
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
	return nil
}

func copyMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = copyValue(v)
	}
	return out
}

func copyValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return copyMap(t)
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = copyValue(x)
		}
		return out
	}
	return v
}

// isTLSError tells a failed handshake or certificate check from other
// connection errors: retrying it does not help.
func isTLSError(err error) bool {
	var (
		cv *tls.CertificateVerificationError
		rh tls.RecordHeaderError
		ae tls.AlertError
		ua x509.UnknownAuthorityError
		he x509.HostnameError
		ci x509.CertificateInvalidError
	)
	return errors.As(err, &cv) || errors.As(err, &rh) || errors.As(err, &ae) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

// maskRedacted masks, in an observed exchange, the values of the step's
// captures marked redact (a token in the answer that fetched it).
func maskRedacted(ex *Exchange, st *step, v verdict, resp parse.Response, base *masker) {
	var more []string
	for _, c := range st.captures {
		if x, ok := v.captured[c.name]; ok && c.redact && x != nil {
			if t := plain(x); t != "" {
				more = append(more, t)
			}
		}
	}
	if len(more) == 0 {
		return
	}
	m := base.with(more...)
	ex.ResponseBody = m.body(resp.Body)
	ex.ResponseHeader = m.header(resp.Header, nil)
}
