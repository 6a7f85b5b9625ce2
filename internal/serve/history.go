package serve

// The lead history's glue (package history): where the service opens it,
// records each lead it runs, and answers the routes that read it back.
// The routes' handlers live here; api.go only lists them.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/history"
	"github.com/plumbhq/plumb/internal/queue"
	"github.com/plumbhq/plumb/steps"
)

// HistoryFile is the lead history's file under the data directory.
const HistoryFile = "history.db"

// openHistory opens the lead history under DataDir (nil without one: a
// cluster member without --data keeps none, and says so).
func (s *Server) openHistory() error {
	s.sender = history.NewSender(s.cbPolicy(), nil)
	if s.cfg.DataDir == "" {
		s.log.Warn("no --data directory: this instance keeps no lead history (GET /v1/leads and /v1/batches answer 503)")
		return nil
	}
	log, err := s.historyLog()
	if err != nil {
		return err
	}
	cfg := history.Config{Path: filepath.Join(s.cfg.DataDir, HistoryFile),
		MaxAge: s.cfg.HistoryMaxAge, MaxBytes: s.cfg.HistoryMaxBytes, Logger: s.log.With("component", "history"),
		OnBatchDone: s.batchDone, Log: log}
	if log != nil { // GET /v1/stats counts the cluster's leads
		s.metrics.statsFromHistory, cfg.OnApplied = true, s.metrics.stats.addRecord
	}
	h, err := history.Open(cfg)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	s.hist = h
	s.metrics.reg.MustRegister(historyCollector{h})
	return nil
}

// HistoryStream is the stream (after the queue's name) a cluster's
// instances share their lead history through.
const HistoryStream = "history"

// historyLog is the cluster's history log (nil, nil without --nats): a
// stream that keeps every history write of every instance for the
// history's max age and up to its byte bound, which each instance applies
// to its own file.
func (s *Server) historyLog() (history.Log, error) {
	if len(s.cfg.NATS) == 0 {
		return nil, nil
	}
	q := s.q.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, subject, err := q.Stream(ctx, HistoryStream, jetstream.StreamConfig{
		Description: "plumb lead history: every instance's history writes, applied by every instance",
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardOld,
		MaxAge:      cmp.Or(s.cfg.HistoryMaxAge, history.DefaultMaxAge),
		MaxBytes:    cmp.Or(s.cfg.HistoryMaxBytes, history.DefaultMaxBytes),
	})
	if err != nil {
		return nil, fmt.Errorf("serve: the cluster's lead history: %w", err)
	}
	return history.NewNATSLog(q.JetStream(), st, subject+"ops"), nil
}

// closeHistory commits what is queued and closes the history.
func (s *Server) closeHistory() {
	if s.hist != nil {
		if err := s.hist.Close(); err != nil {
			s.log.Warn("closing the lead history", "err", err)
		}
	}
}

// requestID is the client's X-Request-Id when valid ("" otherwise).
func requestID(r *http.Request) string { return history.RequestID(r.Header.Get("X-Request-Id")) }

// leadRun is what the service knows of a lead it is about to run.
type leadRun struct {
	id, name, source, requestID string
	accepted                    time.Time
}

// startLead marks a lead started (its batch counts it running) and returns
// the context its run collects tries in.
func (s *Server) startLead(ctx context.Context, l leadRun) (context.Context, time.Time) {
	if s.hist == nil {
		return ctx, time.Now()
	}
	if l.source == history.SourceLeads {
		s.hist.Started(l.id)
	}
	var redact func(string) string
	keep := steps.HistoryExchangesNone
	if e := s.reg.lookup(l.name); e != nil {
		if r := e.current(); r != nil {
			redact = r.Redact
			keep = r.Plan().Model().History.Keeps()
		}
	}
	return history.WithTries(ctx, redact, keep), time.Now()
}

// finishLead records a finished lead. It never blocks or fails the lead:
// a full history drops the record (counted, logged).
func (s *Server) finishLead(ctx context.Context, l leadRun, started time.Time, res *engine.Result) {
	if s.hist == nil || res == nil {
		return
	}
	rec := history.NewRecord(ctx, history.Meta{ID: l.id, Integration: l.name, Source: l.source, RequestID: l.requestID,
		Accepted: l.accepted, Started: started, Finished: time.Now()}, res)
	if rec.Batch == "" && l.source == history.SourceLeads {
		rec.Batch, _ = s.hist.Pending(l.id) // before Add: the commit clears it
	}
	s.queueResultCallbacks(ctx, rec, res)
	s.hist.Add(rec)
}

// recordSync records one record of a sync.
func (s *Server) recordSync(name string, res *engine.Result) {
	if s.hist == nil || res == nil {
		return
	}
	end := time.Now()
	s.finishLead(context.Background(), leadRun{id: queue.NewID(), name: name, source: history.SourceSync},
		end.Add(-time.Duration(res.Duration)), res)
}

// beginBatch records a batch before its leads are published.
func (s *Server) beginBatch(b history.Batch, ids []string, reqID string) {
	if s.hist == nil {
		return
	}
	if err := s.hist.Begin(b, ids, reqID); err != nil {
		s.log.Warn("lead history: the batch is not recorded; its leads run anyway", "batch", b.ID, "err", err)
	}
}

// historyOr answers 503 when there is no history.
func (s *Server) historyOr(w http.ResponseWriter) bool {
	if s.hist == nil {
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "this instance keeps no lead history (it runs without --data)")
		return false
	}
	return true
}

func (s *Server) getBatch(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !queue.ValidID(id) {
		writeError(w, http.StatusBadRequest, CodeInvalidID, "batch ids are 1-128 of A-Z a-z 0-9 _ = -")
		return
	}
	if !s.historyOr(w) {
		return
	}
	b, ok, err := s.hist.Batch(id)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, err.Error())
		return
	}
	if !ok {
		writeError(w, http.StatusNotFound, CodeNotFound, "no batch "+id+" (never made here, or older than --history-max-age)")
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// leadQuery reads a query's parameters, answering 400 on a bad one.
func leadQuery(w http.ResponseWriter, r *http.Request) (history.Query, bool) {
	v := r.URL.Query()
	q := history.Query{Integration: v.Get("integration"), Batch: v.Get("batch"), Outcome: v.Get("outcome"),
		Class: v.Get("class"), Q: v.Get("q"), Cursor: v.Get("cursor")}
	bad := func(msg string) (history.Query, bool) {
		writeError(w, http.StatusBadRequest, CodeBadRequest, msg)
		return q, false
	}
	for _, p := range []struct{ name, val string }{{"integration", q.Integration}, {"batch", q.Batch}, {"outcome", q.Outcome}, {"class", q.Class}} {
		if len(p.val) > 128 {
			return bad(p.name + " is longer than 128 bytes")
		}
	}
	if len(q.Q) > history.MaxQ {
		return bad(fmt.Sprintf("q is longer than %d bytes", history.MaxQ))
	}
	if !steps.Outcomes.Valid(steps.OutcomeValue(q.Outcome)) {
		return bad("outcome must be " + steps.Outcomes.Hint())
	}
	if q.Class != "" && !slices.Contains(engine.Classes(), engine.Class(q.Class)) {
		return bad("class must be one of " + joinClasses(engine.Classes()))
	}
	for _, t := range []struct {
		name string
		to   *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if s := v.Get(t.name); s != "" {
			at, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return bad(t.name + " must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
			}
			*t.to = at
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > history.MaxLimit {
			return bad(fmt.Sprintf("limit must be 1..%d", history.MaxLimit))
		}
		q.Limit = n
	}
	return q, true
}

func joinClasses(cs []engine.Class) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = string(c)
	}
	return strings.Join(names, ", ")
}

func (s *Server) listLeads(w http.ResponseWriter, r *http.Request) {
	q, ok := leadQuery(w, r)
	if !ok || !s.historyOr(w) {
		return
	}
	p, err := s.hist.List(r.Context(), q)
	if errors.Is(err, history.ErrBadCursor) {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "cursor is not one this service handed out (use the next of the previous page)")
		return
	}
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) exportLeads(w http.ResponseWriter, r *http.Request) {
	q, ok := leadQuery(w, r)
	if !ok || !s.historyOr(w) {
		return
	}
	if _, err := s.hist.List(r.Context(), history.Query{Cursor: q.Cursor, Limit: 1}); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "cursor is not one this service handed out")
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	fl, _ := w.(http.Flusher)
	n := 0
	err := s.hist.Each(r.Context(), q, func(rec history.Record) error {
		n++
		if fl != nil && n%history.MaxLimit == 0 {
			fl.Flush()
		}
		return enc.Encode(rec)
	})
	if err != nil && r.Context().Err() == nil {
		s.log.Warn("exporting leads", "err", err, "written", n)
	}
}

// historyCollector exports the history's counters.
type historyCollector struct{ h *history.Store }

var (
	histWritten = prometheus.NewDesc("plumb_serve_history_records_total", "Lead records written to the history.", nil, nil)
	histDropped = prometheus.NewDesc("plumb_serve_history_dropped_total", "Lead records dropped (history queue full or store failing); the leads ran.", nil, nil)
	histCommits = prometheus.NewDesc("plumb_serve_history_commits_total", "History transactions (one fsync each).", nil, nil)
	histPruned  = prometheus.NewDesc("plumb_serve_history_pruned_total", "Lead records deleted by the retention policy.", nil, nil)
	histBytes   = prometheus.NewDesc("plumb_serve_history_bytes", "Bytes of keys and values the history holds.", nil, nil)
)

func (c historyCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{histWritten, histDropped, histCommits, histPruned, histBytes} {
		ch <- d
	}
}

func (c historyCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.h.Stats()
	ch <- prometheus.MustNewConstMetric(histWritten, prometheus.CounterValue, float64(st.Written))
	ch <- prometheus.MustNewConstMetric(histDropped, prometheus.CounterValue, float64(st.Dropped))
	ch <- prometheus.MustNewConstMetric(histCommits, prometheus.CounterValue, float64(st.Commits))
	ch <- prometheus.MustNewConstMetric(histPruned, prometheus.CounterValue, float64(st.Pruned))
	ch <- prometheus.MustNewConstMetric(histBytes, prometheus.GaugeValue, float64(st.Bytes))
}

// maxDeliver is the queue's deliveries per job.
func (s *Server) maxDeliver() int {
	if n := s.cfg.Queue.MaxDeliver; n > 0 {
		return n
	}
	return queue.DefaultMaxDeliver
}

// withdraw takes the leads a failed request did not store out of its batch.
func (s *Server) withdraw(batch string, out []Accepted, errs []error) {
	if s.hist == nil {
		return
	}
	var ids []string
	for i, err := range errs {
		if err != nil && out[i].ID != "" {
			ids = append(ids, out[i].ID)
		}
	}
	if len(ids) == 0 {
		return
	}
	if err := s.hist.Withdraw(batch, ids); err != nil {
		s.log.Warn("lead history: withdrawing unstored leads from their batch", "batch", batch, "err", err)
	}
}
