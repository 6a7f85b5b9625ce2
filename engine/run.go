package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plumbhq/plumb/steps"
)

// run runs the plan's steps for one lead with the settings of s (see
// Runner.Run). A panic anywhere in the flow is a bug, but it ends only this
// lead, as an error.
func (s *Runner) runLead(ctx context.Context, lead map[string]any) (res *Result) {
	p := s.plan
	start := time.Now()
	s.run.enter()
	defer s.run.leave()
	if p.deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = withDeadline(ctx, "flow", p.deadline)
		defer cancel()
	}
	res = &Result{Lead: normalizeMap(lead), Steps: make([]StepResult, 0, len(p.steps))}
	if StepName(ctx) != "" { // a lead run from inside another's step starts outside any
		ctx = context.WithValue(ctx, stepKey{}, "")
	}
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
	firstErr := -1 // the first step that ended in an error the flow continued past
	for _, g := range p.stages {
		n := len(res.Steps)
		res.Steps = s.runStage(ctx, g, f, res.Steps)
		for i := n; i < len(res.Steps); i++ {
			sr := &res.Steps[i]
			switch {
			case res.Outcome == Failure || res.Outcome == Error:
			case sr.Outcome == Failure || (sr.Outcome == Error && g.steps[i-n].onError != steps.OnErrorContinue):
				res.Outcome, res.Reason, res.Step, res.Class, res.Err = sr.Outcome, sr.Reason, sr.Name, sr.Class, sr.Err
			case sr.Outcome == Error && firstErr < 0:
				firstErr = i
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
	case firstErr >= 0:
		e := &res.Steps[firstErr]
		res.Outcome, res.Reason, res.Step, res.Class, res.Err = Error, e.Reason, e.Name, e.Class, e.Err
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

// runStage runs one step, or a parallel group, and appends their results
// to out: each step of a group works on its own copy of the lead and vars,
// and their captures, appended fields and vars are merged in declaration
// order once all are done.
func (s *Runner) runStage(ctx context.Context, g *stage, f *flow, out []StepResult) []StepResult {
	p := s.plan
	if len(g.steps) == 1 {
		return append(out, s.runOne(ctx, g.steps[0], f))
	}
	base := len(out)
	out = slices.Grow(out, len(g.steps))[:base+len(g.steps)]
	group := out[base:]
	gctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	views := make([]*flow, len(g.steps))
	var wg sync.WaitGroup
	for i, st := range g.steps {
		views[i] = &flow{lead: copyMap(f.lead), vars: copyMap(f.vars), done: f.done, secrets: slices.Clip(f.secrets), base: len(f.secrets), held: f.held}
		wg.Add(1)
		go func() {
			defer wg.Done()
			group[i] = s.runStep(gctx, st, views[i])
			if g.failFast && (group[i].Outcome == Failure || group[i].Outcome == Error) {
				cancel(fmt.Errorf("step %s of the parallel group ended in %s (fail_fast)", st.name, group[i].Outcome))
			}
		}()
	}
	wg.Wait()
	for i, st := range g.steps {
		group[i].Group = g.steps[0].name
		p.settle(st, group[i], views[i], f)
	}
	return out
}

// runOne runs a step outside a group.
func (s *Runner) runOne(ctx context.Context, st *step, f *flow) StepResult {
	p := s.plan
	var sr StepResult
	if err := ctx.Err(); err != nil {
		return StepResult{Name: st.name, Outcome: Error, Reason: "not run: " + contextReason(ctx, err), Class: endedClass(ctx), Err: err}
	}
	sr = s.runStep(ctx, st, f)
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
