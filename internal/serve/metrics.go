package serve

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/engine/prommetrics"
	"github.com/plumbhq/plumb/internal/queue"
)

// metrics are the service's Prometheus series. Every name starts with
// plumb_; docs/service.md lists them.
type metrics struct {
	reg *prometheus.Registry

	leads    *prometheus.CounterVec   // integration, mode, outcome, class
	duration *prometheus.HistogramVec // integration, mode
	running  *prometheus.GaugeVec     // integration
	accepted *prometheus.CounterVec   // integration
	refused  *prometheus.CounterVec   // integration, reason
	requests *prometheus.CounterVec   // route, code
	authFail prometheus.Counter
	// requests refused with 429 after too many wrong tokens
	authThrottled prometheus.Counter
	loadErrors    *prometheus.CounterVec // file
	compiles      prometheus.Counter     // files parsed and compiled (a reload compiles only changed files)
	up            *prometheus.GaugeVec   // integration, file

	// engine counts per lead, step and try: step results and times,
	// partner statuses, retries, fallbacks, token fetches, timeouts, auth
	// refusals, breaker states, limiter waits (plumb_* without serve_)
	engine *prommetrics.Metrics

	// stats is the bounded per-integration time series of GET /v1/stats.
	stats *stats
	// statsFromHistory: in a cluster the stats count the cluster's
	// history (every instance's leads), not what observe sees here.
	statsFromHistory bool
}

// latencyBuckets span a fast partner (1 ms) to a flow deadline (minutes).
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}

func newMetrics(q func() *queue.Queue) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), engine: prommetrics.New(), stats: newStats(nil)}
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
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plumb_serve_leads_refused_total",
		Help: "Leads POST /leads refused before storing them, by integration and reason (queue_behind: 429, the queue past --max-queue-depth or --max-queue-age).",
	}, []string{"integration", "reason"})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plumb_serve_http_requests_total",
		Help: "API requests, by route pattern and status code.",
	}, []string{"route", "code"})
	m.authFail = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "plumb_serve_auth_failures_total",
		Help: "API requests refused for a missing or wrong bearer token.",
	})
	m.authThrottled = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "plumb_serve_auth_throttled_total",
		Help: "Requests refused (429) because their client presented too many wrong bearer tokens lately.",
	})
	m.loadErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plumb_serve_load_errors_total",
		Help: "Loads (start or reload) of an integration file that failed.",
	}, []string{"file"})
	m.compiles = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "plumb_serve_integration_compiles_total",
		Help: "Integration files parsed and compiled, at start and by reloads (a reload compiles only the files whose bytes or settings changed).",
	})
	m.up = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "plumb_serve_integration_up",
		Help: "1 when the integration file's current version loaded, 0.5 when an older version runs because the file does not load, 0 when none runs.",
	}, []string{"integration", "file"})
	m.reg.MustRegister(m.leads, m.duration, m.running, m.accepted, m.refused, m.requests, m.authFail, m.authThrottled, m.loadErrors, m.compiles, m.up,
		&queueCollector{q: q},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observe counts one finished lead.
func (m *metrics) observe(integration, mode string, res *engine.Result) {
	m.leads.WithLabelValues(integration, mode, string(res.Outcome), string(res.Class)).Inc()
	m.duration.WithLabelValues(integration, mode).Observe(time.Duration(res.Duration).Seconds())
	if !m.statsFromHistory {
		m.stats.add(integration, res)
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
	descDepth    = prometheus.NewDesc("plumb_queue_depth", "Leads in the queue not finished: waiting, running or waiting for a retry.", nil, nil)
	descAge      = prometheus.NewDesc("plumb_queue_oldest_pending_age_seconds", "How long the oldest lead not yet started has waited (0 when none waits).", nil, nil)
	descPending  = prometheus.NewDesc("plumb_queue_pending", "Leads in the queue not yet delivered to a worker.", nil, nil)
	descInFlight = prometheus.NewDesc("plumb_queue_in_flight", "Leads delivered to a worker and not yet acknowledged.", nil, nil)
	descRedeliv  = prometheus.NewDesc("plumb_queue_redelivered", "Leads in flight for the second or a later time.", nil, nil)
	descDead     = prometheus.NewDesc("plumb_queue_dead", "Dead letters (GET /v1/dead).", nil, nil)
	descQueueUp  = prometheus.NewDesc("plumb_queue_up", "1 when the queue answered the scrape's stats request.", nil, nil)
)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDepth, descAge, descPending, descInFlight, descRedeliv, descDead, descQueueUp} {
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
	ch <- prometheus.MustNewConstMetric(descAge, prometheus.GaugeValue, pendingAge(st, time.Now()))
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(st.Pending))
	ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(st.InFlight))
	ch <- prometheus.MustNewConstMetric(descRedeliv, prometheus.GaugeValue, float64(st.Redelivered))
	ch <- prometheus.MustNewConstMetric(descDead, prometheus.GaugeValue, float64(st.Dead))
}
