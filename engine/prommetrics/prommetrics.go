// Package prommetrics counts what a plan's runners do as Prometheus
// metrics, named plumb_* (docs/service.md lists them; the alert rules in
// deploy/ use them). It is an adapter of engine.Events, public because
// embedders scrape it, and its own package so that a program that does not
// use Prometheus does not link it:
//
//	m := prommetrics.New()
//	registry.MustRegister(m)
//	plan, err := engine.Load("integration.yaml", engine.WithEvents(m))
package prommetrics

import (
	"context"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/plumbhq/plumb/engine"
)

// Metrics counts what runners do: leads and steps by outcome and class,
// HTTP tries by status class, retries by action, timeouts, auth refusals,
// OAuth2 token fetches, fallback links used, circuit breaker states,
// limiter waits, and latency histograms per lead and per step. Make one
// with New, register it (it is a prometheus.Collector) and give it to
// engine.Load with engine.WithEvents; several plans may share one. Labels
// are the integration's name and the step's name — never lead data — so
// cardinality stays that of the files.
type Metrics struct {
	engine.NopEvents
	leads       *prometheus.CounterVec
	leadTime    *prometheus.HistogramVec
	steps       *prometheus.CounterVec
	stepTime    *prometheus.HistogramVec
	tries       *prometheus.CounterVec
	retries     *prometheus.CounterVec
	timeouts    *prometheus.CounterVec
	refusals    *prometheus.CounterVec
	tokens      *prometheus.CounterVec
	fallbacks   *prometheus.CounterVec
	breaker     *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	waits       *prometheus.HistogramVec
}

// latencyBuckets suit partner APIs: 5 ms to 30 s.
func latencyBuckets() []float64 {
	return []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
}

// New makes the metrics, named plumb_*.
func New() *Metrics {
	lp := []string{"integration"}
	sp := []string{"integration", "step"}
	return &Metrics{
		leads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "plumb_leads_total",
			Help: "Leads run, by outcome and failure class."}, append(lp, "outcome", "class")),
		leadTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "plumb_lead_duration_seconds",
			Help: "Time to run one lead's flow.", Buckets: latencyBuckets()}, lp),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "plumb_step_results_total",
			Help: "Steps run, by outcome and failure class."}, append(sp, "outcome", "class")),
		stepTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "plumb_step_duration_seconds",
			Help: "Time of one step, all its tries, waits and fallbacks included.", Buckets: latencyBuckets()}, sp),
		tries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "plumb_http_requests_total",
			Help: "HTTP tries sent to partners, by status class (2xx…5xx) or error (no answer)."}, append(sp, "code")),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "plumb_retries_total",
			Help: "Tries that matched a retry rule, by its action."}, append(sp, "action")),
		timeouts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "plumb_timeouts_total",
			Help: "Tries that timed out."}, sp),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "plumb_auth_refusals_total",
			Help: "Tries refused with 401 or 407, or that could not be signed."}, sp),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "plumb_token_fetches_total",
			Help: "Requests to OAuth2 token endpoints, by status class."}, append(lp, "code")),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "plumb_fallbacks_total",
			Help: "Steps answered by a fallback link."}, append(sp, "link")),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "plumb_breaker_state",
			Help: "Circuit breaker state: 0 closed, 1 half-open, 2 open."}, sp),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "plumb_breaker_transitions_total",
			Help: "Circuit breaker state changes, by the state entered."}, append(sp, "state")),
		waits: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "plumb_limiter_wait_seconds",
			Help: "Time tries waited for a limits: slot.", Buckets: latencyBuckets()}, sp),
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.leads, m.leadTime, m.steps, m.stepTime, m.tries, m.retries, m.timeouts,
		m.refusals, m.tokens, m.fallbacks, m.breaker, m.transitions, m.waits}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

// LeadEnd counts the lead by outcome and class, and its duration.
func (m *Metrics) LeadEnd(_ context.Context, e engine.LeadEnd) {
	m.leads.WithLabelValues(e.Integration, string(e.Outcome), string(e.Class)).Inc()
	m.leadTime.WithLabelValues(e.Integration).Observe(e.Duration.Seconds())
}

// StepEnd counts the step by outcome and class, its duration (unless it
// was skipped) and the fallback link that answered it.
func (m *Metrics) StepEnd(_ context.Context, e engine.StepEnd) {
	m.steps.WithLabelValues(e.Integration, e.Step, string(e.Outcome), string(e.Class)).Inc()
	if e.Outcome != engine.Skip {
		m.stepTime.WithLabelValues(e.Integration, e.Step).Observe(e.Duration.Seconds())
	}
	if e.Fallback != "" {
		m.fallbacks.WithLabelValues(e.Integration, e.Step, e.Fallback).Inc()
	}
}

// TryEnd counts a try of the step's own request (a fallback link's tries
// are counted by plumb_fallbacks_total when one answers) by status class,
// and timeouts and auth refusals.
func (m *Metrics) TryEnd(_ context.Context, e engine.TryEnd) {
	if e.Fallback {
		return
	}
	m.tries.WithLabelValues(e.Integration, e.Step, statusClass(e.Status)).Inc()
	switch e.Class {
	case engine.ClassTimeout:
		m.timeouts.WithLabelValues(e.Integration, e.Step).Inc()
	case engine.ClassAuth:
		m.refusals.WithLabelValues(e.Integration, e.Step).Inc()
	}
}

// Retry counts a rule matched, by its action.
func (m *Metrics) Retry(_ context.Context, e engine.Retry) {
	m.retries.WithLabelValues(e.Integration, e.Step, e.Action).Inc()
}

// TokenFetch counts a token fetch by status class.
func (m *Metrics) TokenFetch(_ context.Context, e engine.TokenFetch) {
	m.tokens.WithLabelValues(e.Integration, statusClass(e.Status)).Inc()
}

// LimiterWait observes the wait.
func (m *Metrics) LimiterWait(_ context.Context, e engine.LimiterWait) {
	m.waits.WithLabelValues(e.Integration, e.Step).Observe(e.Wait.Seconds())
}

// BreakerChange sets the breaker's gauge and counts the transition.
func (m *Metrics) BreakerChange(_ context.Context, e engine.BreakerChange) {
	m.breaker.WithLabelValues(e.Integration, e.Step).Set(float64(e.To))
	m.transitions.WithLabelValues(e.Integration, e.Step, e.To.String()).Inc()
}

// statusClasses are the code labels of the usual statuses, so a try does
// not build its label.
var statusClasses = [...]string{"error", "1xx", "2xx", "3xx", "4xx", "5xx"}

// statusClass is the code label of a status: 2xx…5xx, or error for no
// answer.
func statusClass(status int) string {
	switch {
	case status <= 0:
		return "error"
	case status >= 100 && status < 600:
		return statusClasses[status/100]
	}
	return strconv.Itoa(status/100) + "xx"
}
