package engine

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/antchfx/xpath"

	"github.com/plumbhq/plumb/internal/cond"
	"github.com/plumbhq/plumb/internal/schedule"
	"github.com/plumbhq/plumb/parse"
	"github.com/plumbhq/plumb/steps"
	"github.com/plumbhq/plumb/template"
)

// Page is one answer of the integration's source: request.
type Page struct {
	// Outcome is success when the partner answered 2xx and the source's
	// captures and outcome rules accept it; Reason, Class and Err say why
	// not, as for a step.
	Outcome Outcome
	Reason  string
	Class   Class
	Err     error
	// Status, Header and Body are the partner's answer. Body is raw partner
	// data (not masked): read records from it, do not print it.
	Status int
	Header http.Header
	Body   []byte
	// Captured holds the source's captures (e.g. has_more, next cursor).
	Captured map[string]any
	// URL is the URL called, secrets masked; Attempts counts the tries.
	URL      string
	Attempts int
	Duration Duration
}

// ErrNoSource is returned by FetchPage for an integration without a
// source: section.
var ErrNoSource = errors.New("the integration has no source: section")

// ErrNextLink is the error (errors.Is) of a page whose next link
// FetchPage did not follow: one that leaves the source's host, or that is
// not a URL.
var ErrNextLink = errors.New("next page link not followed")

// HasSource reports whether the integration declares a source: section.
func (p *Plan) HasSource() bool { return p.source != nil }

// SourceSection returns the integration's source: section as loaded and
// checked (do not modify it), its stop_when as compiled at load (nil when
// not given) and its schedule as compiled at load (nil when not given);
// nil, nil, nil without a source: section. It is what package source
// compiles a sync from, and what plumb serve schedules: the file is read
// and its conditions and schedule are compiled once, by Load or Parse.
func (p *Plan) SourceSection() (*steps.Source, *cond.Program, *schedule.Spec) {
	if p.source == nil {
		return nil, nil, nil
	}
	return p.in.Source, p.sourceStop, p.sourceSched
}

// SourceReaders returns what reads a page of the source, compiled by Load
// or Parse: the records: xpath (nil unless given) and the paginate cursor:
// or next: locator (nil unless the pagination reads one).
func (p *Plan) SourceReaders() (records *xpath.Expr, next parse.Extractor) {
	return p.sourceRecords, p.sourceNext
}

// sourceReaders compiles the records: xpath and the pagination's locator of
// a source, as captures' are: a problem is a load error at the value.
func (c *compiler) sourceReaders(src *steps.Source) {
	if r := src.Records; r != nil && r.XPath != "" {
		x, err := xpath.CompileWithNS(r.XPath, src.Namespaces)
		if err != nil {
			c.errs.Add(r.Pos, "an XPath 1.0 expression selecting one node per record, e.g. //Lead", "source: records: xpath %q: %v", r.XPath, err)
		}
		c.plan.sourceRecords = x
	}
	pg := src.Paginate
	if pg == nil {
		return
	}
	var l *steps.Locator
	switch steps.PaginateType(pg.Type.Value) {
	case steps.PaginateCursor:
		l = pg.Cursor
	case steps.PaginateNextURL:
		l = pg.Next
	}
	if l == nil {
		return
	}
	e, err := parse.Compile(parse.Spec{JSON: l.JSON, XPath: l.XPath, Header: l.Header}, parse.Namespaces(src.Namespaces))
	if err != nil {
		c.errs.Add(l.Pos, "", "source: paginate: %v", err)
	}
	c.plan.sourceNext = e
}

// stopWhen compiles a source's stop_when (after the source's request:
// c.cur is the source); its problems name it.
func (c *compiler) stopWhen(s steps.String) *cond.Program {
	n := len(c.errs)
	prog := c.cond(s, scopeStop)
	for _, e := range c.errs[n:] {
		e.Msg = "source: stop_when: " + e.Msg
	}
	return prog
}

// compilePageRate compiles a source's rate: a token bucket of one.
func compilePageRate(rate steps.String) *limitSpec {
	if !rate.IsSet() {
		return nil
	}
	n, per, err := steps.ParseRate(rate.Value)
	if err != nil {
		return nil // the validator reports it
	}
	return &limitSpec{perSecond: float64(n) / per.Seconds(), burst: 1}
}

// pageBudget makes a runner's budget of page requests (rate:), with
// Config.RateLimiter when given, named integration/source/pages: page
// budgets are shared as the steps' are.
func (p *Plan) pageBudget(shared func(string, float64, int) RateLimiter) *limiter {
	if p.sourceRate == nil {
		return nil
	}
	return p.sourceRate.limiter(p.Name()+"/"+p.source.name+"/pages", shared)
}

// waitPage waits for the source's rate: budget (none: no wait).
func (r *Runner) waitPage(ctx context.Context) error {
	if r.pageRate == nil || r.pageRate.rate == nil {
		return nil
	}
	if err := r.pageRate.rate.Wait(ctx); err != nil {
		return fmt.Errorf("waiting for the source's rate: budget: %w", err)
	}
	return nil
}

// FetchPage waits for the source's rate: budget (made with
// Config.RateLimiter when given), sends the source's request once (with
// its retry rules, Retry-After, timeouts, deadline and auth, as for a
// step) and returns the answer. state and page are what the request's templates read as state.*
// and page.*. When next is not empty it is the URL to fetch instead of the
// rendered one (a next link from the previous answer, absolute or
// relative to the rendered URL); it must keep the rendered URL's scheme,
// host and port, or name a host of http.allow_hosts, else nothing is sent
// and the page is an error. The request template is rendered either way,
// so it must render with the state and page given.
func (r *Runner) FetchPage(ctx context.Context, state, page map[string]any, next string) *Page {
	p := r.plan
	if p == nil {
		return &Page{Outcome: Error, Reason: ErrNotBound.Error(), Class: ClassInternal, Err: ErrNotBound}
	}
	if p.source == nil {
		return &Page{Outcome: Error, Reason: ErrNoSource.Error(), Class: ClassTemplate, Err: ErrNoSource}
	}
	if !r.enter() {
		return &Page{Outcome: Error, Reason: ErrClosed.Error(), Class: ClassCanceled, Err: ErrClosed}
	}
	defer r.exit()
	if err := r.waitPage(ctx); err != nil {
		return &Page{Outcome: Error, Reason: r.mask.text(err.Error()), Class: ClassLimit, Err: err}
	}
	start := time.Now()
	st := p.source
	pg := &Page{}
	defer func() { pg.Duration = Duration(time.Since(start)) }()
	fail := func(class Class, err error) *Page {
		pg.Outcome, pg.Class, pg.Err, pg.Reason = Error, class, err, r.mask.text(err.Error())
		return pg
	}
	if state == nil {
		state = map[string]any{}
	}
	if page == nil {
		page = map[string]any{}
	}
	data := map[string]any{"settings": r.values, "state": normalizeMap(state), "page": normalizeMap(page),
		"lead": map[string]any{}, "vars": map[string]any{}, "steps": map[string]any{}}
	ctx = context.WithValue(ctx, stepKey{}, st.name)
	req, err := p.build(ctx, st, data)
	if err != nil {
		return fail(ClassTemplate, fmt.Errorf("building the request: %w", err))
	}
	if next != "" {
		base, _ := url.Parse(req.url)
		u, err := base.Parse(next) // a relative next link resolves against the request
		if err != nil {
			return fail(ClassCapture, fmt.Errorf("%w: %w", ErrNextLink, err))
		}
		if !sameHost(u, base) {
			var allowed []string
			if p.in.HTTP != nil {
				allowed = p.in.HTTP.AllowHosts
			}
			if len(allowed) == 0 || template.CheckHost(u, allowed) != nil {
				return fail(ClassCapture, fmt.Errorf("%w: it leaves the source's scheme, host and port, and http.allow_hosts does not name its host", ErrNextLink))
			}
		}
		req.url = u.String()
	}
	req.mask = r.mask
	pg.URL = req.shownURL()
	if st.deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = withDeadline(ctx, "source", st.deadline)
		defer cancel()
	}
	var sr StepResult
	resp, v, _ := r.exchange(ctx, st, req, data, &sr)
	pg.Outcome, pg.Reason, pg.Class, pg.Err = v.outcome, r.mask.text(v.reason), v.class, v.err
	if pg.Outcome == Success {
		pg.Class, pg.Err = "", nil
	}
	pg.Status, pg.Header, pg.Body, pg.Captured, pg.Attempts = resp.Status, resp.Header, resp.Body, v.captured, sr.Attempts
	return pg
}
