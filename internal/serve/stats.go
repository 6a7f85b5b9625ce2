package serve

// Per-integration health for the operations console: a bounded in-memory
// time series of finished leads (GET /v1/stats). Every integration has a
// fixed ring of 10-second buckets covering the last hour and of 5-minute
// buckets covering the last day; a bucket holds counts by outcome and
// class and a latency histogram. Memory is fixed per integration and the
// number of integrations tracked is capped (the least recently fed is
// dropped), so no input grows it.

import (
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/history"
)

const (
	fineStep     = 10 * time.Second
	fineBuckets  = 360 // 1 h
	coarseStep   = 5 * time.Minute
	coarseBucket = 288 // 24 h
	// maxStatsSeries caps the integrations tracked.
	maxStatsSeries = 256
	// latency histogram: bin i holds durations up to latBase·latGrowth^i.
	latBins   = 40
	latBase   = float64(time.Millisecond)
	latGrowth = 1.5
)

// statClasses are the classes counted by name; any other lands in "other".
var statClasses = [...]engine.Class{engine.ClassTimeout, engine.ClassConnection, engine.ClassTLS, engine.ClassStatus,
	engine.ClassAuth, engine.ClassRejected, engine.ClassCapture, engine.ClassTooLarge, engine.ClassTemplate,
	engine.ClassCanceled, engine.ClassInput, engine.ClassInternal, engine.ClassBreaker, engine.ClassLimit, "other"}

// statBucket counts the leads that finished within one step.
type statBucket struct {
	start                         int64 // unix seconds of the step's start; 0 when unused
	leads, success, failure, errs uint32
	skip                          uint32
	classes                       [len(statClasses)]uint32
	lat                           [latBins]uint32
}

func (b *statBucket) add(res *engine.Result, bin int) {
	b.leads++
	switch res.Outcome {
	case engine.Success:
		b.success++
	case engine.Failure:
		b.failure++
	case engine.Error:
		b.errs++
	case engine.Skip:
		b.skip++
	}
	if res.Class != "" {
		i := slices.Index(statClasses[:len(statClasses)-1], res.Class)
		if i < 0 {
			i = len(statClasses) - 1
		}
		b.classes[i]++
	}
	b.lat[bin]++
}

// statSeries is one integration's rings.
type statSeries struct {
	fine   [fineBuckets]statBucket
	coarse [coarseBucket]statBucket
	last   int64 // unix nanos of the last add (for eviction)
}

// slot returns ring's bucket for t, reset if it held an older step; nil
// when it holds a newer one (t is older than the ring).
func slot(ring []statBucket, step time.Duration, t time.Time) *statBucket {
	s := int64(step / time.Second)
	start := t.Unix() / s * s
	b := &ring[(start/s)%int64(len(ring))]
	switch {
	case b.start > start:
		return nil
	case b.start != start:
		*b = statBucket{start: start}
	}
	return b
}

// stats holds the series of every integration.
type stats struct {
	now func() time.Time
	max int

	mu sync.Mutex
	by map[string]*statSeries
}

func newStats(now func() time.Time) *stats {
	if now == nil {
		now = time.Now
	}
	return &stats{now: now, max: maxStatsSeries, by: map[string]*statSeries{}}
}

// latBin is the histogram bin of a duration.
func latBin(d time.Duration) int {
	if d <= time.Duration(latBase) {
		return 0
	}
	i := int(math.Ceil(math.Log(float64(d)/latBase) / math.Log(latGrowth)))
	return min(max(i, 0), latBins-1)
}

// add records one finished lead of integration, now.
func (st *stats) add(integration string, res *engine.Result) {
	if st == nil || res == nil {
		return
	}
	st.addAt(integration, res, st.now())
}

// addRecord records a lead of the cluster's history (every instance's),
// at the time it finished.
func (st *stats) addRecord(rec history.Record) {
	if st == nil {
		return
	}
	st.addAt(rec.Integration, &engine.Result{Outcome: engine.Outcome(rec.Outcome), Class: engine.Class(rec.Class),
		Duration: rec.DurationMS}, rec.Finished)
}

// addAt records a lead that finished at t. A lead from the future
// (another instance's clock ahead by more than a step) is not counted, nor
// one older than what its bucket holds (slot).
func (st *stats) addAt(integration string, res *engine.Result, t time.Time) {
	if t.After(st.now().Add(fineStep)) {
		return
	}
	bin := latBin(time.Duration(res.Duration))
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.by[integration]
	if s == nil {
		if len(st.by) >= st.max {
			st.evict()
		}
		s = &statSeries{}
		st.by[integration] = s
	}
	s.last = max(s.last, t.UnixNano())
	if b := slot(s.fine[:], fineStep, t); b != nil {
		b.add(res, bin)
	}
	if b := slot(s.coarse[:], coarseStep, t); b != nil {
		b.add(res, bin)
	}
}

// evict drops the series fed least recently.
func (st *stats) evict() {
	var oldest string
	var at int64 = math.MaxInt64
	for name, s := range st.by {
		if s.last < at || (s.last == at && name < oldest) {
			oldest, at = name, s.last
		}
	}
	delete(st.by, oldest)
}

// StatPoint is one step of a window: counts and latency percentiles.
type StatPoint struct {
	// T is the step's start (unix seconds).
	T       int64 `json:"t"`
	Leads   int   `json:"leads"`
	Success int   `json:"success"`
	Failure int   `json:"failure"`
	Error   int   `json:"error"`
	Skip    int   `json:"skip"`
	// Classes counts failures and errors by class (only classes seen).
	Classes map[string]int `json:"classes,omitempty"`
	// P50, P95 and P99 are latency percentiles in milliseconds (upper
	// bounds of histogram bins, within 50%); absent without leads.
	P50 *float64 `json:"p50_ms,omitempty"`
	P95 *float64 `json:"p95_ms,omitempty"`
	P99 *float64 `json:"p99_ms,omitempty"`
}

// StatSummary is one integration's window.
type StatSummary struct {
	Integration string `json:"integration"`
	// Total sums the window; LeadsPerSecond and SuccessRate are over it.
	Total          StatPoint   `json:"total"`
	LeadsPerSecond float64     `json:"leads_per_s"`
	SuccessRate    *float64    `json:"success_rate,omitempty"`
	Points         []StatPoint `json:"points"`
}

// StatsAnswer is the answer of GET /v1/stats.
type StatsAnswer struct {
	Window       string        `json:"window"`
	StepSeconds  int           `json:"step_seconds"`
	Integrations []StatSummary `json:"integrations"`
}

// point turns buckets into a point.
func point(t int64, bs ...*statBucket) StatPoint {
	p := StatPoint{T: t}
	var lat [latBins]uint32
	var cls [len(statClasses)]uint32
	for _, b := range bs {
		p.Leads += int(b.leads)
		p.Success += int(b.success)
		p.Failure += int(b.failure)
		p.Error += int(b.errs)
		p.Skip += int(b.skip)
		for i := range lat {
			lat[i] += b.lat[i]
		}
		for i := range cls {
			cls[i] += b.classes[i]
		}
	}
	for i, n := range cls {
		if n > 0 {
			if p.Classes == nil {
				p.Classes = map[string]int{}
			}
			p.Classes[string(statClasses[i])] = int(n)
		}
	}
	if p.Leads > 0 {
		p.P50, p.P95, p.P99 = percentile(&lat, p.Leads, .50), percentile(&lat, p.Leads, .95), percentile(&lat, p.Leads, .99)
	}
	return p
}

// percentile is the upper bound (ms) of the bin holding the q-quantile.
func percentile(lat *[latBins]uint32, n int, q float64) *float64 {
	want := int(math.Ceil(q * float64(n)))
	seen := 0
	for i, c := range lat {
		seen += int(c)
		if seen >= want {
			ms := math.Round(latBase*math.Pow(latGrowth, float64(i))/float64(time.Millisecond)*10) / 10
			return &ms
		}
	}
	return nil
}

// window answers the series of integration ("" for all) over 1h or 24h.
func (st *stats) window(integration, window string) StatsAnswer {
	step, n := fineStep, fineBuckets
	if window == "24h" {
		step, n = coarseStep, coarseBucket
	}
	ans := StatsAnswer{Window: window, StepSeconds: int(step / time.Second), Integrations: []StatSummary{}}
	s := int64(step / time.Second)
	end := st.now().Unix() / s * s
	st.mu.Lock()
	defer st.mu.Unlock()
	names := make([]string, 0, len(st.by))
	for name := range st.by {
		if integration == "" || name == integration {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		ser := st.by[name]
		ring := ser.fine[:]
		if step == coarseStep {
			ring = ser.coarse[:]
		}
		sum := StatSummary{Integration: name, Points: make([]StatPoint, 0, n)}
		var all []*statBucket
		for i := int64(n - 1); i >= 0; i-- {
			start := end - i*s
			b := &ring[(start/s)%int64(n)]
			if b.start != start {
				sum.Points = append(sum.Points, StatPoint{T: start})
				continue
			}
			all = append(all, b)
			sum.Points = append(sum.Points, point(start, b))
		}
		sum.Total = point(end-int64(n-1)*s, all...)
		sum.LeadsPerSecond = float64(sum.Total.Leads) / float64(int64(n)*s)
		if sum.Total.Leads > 0 {
			r := float64(sum.Total.Success) / float64(sum.Total.Leads)
			sum.SuccessRate = &r
		}
		ans.Integrations = append(ans.Integrations, sum)
	}
	return ans
}

// size counts the buckets held: fixed per tracked integration.
func (st *stats) size() (series, buckets int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, s := range st.by {
		buckets += len(s.fine) + len(s.coarse)
	}
	return len(st.by), buckets
}

// getStats answers GET /v1/stats?integration=&window=1h|24h.
func (s *Server) getStats(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	window := q.Get("window")
	switch window {
	case "":
		window = "1h"
	case "1h", "24h":
	default:
		writeError(w, http.StatusBadRequest, CodeBadRequest, "window must be 1h or 24h")
		return
	}
	writeJSON(w, http.StatusOK, s.metrics.stats.window(q.Get("integration"), window))
}
