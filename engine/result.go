package engine

import (
	"strconv"
	"time"

	"github.com/plumbhq/plumb/internal/jsonw"
	"github.com/plumbhq/plumb/steps"
)

// Outcome is how a step or a whole flow ended for a lead.
type Outcome string

// The outcomes. Failure means the partner answered no; Error means no usable
// answer could be had (transport error, timeout, 5xx, unreadable body).
const (
	Success = Outcome(steps.OutcomeSuccess)
	Failure = Outcome(steps.OutcomeFailure)
	Error   = Outcome(steps.OutcomeError)
	Skip    = Outcome(steps.OutcomeSkip)
)

// Duration is a time.Duration that marshals to JSON as milliseconds.
type Duration time.Duration

// MarshalJSON writes the duration as a number of milliseconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return jsonw.AppendMillis(nil, time.Duration(d)), nil
}

// UnmarshalJSON reads a number of milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	*d = Duration(f * float64(time.Millisecond))
	return nil
}

// String renders the duration like time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// Result is what became of one lead: every lead that enters Run leaves with
// one, whatever happened.
type Result struct {
	Outcome Outcome `json:"outcome"`
	Reason  string  `json:"reason,omitempty"`
	// Step names the step that decided a failure or error.
	Step     string         `json:"step,omitempty"`
	Duration Duration       `json:"duration_ms"`
	Steps    []StepResult   `json:"steps"`
	Lead     map[string]any `json:"lead"`
	// Class is the kind of failure or error that decided the outcome (see
	// the Class constants); empty for success and skip.
	Class Class `json:"class,omitempty"`
	// Err is the underlying error, for errors.As / errors.Is (for example
	// *TimeoutError, *AuthError, auth.ErrNotLoggedIn). It is not
	// serialised: its text may hold what Reason masks.
	Err error `json:"-"`
}

// Class is a machine-readable kind of failure or error, stable across
// releases: alert on it, count it, or map it to an HTTP status.
type Class string

// The classes.
const (
	// ClassTimeout: a try did not complete within its timeout, or the
	// step's or flow's own deadline passed (while a try waited on the
	// partner, or before a step could start).
	ClassTimeout Class = "timeout"
	// ClassConnection: the request could not be sent or its answer read
	// (refused, reset, DNS, EOF).
	ClassConnection Class = "connection"
	// ClassTLS: the TLS handshake or certificate verification failed.
	ClassTLS Class = "tls"
	// ClassStatus: the partner answered with a non-2xx status.
	ClassStatus Class = "status"
	// ClassAuth: credentials could not be had or were refused (401, 407,
	// a token endpoint that said no, not logged in).
	ClassAuth Class = "auth"
	// ClassRejected: a 2xx answer that failure_when or error_when judged.
	ClassRejected Class = "rejected"
	// ClassCapture: the answer could not be read as declared (a required
	// capture missing, an unparseable body).
	ClassCapture Class = "capture"
	// ClassTooLarge: the answer was larger than max_bytes.
	ClassTooLarge Class = "too_large"
	// ClassTemplate: the request, a condition, vars or appended fields
	// could not be rendered from the lead (a missing field, a bad value).
	ClassTemplate Class = "template"
	// ClassCanceled: the caller cut the lead short: its context (canceled
	// or past its deadline), a client that hung up, a shutdown, a closed
	// Runner, or fail_fast in a parallel group.
	ClassCanceled Class = "canceled"
	// ClassInput: the lead itself could not be read (a malformed row).
	ClassInput Class = "input"
	// ClassInternal: a bug in plumb, caught so it ends only this lead.
	ClassInternal Class = "internal"
	// ClassBreaker: the step's circuit breaker was open; nothing was sent.
	ClassBreaker Class = "breaker"
	// ClassLimit: no request slot (limits: rate or max_in_flight) could be
	// had before the deadline.
	ClassLimit Class = "limit"
)

// Classes lists every Class, in the order of their declaration: the values
// a result's Class may take besides "" (success and skip).
func Classes() []Class {
	return []Class{ClassTimeout, ClassConnection, ClassTLS, ClassStatus, ClassAuth, ClassRejected, ClassCapture,
		ClassTooLarge, ClassTemplate, ClassCanceled, ClassInput, ClassInternal, ClassBreaker, ClassLimit}
}

// StepResult is what became of one step.
type StepResult struct {
	Name    string  `json:"name"`
	Outcome Outcome `json:"outcome"`
	Reason  string  `json:"reason,omitempty"`
	Method  string  `json:"method,omitempty"`
	// URL is the URL called, with secret setting values masked.
	URL      string         `json:"url,omitempty"`
	Status   int            `json:"status,omitempty"`
	Attempts int            `json:"attempts"`
	Duration Duration       `json:"duration_ms"`
	Captured map[string]any `json:"captured,omitempty"`
	// Fallback names the fallback link that answered (request, cache,
	// defaults, skip), if any.
	Fallback string `json:"fallback,omitempty"`
	// Tried says why each earlier source of an answer (the primary request,
	// then each fallback link) gave none.
	Tried []string `json:"tried,omitempty"`
	// Variant is the 1-based route of the step's variants that was taken.
	Variant int `json:"variant,omitempty"`
	// Timeout is the per-try timeout that applied (the variant's, if it
	// sets one).
	Timeout Duration `json:"timeout_ms,omitempty"`
	// Rule is the last retry rule that matched a try: its action and where
	// it comes from ("retry (default rule)", "fail (rule at f.yaml:12:9)").
	Rule string `json:"rule,omitempty"`
	// Waited is the time the step's tries spent waiting for limits: slots
	// (included in Duration).
	Waited Duration `json:"waited_ms,omitempty"`
	// Cache is hit or miss for a step with a response cache.
	Cache string `json:"cache,omitempty"`
	// Batch is the id of the batch request that carried this lead.
	Batch string `json:"batch,omitempty"`
	// Group names the parallel group the step ran in (the group's first
	// step); empty for a step that ran alone.
	Group string `json:"group,omitempty"`
	// Appended holds the lead fields this step wrote.
	Appended map[string]any `json:"appended,omitempty"`
	// Notes tell what the answer showed that did not change the outcome
	// but is worth a look: a capture that found nothing ("`status`: path
	// `result.status` not found in the response (keys: data, meta)").
	// Masked, bounded.
	Notes []string `json:"notes,omitempty"`
	// Class is the kind of failure or error (empty for success and skip).
	Class Class `json:"class,omitempty"`
	// Err is the underlying error, for errors.As; not serialised.
	Err error `json:"-"`
	// raw holds the captures before redacted ones were masked.
	raw map[string]any
}
