package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/plumbhq/plumb/steps"
)

// limiter is a compiled limits: section: a token bucket (x/time/rate) and
// a cap on requests in flight. A Runner makes its own, so every lead of the
// runner shares them.
type limiter struct {
	rate  RateLimiter
	slots chan struct{}
}

// RateLimiter is a rate budget a try waits on. The default is a token
// bucket in memory (golang.org/x/time/rate); Config.RateLimiter replaces
// it, e.g. with one a cluster shares.
type RateLimiter interface {
	// Wait blocks until a request may go, or returns an error when ctx
	// ends first or its deadline would pass before then.
	Wait(ctx context.Context) error
}

// limitSpec is a limits: section as compiled; a runner makes limiters from
// it.
type limitSpec struct {
	perSecond float64
	burst     int
	inFlight  int
}

func compileLimits(l *steps.Limits) *limitSpec {
	if l == nil || (l.Rate == "" && l.MaxInFlight == 0) {
		return nil
	}
	spec := &limitSpec{burst: max(l.Burst, 1), inFlight: l.MaxInFlight}
	if l.Rate != "" {
		if n, per, err := steps.ParseRate(l.Rate); err == nil {
			spec.perSecond = float64(n) / per.Seconds()
		}
	}
	return spec
}

func (s *limitSpec) limiter(name string, shared func(string, float64, int) RateLimiter) *limiter {
	if s == nil {
		return nil
	}
	l := &limiter{}
	switch {
	case s.perSecond > 0 && shared != nil:
		l.rate = shared(name, s.perSecond, s.burst)
	case s.perSecond > 0:
		l.rate = rate.NewLimiter(rate.Limit(s.perSecond), s.burst)
	}
	if s.inFlight > 0 {
		l.slots = make(chan struct{}, s.inFlight)
	}
	return l
}

// LimitError is a try that could not get a slot from the integration's or
// the step's limits before its deadline or the caller's context ended.
type LimitError struct{ Err error }

// Error implements error.
func (e *LimitError) Error() string { return "waiting for a request slot (limits:): " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *LimitError) Unwrap() error { return e.Err }

// acquire waits for a rate token and an in-flight slot; release gives the
// slot back. A wait that cannot end before ctx's deadline fails at once.
func (l *limiter) acquire(ctx context.Context) (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	if l.rate != nil {
		if err := l.rate.Wait(ctx); err != nil {
			return nil, &LimitError{Err: err}
		}
	}
	if l.slots == nil {
		return func() {}, nil
	}
	select {
	case l.slots <- struct{}{}:
		return func() { <-l.slots }, nil
	case <-ctx.Done():
		return nil, &LimitError{Err: context.Cause(ctx)}
	}
}

// limited reports whether a try of st waits for limits: slots.
func (r *Runner) limited(st *step) bool { return r.intLimit != nil || r.stepLimits[st] != nil }

// limits is what one try waits for: the integration's limits, then the
// step's. waited is how long it waited.
func (r *Runner) limits(ctx context.Context, st *step) (release func(), waited time.Duration, err error) {
	if r.intLimit == nil && r.stepLimits[st] == nil {
		return noRelease, 0, nil // no limits: nothing to wait for or release
	}
	start := time.Now()
	relInt, err := r.intLimit.acquire(ctx)
	if err != nil {
		return nil, time.Since(start), err
	}
	relStep, err := r.stepLimits[st].acquire(ctx)
	if err != nil {
		relInt()
		return nil, time.Since(start), err
	}
	waited = time.Since(start)
	if waited > time.Millisecond && r.plan.ev != nil {
		r.plan.ev.LimiterWait(ctx, LimiterWait{Integration: r.plan.Name(), Step: st.name, Wait: waited})
	}
	return func() { relStep(); relInt() }, waited, nil
}

func noRelease() {}

// breakerSpec is a compiled breaker: section.
type breakerSpec struct {
	failures uint32
	cooldown time.Duration
}

func compileBreaker(b *steps.Breaker) *breakerSpec {
	if b == nil {
		return nil
	}
	spec := &breakerSpec{failures: uint32(b.Failures), cooldown: b.Cooldown}
	if spec.failures == 0 {
		spec.failures = 5
	}
	if spec.cooldown == 0 {
		spec.cooldown = 30 * time.Second
	}
	return spec
}

// breaker builds the runner's circuit breaker for st (sony/gobreaker):
// consecutive step errors open it; after the cool-down one probe goes.
func (r *Runner) breaker(st *step) *gobreaker.TwoStepCircuitBreaker[struct{}] {
	spec := st.breaker
	p := r.plan
	return gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        st.name,
		MaxRequests: 1,
		Timeout:     spec.cooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= spec.failures },
		OnStateChange: func(name string, from, to gobreaker.State) {
			p.log.Warn("circuit breaker "+to.String(), "integration", p.ref(), "step", name, "from", from.String(),
				"failures", spec.failures, "cooldown", spec.cooldown)
			if p.ev != nil {
				p.ev.BreakerChange(context.Background(), BreakerChange{Integration: p.Name(), Step: name,
					From: breakerState(from), To: breakerState(to)})
			}
		},
	})
}

// breakerState is gobreaker's state as an event tells it.
func breakerState(s gobreaker.State) BreakerState {
	switch s {
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	case gobreaker.StateOpen:
		return BreakerOpen
	}
	return BreakerClosed
}

// ErrBreakerOpen is the error of a step its circuit breaker failed fast.
var ErrBreakerOpen = errors.New("circuit breaker open")

// breakerVerdict is what a step that was failed fast gets.
func breakerVerdict(st *step, err error) verdict {
	reason := fmt.Sprintf("circuit breaker open after %d consecutive errors: not sent (%v)", st.breaker.failures, err)
	return verdict{outcome: Error, reason: reason, class: ClassBreaker, err: fmt.Errorf("%w: %v", ErrBreakerOpen, err)}
}
