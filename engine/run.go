package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/plumbhq/plumb/cond"
	"github.com/plumbhq/plumb/parse"
)

// Run runs the plan's steps for one lead. It never fails and never hangs:
// whatever happens (bad data, timeouts, 5xx, unreadable answers, a cancelled
// ctx) the lead leaves with a Result whose outcome says so. lead is not
// modified; Result.Lead is a copy with the appended fields.
//
// Steps run in order. A skipped or successful step lets the flow go on; a
// failure or an error stops it and becomes the flow's outcome.
func (p *Plan) Run(ctx context.Context, lead map[string]any, s Settings) *Result {
	start := time.Now()
	res := &Result{Lead: copyMap(lead), Steps: make([]StepResult, 0, len(p.steps))}
	if res.Lead == nil {
		res.Lead = map[string]any{}
	}
	done := make(map[string]any, len(p.steps))
	for _, st := range p.steps {
		var sr StepResult
		if err := ctx.Err(); err != nil {
			sr = StepResult{Name: st.name, Outcome: Error, Reason: "not run: " + contextReason(ctx, err)}
		} else {
			sr = p.runStep(ctx, st, res.Lead, s, done)
		}
		res.Steps = append(res.Steps, sr)
		if sr.Outcome == Failure || sr.Outcome == Error {
			res.Outcome, res.Reason, res.Step = sr.Outcome, sr.Reason, sr.Name
			break
		}
		if sr.Outcome == Success {
			res.Outcome = Success
		}
	}
	if res.Outcome == "" {
		res.Outcome, res.Reason = Skip, "every step was skipped"
	}
	res.Duration = Duration(time.Since(start))
	return res
}

func contextReason(ctx context.Context, err error) string {
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return cause.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "flow deadline exceeded"
	}
	return "cancelled"
}

// runStep runs one step; done maps names of finished steps to their captures
// and receives this step's.
func (p *Plan) runStep(ctx context.Context, st *step, lead map[string]any, s Settings, done map[string]any) (sr StepResult) {
	start := time.Now()
	sr.Name = st.name
	defer func() {
		sr.Duration = Duration(time.Since(start))
		sr.Reason = s.Redact(sr.Reason)
	}()
	data := map[string]any{"lead": lead, "settings": s.values, "steps": done}
	if st.when != nil {
		ok, err := st.when.Eval(data)
		if err != nil {
			sr.Outcome, sr.Reason = Error, "when: "+err.Error()
			return sr
		}
		if !ok {
			sr.Outcome, sr.Reason = Skip, "when condition is false: "+st.when.Source()
			return sr
		}
	}
	req, err := p.build(st, data)
	if err != nil {
		sr.Outcome, sr.Reason = Error, "building the request: "+err.Error()
		return sr
	}
	sr.Method, sr.URL = req.method, s.Redact(req.url)

	resp, err := p.attempt(ctx, st, req, s)
	sr.Attempts = 1
	if err != nil {
		sr.Outcome, sr.Reason = Error, fmt.Sprintf("%s %s: %v", req.method, sr.URL, err)
		return sr
	}
	sr.Status = resp.Status
	p.judge(st, resp, data, &sr)
	if sr.Outcome == Success || sr.Outcome == Failure {
		done[st.name] = sr.Captured
		if err := p.appendFields(st, data, lead, &sr); err != nil {
			sr.Outcome, sr.Reason = Error, err.Error()
		}
	}
	return sr
}

// attempt sends req once, bounded by the step's per-try timeout, and reads
// the whole (capped) answer. It is the unit that retry policies repeat.
func (p *Plan) attempt(ctx context.Context, st *step, pr *request, s Settings) (parse.Response, error) {
	start := time.Now()
	tctx, cancel := context.WithTimeout(ctx, st.timeout)
	defer cancel()
	resp, err := p.send(tctx, st, pr)
	if err != nil && ctx.Err() == nil && tctx.Err() != nil {
		err = &TimeoutError{After: st.timeout}
	} else if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%s: %w", contextReason(ctx, ctx.Err()), err)
	}
	p.log.LogAttrs(ctx, slog.LevelDebug, "attempt",
		slog.String("step", st.name), slog.String("method", pr.method), slog.String("url", s.Redact(pr.url)),
		slog.Int("status", resp.Status), slog.Duration("duration", time.Since(start)), slog.Int("attempt", 1),
		slog.Any("error", redactErr(err, s)))
	return resp, err
}

func redactErr(err error, s Settings) any {
	if err == nil {
		return nil
	}
	return s.Redact(err.Error())
}

// TimeoutError is a try that did not complete within its timeout.
type TimeoutError struct{ After time.Duration }

// Error implements error.
func (e *TimeoutError) Error() string { return fmt.Sprintf("timeout after %s", e.After) }

// BodyTooLargeError is an answer larger than the step's max_bytes.
type BodyTooLargeError struct{ Limit int64 }

// Error implements error.
func (e *BodyTooLargeError) Error() string {
	return fmt.Sprintf("response body larger than %d bytes (raise response.max_bytes if this is expected)", e.Limit)
}

func (p *Plan) send(ctx context.Context, st *step, pr *request) (parse.Response, error) {
	req, err := pr.httpRequest(ctx)
	if err != nil {
		return parse.Response{}, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			err = ue.Unwrap() // drop url.Error's method+URL: the caller adds a redacted one
		}
		return parse.Response{}, err
	}
	defer resp.Body.Close()
	body, err := readCapped(resp, st.maxBytes)
	out := parse.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	if err != nil {
		return out, err
	}
	return out, nil
}

// judge reads the answer: captures, then the outcome.
func (p *Plan) judge(st *step, resp parse.Response, data map[string]any, sr *StepResult) {
	doc := parse.NewDoc(resp, st.format)
	captured := make(map[string]any, len(st.captures))
	var capErr error
	for _, c := range st.captures {
		v, found, err := c.ext.Extract(doc)
		switch {
		case err != nil:
			if capErr == nil {
				capErr = fmt.Errorf("capture %s: %w", c.name, err)
			}
		case !found && c.def != nil:
			v = c.def
		case !found && c.required:
			if capErr == nil {
				capErr = fmt.Errorf("capture %s: not found in the response (%s)", c.name, c.ext.Kind())
			}
		}
		captured[c.name] = v
	}
	sr.Captured = captured
	data["captured"] = captured
	if st.needsResponse {
		data["response"] = responseValue(doc)
	}
	ok2xx := resp.Status >= 200 && resp.Status < 300
	switch {
	case !ok2xx && resp.Status >= 400 && resp.Status < 500:
		sr.Outcome, sr.Reason = Failure, httpReason(resp)
	case !ok2xx:
		sr.Outcome, sr.Reason = Error, httpReason(resp)
	case capErr != nil:
		sr.Outcome, sr.Reason = Error, capErr.Error()
	default:
		sr.Outcome = Success
		for _, r := range []struct {
			c *cond.Program
			o Outcome
		}{{st.errWhen, Error}, {st.failWhen, Failure}} {
			if r.c == nil {
				continue
			}
			hit, err := r.c.Eval(data)
			if err != nil {
				sr.Outcome, sr.Reason = Error, err.Error()
				return
			}
			if hit {
				sr.Outcome, sr.Reason = r.o, string(r.o)+"_when holds: "+r.c.Source()
				break
			}
		}
	}
	if sr.Outcome != Success && st.reason != nil {
		if why, err := st.reason.Render(data); err == nil && strings.TrimSpace(why) != "" {
			sr.Reason = why
		}
	}
}

func httpReason(resp parse.Response) string {
	reason := fmt.Sprintf("HTTP %d %s", resp.Status, http.StatusText(resp.Status))
	if snippet := bodySnippet(resp.Body); snippet != "" {
		reason += ": " + snippet
	}
	return reason
}

func bodySnippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
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

func (p *Plan) appendFields(st *step, data, lead map[string]any, sr *StepResult) error {
	if len(st.appends) == 0 {
		return nil
	}
	sr.Appended = make(map[string]any, len(st.appends))
	for _, a := range st.appends {
		v, err := a.val.eval(data)
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
