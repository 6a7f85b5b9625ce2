package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/plumbhq/plumb/steps"
)

// DefaultRetryAfterMax is the longest Retry-After a retry rule honours
// unless it sets retry_after_max.
const DefaultRetryAfterMax = time.Minute

// rule is a compiled retry rule.
type rule struct {
	on map[string]bool
	// not lists keys the rule never matches (the default retry skips 501).
	not        map[string]bool
	action     steps.RetryAction
	max        int
	backoff    backoff
	retryAfter bool
	// retryAfterMax is the longest Retry-After waited for; a longer one
	// ends the retries.
	retryAfterMax time.Duration
	// source says where the rule comes from, for logs and reasons.
	source string
}

type backoff struct {
	initial, max time.Duration
	mult         float64
	jitter       bool
}

// defaultBackoff is used by the default rules and by retry rules that set no
// backoff of their own.
var defaultBackoff = backoff{initial: 500 * time.Millisecond, max: 10 * time.Second, mult: 2, jitter: true}

// defaultRules apply after a step's own rules: transient errors are retried
// (3 tries in all), a 401 re-authenticates once. Anything else that is not a
// success ends the step: a 4xx as failure, the rest as error. Not
// transient, so never retried by default: 501 Not Implemented, a TLS
// failure (certificate or handshake; class tls), a body too large.
func defaultRules() []*rule {
	return []*rule{
		{on: set("408", "429", "5xx", "timeout", "connection"), not: set("501"), action: steps.ActionRetry, max: 3, backoff: defaultBackoff, retryAfter: true, retryAfterMax: DefaultRetryAfterMax, source: "default rule"},
		{on: set("401"), action: steps.ActionReauth, source: "default rule"},
	}
}

func set(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

func compileRule(r *steps.RetryRule) *rule {
	out := &rule{on: map[string]bool{}, action: r.Action, max: r.MaxAttempts, backoff: defaultBackoff, retryAfter: r.RetryAfter != steps.RetryAfterIgnore,
		retryAfterMax: r.RetryAfterMax, source: "rule at " + r.Pos.String()}
	if out.retryAfterMax == 0 {
		out.retryAfterMax = DefaultRetryAfterMax
	}
	for _, on := range r.On {
		out.on[on.Value] = true
	}
	if out.max == 0 {
		out.max = 3
	}
	if b := r.Backoff; b != nil {
		if b.Initial > 0 {
			out.backoff.initial = b.Initial
		}
		if b.Max > 0 {
			out.backoff.max = b.Max
		}
		if out.backoff.initial > out.backoff.max {
			out.backoff.max = out.backoff.initial
		}
		if b.Multiplier > 0 {
			out.backoff.mult = b.Multiplier
		}
		if b.Jitter != nil {
			out.backoff.jitter = *b.Jitter
		}
	}
	return out
}

// match returns the first rule (the step's, then the defaults) matching
// how a try ended, or nil.
func (st *step) match(keys []string) *rule {
rules:
	for _, r := range st.rules {
		for _, k := range keys {
			if r.not[k] {
				continue rules
			}
		}
		for _, k := range keys {
			if r.on[k] {
				return r
			}
		}
	}
	return nil
}

// wait is the pause before retry number n (1 for the first retry).
func (b backoff) wait(n int) time.Duration {
	d := float64(b.initial)
	for i := 1; i < n; i++ {
		d *= b.mult
		if d >= float64(b.max) {
			break
		}
	}
	w := time.Duration(min(d, float64(b.max)))
	if b.jitter && w > 1 {
		w = w/2 + time.Duration(rand.Int64N(int64(w/2)+1))
	}
	return w
}

// retryAfter reads a Retry-After header (seconds or an HTTP date) relative
// to now; ok is false when there is none or it cannot be read. A number of
// seconds too large to hold is the longest wait there is (longer than any
// retry_after_max); a negative one is no delay-seconds and is not read.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		switch {
		case secs < 0:
			return 0, false
		case secs > int64(math.MaxInt64/time.Second):
			return time.Duration(math.MaxInt64), true
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// sleep waits d on the plan's clock, or until ctx is done.
func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// describe renders the rule for people.
func (r *rule) describe() string {
	on := slices.Sorted(maps.Keys(r.on))
	s := "on " + strings.Join(on, ", ")
	if len(r.not) > 0 {
		s += " (not " + strings.Join(slices.Sorted(maps.Keys(r.not)), ", ") + ")"
	}
	s += ": " + string(r.action)
	if r.action == steps.ActionRetry {
		s += fmt.Sprintf(" up to %d tries, backoff %s…%s", r.max, r.backoff.initial, r.backoff.max)
		if r.retryAfter {
			s += fmt.Sprintf(", Retry-After up to %s", r.retryAfterMax)
		} else {
			s += ", Retry-After ignored"
		}
	}
	return s + " (" + r.source + ")"
}
