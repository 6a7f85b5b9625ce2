package engine

import (
	"context"
	"net/http"
	"time"
)

// Events receives what runners do, as typed events: the one way out of the
// engine for metrics, traces, logs and observers. Give one to Load with
// WithEvents; the adapters plumb ships are in their own packages, so a
// program links only the ones it uses:
//
//   - engine/prommetrics: Prometheus metrics (plumb_*),
//   - engine/oteltrace: OpenTelemetry spans and traceparent propagation,
//   - engine/eventlog: log/slog lines at debug level,
//   - engine/observe: every HTTP try whole (an Exchange), for `plumb try`,
//     the console and tests.
//
// Methods are called from the goroutine running the lead (BreakerChange
// from the one whose try changed the breaker's state), concurrently for
// concurrent leads, so they must be safe for concurrent use; they should
// return quickly. A Start method returns the context the engine uses until
// the matching End (and passes to it): a tracer puts its span there. Event
// values carry no secret: URLs, reasons and errors are masked. Embed
// NopEvents to implement only some methods (and to keep compiling when a
// kind of event is added).
//
// A plan without Events pays nothing for them: no event value is built.
type Events interface {
	// LeadStart: a lead's flow begins.
	LeadStart(ctx context.Context, e LeadStart) context.Context
	// LeadEnd: a lead's flow ended with its result.
	LeadEnd(ctx context.Context, e LeadEnd)
	// StepStart: a step begins (it may still be skipped).
	StepStart(ctx context.Context, e StepStart) context.Context
	// StepEnd: a step ended, all its tries, waits and fallbacks included.
	StepEnd(ctx context.Context, e StepEnd)
	// TryStart: one HTTP try is about to be sent (after the limiter).
	TryStart(ctx context.Context, e TryStart) context.Context
	// TryEnd: the try's answer (or error) has been read and judged.
	TryEnd(ctx context.Context, e TryEnd)
	// Retry: a try matched a retry rule (any action: retry, reauth, fail,
	// fallback, ignore, stop).
	Retry(ctx context.Context, e Retry)
	// Backoff: the step waits before its next try.
	Backoff(ctx context.Context, e Backoff)
	// TokenFetch: a request to an OAuth2 token endpoint ended.
	TokenFetch(ctx context.Context, e TokenFetch)
	// LimiterWait: a try waited for a limits: slot (more than 1 ms).
	LimiterWait(ctx context.Context, e LimiterWait)
	// BreakerChange: a step's circuit breaker changed state. ctx is not
	// the lead's (the breaker's clock changes it too).
	BreakerChange(ctx context.Context, e BreakerChange)
}

// ExchangeObserver is implemented by Events that want every HTTP try whole:
// the masked request and answer, with connection timings. The engine builds
// an Exchange per try (and per token fetch) only for such Events, since it
// costs a request trace and copies of headers and bodies. Exchange is
// called after TryEnd (and Retry), or after TokenFetch.
type ExchangeObserver interface {
	Exchange(ctx context.Context, ex *Exchange)
}

// ExchangeFilter may be implemented by an ExchangeObserver that wants the
// exchanges of some runs only (plumb serve's lead history keeps them for
// the integrations that ask). Before each try the engine asks
// WantsExchanges with the try's context, and traces and copies the try
// only when an observer wants it; an observer without the method wants
// every try. Exchange may still be called for a try another observer
// wanted: ignore what you did not ask for.
type ExchangeFilter interface {
	WantsExchanges(ctx context.Context) bool
}

// HeaderInjector is implemented by Events that add headers to every try's
// request, such as a tracer's traceparent. InjectHeaders is called after
// TryStart, with the try's context and the outgoing request's header (a
// copy of its own for this try), before auth signs the request.
type HeaderInjector interface {
	InjectHeaders(ctx context.Context, h http.Header)
}

// WithEvents sends what runners of the plan do to e. It may be given more
// than once: each Events receives every event, in the order given.
func WithEvents(e Events) Option {
	return func(o *options) {
		if e != nil {
			o.events = append(o.events, e)
		}
	}
}

// LeadStart is a lead's flow beginning.
type LeadStart struct {
	Integration string
}

// LeadEnd is a lead's flow ended. Reason is masked.
type LeadEnd struct {
	Integration string
	Outcome     Outcome
	Class       Class
	Reason      string
	// Step is the step that decided the outcome, if any.
	Step     string
	Duration time.Duration
}

// StepStart is a step beginning.
type StepStart struct {
	Integration, Step string
}

// StepEnd is a step ended. Reason is masked.
type StepEnd struct {
	Integration, Step string
	Outcome           Outcome
	Class             Class
	Reason            string
	// Fallback names the fallback link that answered the step, if one did.
	Fallback string
	Attempts int
	Duration time.Duration
}

// TryStart is one HTTP try about to be sent. URL is masked.
type TryStart struct {
	Integration, Step string
	Method, URL       string
	// Attempt counts the step's tries from 1, fallback requests included.
	Attempt int
	// Fallback is set for a try of a fallback request link.
	Fallback bool
}

// TryEnd is one HTTP try read and judged. Status is 0 when the partner did
// not answer; Err (masked) says why. Class is the verdict's class for a try
// that failed or errored, and Rule the retry rule it matched ("action
// (source)"), if any.
type TryEnd struct {
	Integration, Step string
	Method, URL       string
	Attempt           int
	Fallback          bool
	Status            int
	Class             Class
	Err               string
	Rule              string
	// Duration is the time from sending the request to having read the
	// answer (limiter waits are not in it).
	Duration time.Duration
}

// Retry is a try that matched a retry rule. Reason (masked) is the try's.
type Retry struct {
	Integration, Step string
	Attempt           int
	// Action is the rule's action: retry, reauth, fail, fallback, ignore
	// or stop. Rule is where the rule comes from (its source).
	Action, Rule string
	Reason       string
}

// Backoff is the wait before a step's next try.
type Backoff struct {
	Integration, Step string
	Attempt           int
	Wait              time.Duration
}

// TokenFetch is one request to an OAuth2 token endpoint. URL is masked;
// Status is 0 when the endpoint did not answer.
type TokenFetch struct {
	Integration string
	URL         string
	Status      int
	Duration    time.Duration
}

// LimiterWait is the time a try waited for limits: slots.
type LimiterWait struct {
	Integration, Step string
	Wait              time.Duration
}

// BreakerChange is a step's circuit breaker entering state To.
type BreakerChange struct {
	Integration, Step string
	From, To          BreakerState
}

// BreakerState is a circuit breaker's state. Its value is the one the
// plumb_breaker_state gauge reports.
type BreakerState int

// The states of a circuit breaker.
const (
	BreakerClosed   BreakerState = 0
	BreakerHalfOpen BreakerState = 1
	BreakerOpen     BreakerState = 2
)

// String is the state's name: closed, half-open or open.
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerHalfOpen:
		return "half-open"
	case BreakerOpen:
		return "open"
	}
	return "unknown"
}

// NopEvents implements Events doing nothing. Embed it in an Events that
// handles only some kinds of event.
type NopEvents struct{}

// LeadStart implements Events.
func (NopEvents) LeadStart(ctx context.Context, _ LeadStart) context.Context { return ctx }

// LeadEnd implements Events.
func (NopEvents) LeadEnd(context.Context, LeadEnd) {}

// StepStart implements Events.
func (NopEvents) StepStart(ctx context.Context, _ StepStart) context.Context { return ctx }

// StepEnd implements Events.
func (NopEvents) StepEnd(context.Context, StepEnd) {}

// TryStart implements Events.
func (NopEvents) TryStart(ctx context.Context, _ TryStart) context.Context { return ctx }

// TryEnd implements Events.
func (NopEvents) TryEnd(context.Context, TryEnd) {}

// Retry implements Events.
func (NopEvents) Retry(context.Context, Retry) {}

// Backoff implements Events.
func (NopEvents) Backoff(context.Context, Backoff) {}

// TokenFetch implements Events.
func (NopEvents) TokenFetch(context.Context, TokenFetch) {}

// LimiterWait implements Events.
func (NopEvents) LimiterWait(context.Context, LimiterWait) {}

// BreakerChange implements Events.
func (NopEvents) BreakerChange(context.Context, BreakerChange) {}

// sinks are a plan's Events, combined: ev gets every event, obs the
// exchanges, inj the outgoing headers. Each is nil when nobody listens.
type sinks struct {
	ev  Events
	obs ExchangeObserver
	inj HeaderInjector
	// filters are the observers' ExchangeFilters; nil when one of them
	// wants every try.
	filters []ExchangeFilter
}

// observing reports whether an observer wants the exchange of a try run
// with ctx.
func (s *sinks) observing(ctx context.Context) bool {
	if s.obs == nil {
		return false
	}
	if s.filters == nil {
		return true
	}
	for _, f := range s.filters {
		if f.WantsExchanges(ctx) {
			return true
		}
	}
	return false
}

func newSinks(list []Events) sinks {
	var s sinks
	var obs teeObservers
	var inj teeInjectors
	everyTry := false
	for _, e := range list {
		if o, ok := e.(ExchangeObserver); ok {
			obs = append(obs, o)
			if f, ok := e.(ExchangeFilter); ok {
				s.filters = append(s.filters, f)
			} else {
				everyTry = true
			}
		}
		if i, ok := e.(HeaderInjector); ok {
			inj = append(inj, i)
		}
	}
	switch len(list) {
	case 0:
	case 1:
		s.ev = list[0]
	default:
		s.ev = tee(list)
	}
	if everyTry {
		s.filters = nil
	}
	switch len(obs) {
	case 0:
	case 1:
		s.obs = obs[0]
	default:
		s.obs = obs
	}
	switch len(inj) {
	case 0:
	case 1:
		s.inj = inj[0]
	default:
		s.inj = inj
	}
	return s
}

// tee sends every event to each of its Events, in order; a Start's context
// goes from one to the next.
type tee []Events

func (t tee) LeadStart(ctx context.Context, e LeadStart) context.Context {
	for _, x := range t {
		ctx = x.LeadStart(ctx, e)
	}
	return ctx
}

func (t tee) LeadEnd(ctx context.Context, e LeadEnd) {
	for _, x := range t {
		x.LeadEnd(ctx, e)
	}
}

func (t tee) StepStart(ctx context.Context, e StepStart) context.Context {
	for _, x := range t {
		ctx = x.StepStart(ctx, e)
	}
	return ctx
}

func (t tee) StepEnd(ctx context.Context, e StepEnd) {
	for _, x := range t {
		x.StepEnd(ctx, e)
	}
}

func (t tee) TryStart(ctx context.Context, e TryStart) context.Context {
	for _, x := range t {
		ctx = x.TryStart(ctx, e)
	}
	return ctx
}

func (t tee) TryEnd(ctx context.Context, e TryEnd) {
	for _, x := range t {
		x.TryEnd(ctx, e)
	}
}

func (t tee) Retry(ctx context.Context, e Retry) {
	for _, x := range t {
		x.Retry(ctx, e)
	}
}

func (t tee) Backoff(ctx context.Context, e Backoff) {
	for _, x := range t {
		x.Backoff(ctx, e)
	}
}

func (t tee) TokenFetch(ctx context.Context, e TokenFetch) {
	for _, x := range t {
		x.TokenFetch(ctx, e)
	}
}

func (t tee) LimiterWait(ctx context.Context, e LimiterWait) {
	for _, x := range t {
		x.LimiterWait(ctx, e)
	}
}

func (t tee) BreakerChange(ctx context.Context, e BreakerChange) {
	for _, x := range t {
		x.BreakerChange(ctx, e)
	}
}

type teeObservers []ExchangeObserver

func (t teeObservers) Exchange(ctx context.Context, ex *Exchange) {
	for _, x := range t {
		x.Exchange(ctx, ex)
	}
}

type teeInjectors []HeaderInjector

func (t teeInjectors) InjectHeaders(ctx context.Context, h http.Header) {
	for _, x := range t {
		x.InjectHeaders(ctx, h)
	}
}
