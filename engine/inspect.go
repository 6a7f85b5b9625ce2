package engine

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/plumbhq/plumb/steps"
)

// StepNames lists the plan's steps in the order they run.
func (p *Plan) StepNames() []string {
	out := make([]string, len(p.steps))
	for i, st := range p.steps {
		out[i] = st.name
	}
	return out
}

// runStepOnly runs only the named step for lead (see Runner.RunStep).
func (s *Runner) runStepOnly(ctx context.Context, name string, lead map[string]any, prior map[string]map[string]any) (*Result, error) {
	p := s.plan
	for _, st := range p.steps {
		if st.name != name {
			continue
		}
		res := &Result{Lead: normalizeMap(lead)}
		if res.Lead == nil {
			res.Lead = map[string]any{}
		}
		f := &flow{lead: res.Lead, vars: map[string]any{}, done: make(map[string]any, len(prior))}
		for k, v := range prior {
			f.done[k] = v
		}
		if err := f.compute(ctx, p.vars, s); err != nil {
			return nil, fmt.Errorf("vars: %s", s.Redact(err.Error()))
		}
		sr := s.runStep(ctx, st, f)
		res.Steps = []StepResult{sr}
		res.Outcome, res.Duration = sr.Outcome, sr.Duration
		if sr.Outcome != Success {
			res.Reason, res.Step, res.Class, res.Err = sr.Reason, sr.Name, sr.Class, sr.Err
		}
		return res, nil
	}
	return nil, fmt.Errorf("integration %s has no step %q (steps: %v)", p.Name(), name, p.StepNames())
}

// Rendered is a step's request as it would be sent, secrets masked.
type Rendered struct {
	Step   string      `json:"step"`
	Method string      `json:"method,omitempty"`
	URL    string      `json:"url,omitempty"`
	Header http.Header `json:"header,omitempty"`
	Body   string      `json:"body,omitempty"`
	// Auth names the auth scheme that signs the request when it is sent
	// (credentials are added at send time, so they are not shown here).
	Auth string `json:"auth,omitempty"`
	// Skipped holds the reason the step's when condition gave, if false.
	Skipped string `json:"skipped,omitempty"`
	// Err says why the request could not be rendered (for example a later
	// step reading a capture that only a real run would have).
	Err string `json:"error,omitempty"`
	// NeedsCaptures is set when the step reads captures of earlier steps
	// (steps.*), which a dry run does not have: its Err is then expected.
	NeedsCaptures bool `json:"needs_captures,omitempty"`
}

// dryRun renders every step's request for lead (see Runner.DryRun).
func (s *Runner) dryRun(lead map[string]any) []Rendered {
	p := s.plan
	ctx := context.Background() // a dry run renders and sends nothing: no deadline
	out := make([]Rendered, 0, len(p.steps))
	f := &flow{lead: normalizeMap(lead), vars: map[string]any{}, done: map[string]any{}}
	varsErr := f.compute(ctx, p.vars, s)
	for _, st := range p.steps {
		r := Rendered{Step: st.name, NeedsCaptures: st.readsSteps}
		data := f.data(s)
		if varsErr != nil {
			r.Err = s.Redact("vars: " + varsErr.Error())
			out = append(out, r)
			continue
		}
		if st.when != nil {
			ok, err := st.when.Eval(data)
			switch {
			case err != nil:
				r.Err = s.Redact("when: " + err.Error())
			case !ok:
				r.Skipped = "when condition is false: " + st.when.Source()
			}
		}
		if r.Err == "" && r.Skipped == "" {
			if err := f.compute(ctx, st.vars, s); err != nil {
				r.Err = s.Redact("vars: " + err.Error())
				out = append(out, r)
				continue
			}
			req, err := p.build(ctx, st, data)
			if err != nil {
				r.Err = s.Redact(err.Error())
			} else {
				r.Method, r.URL, r.Header, r.Body = req.method, s.mask.url(req.url), redactHeader(req.header, s.mask, nil), s.mask.body(req.body)
				if req.auth >= 0 && req.auth < len(s.authCfgs) && s.auths[req.auth] != nil {
					r.Auth = s.authCfgs[req.auth].Type
				}
			}
		}
		out = append(out, r)
	}
	return out
}

// BatchSize is the largest batch: size of the plan's batch steps (0 when it
// has none). Run at least that many leads at once, or batches only ever go
// when their wait is over.
func (p *Plan) BatchSize() int {
	n := 0
	for _, st := range p.steps {
		if st.batch != nil {
			n = max(n, st.batch.size)
		}
	}
	return n
}

// StepPolicy is how one step, or the source: request, tries: what
// validate -v prints.
type StepPolicy struct {
	Step string
	// Source marks the source: request's policy (Step is then its name),
	// and Pages says how it pages and how fast: "pages: cursor, 100 a
	// page, at most 10000 pages a sync; rate: at most 5/s".
	Source   bool
	Pages    string
	Timeout  time.Duration // per try (the step's; variants may set their own)
	Deadline time.Duration // all tries of the step (0: none)
	// MaxAttempts caps the tries whatever the rules say (0: no cap).
	MaxAttempts int
	// Rules are the retry rules in the order they are matched, the
	// defaults last, e.g. "on 429, 5xx (not 501), timeout, connection:
	// retry up to 3 tries, backoff 500ms…10s, Retry-After ≤ 1m0s (default rule)".
	Rules []string
	// Fallback lists the fallback links in order.
	Fallback []string
}

// Policies describes the effective retry policy of the source: request
// (first, when there is one) and of every step.
func (p *Plan) Policies() []StepPolicy {
	out := make([]StepPolicy, 0, len(p.steps)+1)
	if p.source != nil {
		sp := policyOf(p.source)
		sp.Source, sp.Pages = true, sourcePages(p.in.Source)
		out = append(out, sp)
	}
	for _, st := range p.steps {
		out = append(out, policyOf(st))
	}
	return out
}

func policyOf(st *step) StepPolicy {
	sp := StepPolicy{Step: st.name, Timeout: st.timeout, Deadline: st.deadline, MaxAttempts: st.maxAttempts}
	for _, r := range st.rules {
		sp.Rules = append(sp.Rules, r.describe())
	}
	for _, f := range st.fallback {
		sp.Fallback = append(sp.Fallback, f.kind)
	}
	return sp
}

// sourcePages describes how a source pages and how fast (StepPolicy.Pages).
func sourcePages(src *steps.Source) string {
	if src == nil {
		return ""
	}
	pages := "pages: one (no paginate:)"
	if pg := src.Paginate; pg != nil {
		pages = "pages: " + pg.Type.Value
		if pg.Size > 0 {
			pages += fmt.Sprintf(", %d a page", pg.Size)
		}
		limit := src.MaxPages
		if limit == 0 {
			limit = steps.DefaultMaxPages
		}
		pages += fmt.Sprintf(", at most %s a sync", pluralOf(limit, "page"))
	}
	rate := "rate: no limit"
	if src.Rate.IsSet() {
		rate = "rate: at most " + src.Rate.Value
	}
	return pages + "; " + rate
}
