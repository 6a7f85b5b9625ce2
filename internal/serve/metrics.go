package serve

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/queue"
)

// metrics are the service's Prometheus series. Every name starts with
// plumb_; docs/service.md lists them.
type metrics struct {
	reg *prometheus.Registry

	leads      *prometheus.CounterVec   // integration, mode, outcome, class
	duration   *prometheus.HistogramVec // integration, mode
	running    *prometheus.GaugeVec     // integration
	accepted   *prometheus.CounterVec   // integration
	requests   *prometheus.CounterVec   // route, code
	authFail   prometheus.Counter
	loadErrors *prometheus.CounterVec // file
	up         *prometheus.GaugeVec   // integration, file

	// per step, from each lead's Result
	steps     *prometheus.CounterVec   // integration, step, outcome, class
	stepTime  *prometheus.HistogramVec // integration, step
	retries   *prometheus.CounterVec   // integration, step
	statuses  *prometheus.CounterVec   // integration, step, code (2xx…5xx)
	fallbacks *prometheus.CounterVec   // integration, step, link

	// engine counts per try: token fetches, timeouts, auth refusals,
	// breaker states, limiter waits (plumb_* without serve_)
	engine *engine.Metrics
}

// latencyBuckets span a fast partner (1 ms) to a flow deadline (minutes).
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}

func newMetrics(q func() *queue.Queue) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), engine: engine.NewMetrics()}
	m.reg.MustRegister(m.engine)
	m.leads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plumb_serve_leads_total",
		Help: "Leads that finished a flow, by integration, mode (sync: POST /run, async: the queue), outcome and error/failure class.",
	}, []string{"integration", "mode", "outcome", "class"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "plumb_serve_lead_duration_seconds",
		Help:    "Time a lead spent in its flow, by integration and mode.",
		Buckets: latencyBuckets,
	}, []string{"integration", "mode"})
	m.running = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "plumb_serve_leads_running",
		Help: "Leads running now, by integration.",
	}, []string{"integration"})
	m.accepted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plumb_serve_leads_accepted_total",
		Help: "Leads stored in the queue by POST /leads (duplicates not counted).",
	}, []string{"integration"})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plumb_serve_http_requests_total",
		Help: "API requests, by route pattern and status code.",
	}, []string{"route", "code"})
	m.authFail = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "plumb_serve_auth_failures_total",
		Help: "API requests refused for a missing or wrong bearer token.",
	})
	m.loadErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plumb_serve_load_errors_total",
		Help: "Loads (start or reload) of an integration file that failed.",
	}, []string{"file"})
	m.up = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "plumb_serve_integration_up",
		Help: "1 when the integration file's current version loaded, 0.5 when an older version runs because the file does not load, 0 when none runs.",
	}, []string{"integration", "file"})
	m.steps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plumb_serve_step_results_total",
		Help: "Steps that ran, by integration, step, outcome and class (timeout, auth, status, connection…).",
	}, []string{"integration", "step", "outcome", "class"})
	m.stepTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "plumb_serve_step_duration_seconds",
		Help:    "Time a step took, retries and fallbacks included.",
		Buckets: latencyBuckets,
	}, []string{"integration", "step"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plumb_serve_step_retries_total",
		Help: "Tries of a step beyond its first.",
	}, []string{"integration", "step"})
	m.statuses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plumb_serve_step_responses_total",
		Help: "HTTP status class (2xx, 3xx, 4xx, 5xx) of each step's final answer.",
	}, []string{"integration", "step", "code"})
	m.fallbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plumb_serve_step_fallbacks_total",
		Help: "Steps answered by a fallback link (request, cache, defaults, skip).",
	}, []string{"integration", "step", "link"})
	m.reg.MustRegister(m.steps, m.stepTime, m.retries, m.statuses, m.fallbacks)
	m.reg.MustRegister(m.leads, m.duration, m.running, m.accepted, m.requests, m.authFail, m.loadErrors, m.up,
		&queueCollector{q: q},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observe counts one finished lead.
func (m *metrics) observe(integration, mode string, res *engine.Result) {
	m.leads.WithLabelValues(integration, mode, string(res.Outcome), string(res.Class)).Inc()
	m.duration.WithLabelValues(integration, mode).Observe(time.Duration(res.Duration).Seconds())
	for i := range res.Steps {
		st := &res.Steps[i]
		m.steps.WithLabelValues(integration, st.Name, string(st.Outcome), string(st.Class)).Inc()
		if st.Attempts == 0 && st.Outcome == engine.Skip {
			continue // not run: no time, no answer
		}
		m.stepTime.WithLabelValues(integration, st.Name).Observe(time.Duration(st.Duration).Seconds())
		if st.Attempts > 1 {
			m.retries.WithLabelValues(integration, st.Name).Add(float64(st.Attempts - 1))
		}
		if st.Status >= 100 && st.Status < 600 {
			m.statuses.WithLabelValues(integration, st.Name, strconv.Itoa(st.Status/100)+"xx").Inc()
		}
		if st.Fallback != "" {
			m.fallbacks.WithLabelValues(integration, st.Name, st.Fallback).Inc()
		}
	}
}

func (s *Server) updateHealthMetrics() {
	s.metrics.up.Reset()
	for _, e := range s.reg.list() {
		in := e.info()
		v := 0.0
		switch in.Health {
		case "ok":
			v = 1
		case "stale":
			v = 0.5
		}
		s.metrics.up.WithLabelValues(in.Name, in.File).Set(v)
	}
}

// queueCollector reads the queue's counters at scrape time.
type queueCollector struct{ q func() *queue.Queue }

var (
	descDepth    = prometheus.NewDesc("plumb_queue_depth", "Leads in the queue: waiting, running or waiting for a retry.", nil, nil)
	descPending  = prometheus.NewDesc("plumb_queue_pending", "Leads in the queue not yet delivered to a worker.", nil, nil)
	descInFlight = prometheus.NewDesc("plumb_queue_in_flight", "Leads delivered to a worker and not yet acknowledged.", nil, nil)
	descRedeliv  = prometheus.NewDesc("plumb_queue_redelivered", "Leads in flight for the second or a later time.", nil, nil)
	descDead     = prometheus.NewDesc("plumb_queue_dead", "Dead letters (GET /v1/dead).", nil, nil)
	descQueueUp  = prometheus.NewDesc("plumb_queue_up", "1 when the queue answered the scrape's stats request.", nil, nil)
)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDepth, descPending, descInFlight, descRedeliv, descDead, descQueueUp} {
		ch <- d
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	q := c.q()
	if q == nil {
		ch <- prometheus.MustNewConstMetric(descQueueUp, prometheus.GaugeValue, 0)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := q.Stats(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descQueueUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descQueueUp, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(descDepth, prometheus.GaugeValue, float64(st.Depth))
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(st.Pending))
	ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(st.InFlight))
	ch <- prometheus.MustNewConstMetric(descRedeliv, prometheus.GaugeValue, float64(st.Redelivered))
	ch <- prometheus.MustNewConstMetric(descDead, prometheus.GaugeValue, float64(st.Dead))
}
