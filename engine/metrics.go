package engine

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// Metrics counts what runners do, as Prometheus metrics: leads and steps by
// outcome and class, HTTP tries by status class, retries by action,
// timeouts, auth refusals, OAuth2 token fetches, fallback links used,
// circuit breaker states, limiter waits, and latency histograms per lead
// and per step. Make one with NewMetrics, register it (it is a
// prometheus.Collector) and give it to Load with WithMetrics; several
// plans may share one. Labels are the integration's name and the step's
// name — never lead data — so cardinality stays that of the files.
type Metrics struct {
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
var latencyBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// NewMetrics makes the metrics, named plumb_*.
func NewMetrics() *Metrics {
	lp := []string{"integration"}
	sp := []string{"integration", "step"}
	return &Metrics{
		leads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "plumb_leads_total",
			Help: "Leads run, by outcome and failure class."}, append(lp, "outcome", "class")),
		leadTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "plumb_lead_duration_seconds",
			Help: "Time to run one lead's flow.", Buckets: latencyBuckets}, lp),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "plumb_step_results_total",
			Help: "Steps run, by outcome and failure class."}, append(sp, "outcome", "class")),
		stepTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "plumb_step_duration_seconds",
			Help: "Time of one step, all its tries, waits and fallbacks included.", Buckets: latencyBuckets}, sp),
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
			Help: "Time tries waited for a limits: slot.", Buckets: latencyBuckets}, sp),
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

// WithMetrics makes every runner of the plan count into m.
func WithMetrics(m *Metrics) Option { return func(o *options) { o.metrics = m } }

func (m *Metrics) lead(integration string, r *Result) {
	if m == nil {
		return
	}
	m.leads.WithLabelValues(integration, string(r.Outcome), string(r.Class)).Inc()
	m.leadTime.WithLabelValues(integration).Observe(time.Duration(r.Duration).Seconds())
}

func (m *Metrics) step(integration string, sr *StepResult) {
	if m == nil {
		return
	}
	m.steps.WithLabelValues(integration, sr.Name, string(sr.Outcome), string(sr.Class)).Inc()
	if sr.Outcome != Skip {
		m.stepTime.WithLabelValues(integration, sr.Name).Observe(time.Duration(sr.Duration).Seconds())
	}
	if sr.Fallback != "" {
		m.fallbacks.WithLabelValues(integration, sr.Name, sr.Fallback).Inc()
	}
}

func (m *Metrics) try(integration, step string, status int, v *verdict) {
	if m == nil {
		return
	}
	m.tries.WithLabelValues(integration, step, statusClass(status)).Inc()
	switch {
	case v.class == ClassTimeout:
		m.timeouts.WithLabelValues(integration, step).Inc()
	case v.class == ClassAuth:
		m.refusals.WithLabelValues(integration, step).Inc()
	}
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

func (m *Metrics) retry(integration, step, action string) {
	if m != nil {
		m.retries.WithLabelValues(integration, step, action).Inc()
	}
}

func (m *Metrics) tokenFetch(integration string, status int) {
	if m == nil {
		return
	}
	m.tokens.WithLabelValues(integration, statusClass(status)).Inc()
}

func (m *Metrics) breakerState(integration, step string, to gobreaker.State) {
	if m == nil {
		return
	}
	v := map[gobreaker.State]float64{gobreaker.StateClosed: 0, gobreaker.StateHalfOpen: 1, gobreaker.StateOpen: 2}[to]
	m.breaker.WithLabelValues(integration, step).Set(v)
	m.transitions.WithLabelValues(integration, step, to.String()).Inc()
}

func (m *Metrics) limiterWait(integration, step string, d time.Duration) {
	if m != nil {
		m.waits.WithLabelValues(integration, step).Observe(d.Seconds())
	}
}
