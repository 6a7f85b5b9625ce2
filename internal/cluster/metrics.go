package cluster

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	descWrites = prometheus.NewDesc("plumb_cluster_budget_writes_total",
		"Successful compare-and-set writes of a shared rate budget (each reserves turns for one or more callers).", []string{"budget"}, nil)
	descConflicts = prometheus.NewDesc("plumb_cluster_budget_conflicts_total",
		"Writes of a shared rate budget that lost a compare-and-set to another instance (each costs a read and a write).", []string{"budget"}, nil)
	descErrors = prometheus.NewDesc("plumb_cluster_budget_errors_total",
		"KV calls of a shared rate budget that failed (NATS unavailable); they are retried.", []string{"budget"}, nil)
	descMissed = prometheus.NewDesc("plumb_cluster_budget_missed_turns_total",
		"Turns given up because the caller woke more than 10ms after them (a starved CPU).", []string{"budget"}, nil)
)

// Collector exports the shared rate budgets' KV traffic as Prometheus
// counters (plumb_cluster_budget_*), by budget name.
func (c *Cluster) Collector() prometheus.Collector { return collector{c} }

type collector struct{ c *Cluster }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descWrites
	ch <- descConflicts
	ch <- descErrors
	ch <- descMissed
}

func (k collector) Collect(ch chan<- prometheus.Metric) {
	k.c.lims.mu.Lock()
	names := make([]string, 0, len(k.c.lims.byName))
	for n := range k.c.lims.byName {
		names = append(names, n)
	}
	k.c.lims.mu.Unlock()
	sort.Strings(names)
	for _, n := range names {
		st := k.c.Limiter(n).Stats()
		ch <- prometheus.MustNewConstMetric(descWrites, prometheus.CounterValue, float64(st.Reservations), n)
		ch <- prometheus.MustNewConstMetric(descConflicts, prometheus.CounterValue, float64(st.Conflicts), n)
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(st.Errors), n)
		ch <- prometheus.MustNewConstMetric(descMissed, prometheus.CounterValue, float64(st.Missed), n)
	}
}
