package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptrace"
	"net/url"
	"syscall"
	"time"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/parse"
)

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
func (s *Runner) attempt(ctx context.Context, st *step, pr *request, n int) (parse.Response, try) {
	p := s.plan
	if s.limited(st) {
		// get the token first: a slot is not spent waiting for it, and
		// requests do not bunch up behind one token fetch
		if err := s.prepare(ctx, pr); err != nil {
			return parse.Response{}, try{attempt: n, ctx: p.tryStart(ctx, st, pr, n), err: err}
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
	if p.observing(ctx) {
		tr = &tracer{start: start}
		tctx = httptrace.WithClientTrace(tctx, tr.trace())
	}
	resp, err := s.send(tctx, st, pr)
	if err != nil {
		err = cutOff(ctx, tctx, timeout, err)
	} else {
		err = pastDeadline(ctx) // an answer read too late is not decoded and judged
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
		t.ex.Class = unanswered(pr, resp, err).class
	}
	return resp, t
}

// prepare gets the token of pr's auth, when it has one to get, before a
// try waits for its slot. The fetch is bounded as a try is: by its
// timeout, the step's and flow's deadlines and the caller's context.
func (s *Runner) prepare(ctx context.Context, pr *request) error {
	pre, ok := s.authn(pr.auth).(auth.Preparer)
	if !ok {
		return nil
	}
	tctx, cancel := context.WithTimeout(ctx, pr.timeout)
	defer cancel()
	if err := pre.Prepare(s.authContext(tctx, pr.auth)); err != nil {
		return cutOff(ctx, tctx, pr.timeout, &AuthError{Err: err})
	}
	return nil
}

// cutOff is the error of a try that failed with err under tctx, a child of
// ctx bounded by timeout: a TimeoutError when the try's timeout or a
// deadline of the integration's own (step, flow) ended it, a
// CanceledError when the caller did, else err.
func cutOff(ctx, tctx context.Context, timeout time.Duration, err error) error {
	switch {
	case ctx.Err() != nil:
		return ended(ctx)
	case tctx.Err() != nil:
		return &TimeoutError{After: timeout}
	}
	return err
}

// deadlineCause is the cause of a context that a deadline of the
// integration's own ended: a step's, the flow's or a source's. Waiting on
// the partner past it is a timeout, not a cancellation by the caller.
type deadlineCause struct {
	of    string // "step", "flow", "source"
	after time.Duration
}

func (d *deadlineCause) Error() string { return fmt.Sprintf("%s deadline %s exceeded", d.of, d.after) }

// withDeadline bounds ctx by the deadline of (step, flow, source) after d.
func withDeadline(ctx context.Context, of string, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, d, &deadlineCause{of: of, after: d})
}

// ended is the error of work cut short because ctx ended: a TimeoutError
// naming the deadline when one of the integration's own ended it, else a
// CanceledError (the caller's context, a client gone, a shutdown).
func ended(ctx context.Context) error {
	var dc *deadlineCause
	if errors.As(context.Cause(ctx), &dc) {
		return &TimeoutError{After: dc.after, Deadline: dc.of}
	}
	return &CanceledError{Reason: contextReason(ctx, ctx.Err())}
}

// pastDeadline is the TimeoutError of ctx when a deadline of the
// integration's own has ended it, else nil (a caller that gave up after the
// partner answered does not undo the answer).
func pastDeadline(ctx context.Context) error {
	if ctx.Err() == nil {
		return nil
	}
	if te, ok := ended(ctx).(*TimeoutError); ok {
		return te
	}
	return nil
}

// endedClass is the class of work cut short because ctx ended (see ended).
func endedClass(ctx context.Context) Class {
	if _, ok := ended(ctx).(*TimeoutError); ok {
		return ClassTimeout
	}
	return ClassCanceled
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
func (s *Runner) tried(ctx context.Context, st *step, pr *request, t *try, resp parse.Response, v *verdict, r *rule, rule string) {
	p := s.plan
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

// TimeoutError is a try that did not complete within its timeout, or
// before a deadline of the integration's own (Deadline names it: "step",
// "flow", "source"; After is then the deadline).
type TimeoutError struct {
	After    time.Duration
	Deadline string
}

// Error implements error.
func (e *TimeoutError) Error() string {
	if e.Deadline != "" {
		return fmt.Sprintf("%s deadline %s exceeded", e.Deadline, e.After)
	}
	return fmt.Sprintf("timeout after %s", e.After)
}

// CanceledError is a try cut short by the caller: its context canceled, a
// client that hung up, a shutdown.
type CanceledError struct{ Reason string }

// Error implements error.
func (e *CanceledError) Error() string { return e.Reason }

// BodyTooLargeError is an answer larger than the step's max_bytes.
type BodyTooLargeError struct{ Limit int64 }

// Error implements error.
func (e *BodyTooLargeError) Error() string {
	return fmt.Sprintf("response body larger than %d bytes (raise response.max_bytes if this is expected)", e.Limit)
}

func (s *Runner) send(ctx context.Context, st *step, pr *request) (parse.Response, error) {
	p := s.plan
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
	if err := s.sign(ctx, st, req, pr); err != nil {
		return parse.Response{}, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the caller names the (redacted) URL
		}
		return parse.Response{}, closedConn(err, "before an answer")
	}
	defer resp.Body.Close()
	body, reserved, err := readCapped(resp, st.maxBytes, s.mem)
	pr.reserved += reserved
	return parse.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, closedConn(err, "in the middle of the answer")
}

// closedConn says in words what a bare EOF or a reset means: the partner
// closed or reset the connection (when: before an answer, in the middle of
// it). Other errors are returned as they are; the error is kept for
// errors.Is.
func closedConn(err error, when string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ECONNRESET):
		return fmt.Errorf("connection reset by the partner %s (%w)", when, err)
	case errors.Is(err, syscall.EPIPE):
		return fmt.Errorf("connection closed by the partner while the request was sent (%w)", err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("connection closed by the partner %s (%w)", when, err)
	}
	return err
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
