package serve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/plumbhq/plumb/internal/queue"
)

// Error codes of the faults docs/service.md#faults describes.
const (
	// CodeStorage: the queue's storage is full or failing; nothing was
	// stored (503, with Retry-After).
	CodeStorage = "storage_unavailable"
	// CodeIdemReused: an Idempotency-Key already used with another body
	// (422); nothing was stored.
	CodeIdemReused = "idempotency_key_reused"
)

// storageRetryAfter is the Retry-After of a 503 for storage trouble, in
// seconds: the queue checks every second whether it has recovered.
const storageRetryAfter = "5"

// writeStorageError answers 503 storage_unavailable, listing the leads
// stored before the trouble began (if any).
func writeStorageError(w http.ResponseWriter, err error, stored []Accepted, total int) {
	w.Header().Set("Retry-After", storageRetryAfter)
	msg := fmt.Sprintf("the queue cannot store leads now: %v (send them again later", err)
	if len(stored) > 0 {
		msg += fmt.Sprintf("; %d of %d were stored before, listed under accepted", len(stored), total)
	}
	writeJSON(w, http.StatusServiceUnavailable, ErrorBody{Error: ErrorDetail{Code: CodeStorage, Accepted: stored, Message: msg + ")"}})
}

// idemStore keeps, per integration and Idempotency-Key, a digest of the
// leads of the first request that used the key, as long as results are
// kept: a later request with the key and other leads is refused instead of
// being answered with the first request's ids.
type idemStore struct {
	mu sync.Mutex
	kv jetstream.KeyValue
}

// errIdemReused: the key was used with another body.
var errIdemReused = errors.New("this Idempotency-Key was already used with a different body; use a new key for new leads")

// idemDigest is the digest of a request's leads: each decoded and encoded
// again (keys sorted, numbers as sent), so that the same leads sent with
// other spacing or key order match.
func idemDigest(leads []map[string]any) (string, error) {
	h := sha256.New()
	for _, l := range leads {
		b, err := json.Marshal(l)
		if err != nil {
			return "", err
		}
		h.Write(b)
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkIdem binds key to the leads' digest and to batch, the request's
// batch, on its first use, and checks the digest on every later one:
// errIdemReused when the leads differ. It returns the batch bound with the
// key first ("" for a binding older than batches), so a request sent again
// whole is answered with its first batch.
func (s *Server) checkIdem(ctx context.Context, q *queue.Queue, name, key string, leads []map[string]any, batch string) (string, error) {
	digest, err := idemDigest(leads)
	if err != nil {
		return "", err
	}
	kv, err := s.idem.bucket(ctx, q, s.cfg.ResultTTL)
	if err != nil {
		return "", err
	}
	k := idemID(name, key, -1)
	if _, err := kv.Create(ctx, k, []byte(digest+" "+batch)); err == nil {
		return batch, nil
	} else if !errors.Is(err, jetstream.ErrKeyExists) {
		return "", err
	}
	e, err := kv.Get(ctx, k)
	if err != nil {
		return "", err
	}
	got, first, _ := strings.Cut(string(e.Value()), " ")
	if got != digest {
		return "", errIdemReused
	}
	return first, nil
}

func (i *idemStore) bucket(ctx context.Context, q *queue.Queue, ttl time.Duration) (jetstream.KeyValue, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.kv != nil {
		return i.kv, nil
	}
	if ttl <= 0 {
		ttl = queue.DefaultResultTTL
	}
	kv, err := q.KV(ctx, "idempotency", ttl)
	if err != nil {
		return nil, err
	}
	i.kv = kv
	return kv, nil
}

// queueFaults is the faults part of GET /v1/queue.
func queueFaults(f queue.Faults) map[string]any {
	storage := "ok"
	if f.Storage != nil {
		storage = f.Storage.Error()
	}
	out := map[string]any{"storage": storage, "results_held": f.Held}
	if f.Lost.Count > 0 || f.Lost.Unverified > 0 {
		out["lost"] = map[string]any{"count": f.Lost.Count, "leads": f.Lost.IDs, "unnamed": f.Lost.Count - len(f.Lost.IDs),
			"unverified": f.Lost.Unverified, "detected": f.Lost.Detected}
	}
	return out
}

// faultCollector reads the queue's fault counters (queue.Faults) at scrape
// time; they cost no round trip, so they answer while the queue's storage
// does not.
type faultCollector struct{ q func() *queue.Queue }

var (
	descStorageOK  = prometheus.NewDesc("plumb_queue_storage_ok", "1 while the queue takes new leads; 0 while its storage is full or failing (POST /leads answers 503 storage_unavailable).", nil, nil)
	descTroubles   = prometheus.NewDesc("plumb_queue_storage_troubles_total", "Times a write found the queue's storage full or failing.", nil, nil)
	descRestarts   = prometheus.NewDesc("plumb_queue_storage_restarts_total", "Restarts of the embedded NATS server after its store failed a write (a full disk), once space returned.", nil, nil)
	descRefused    = prometheus.NewDesc("plumb_queue_leads_refused_total", "Leads refused for storage trouble (503 storage_unavailable).", nil, nil)
	descResultFail = prometheus.NewDesc("plumb_queue_result_write_failures_total", "Writes of a lead's result that failed and were retried; the lead did not run again.", nil, nil)
	descDeadFail   = prometheus.NewDesc("plumb_queue_dead_letter_write_failures_total", "Writes of a dead letter that failed and were retried.", nil, nil)
	descHeld       = prometheus.NewDesc("plumb_queue_results_held", "Finished leads whose result waits in memory for the storage to take it.", nil, nil)
	descUnstored   = prometheus.NewDesc("plumb_queue_results_unstored_total", "Finished leads whose result could not be stored before a shutdown; they run again at the next start.", nil, nil)
	descLost       = prometheus.NewDesc("plumb_queue_lost_leads", "Accepted leads found missing from a damaged jobs stream at start (GET /v1/queue names them).", nil, nil)
)

func (c *faultCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStorageOK, descTroubles, descRestarts, descRefused, descResultFail, descDeadFail, descHeld, descUnstored, descLost} {
		ch <- d
	}
}

func (c *faultCollector) Collect(ch chan<- prometheus.Metric) {
	q := c.q()
	if q == nil {
		return
	}
	f := q.Faults()
	ok := 1.0
	if f.Storage != nil {
		ok = 0
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(descStorageOK, ok)
	counter(descTroubles, f.Troubles)
	counter(descRestarts, f.Restarts)
	counter(descRefused, f.Refused)
	counter(descResultFail, f.ResultRetries)
	counter(descDeadFail, f.DeadRetries)
	gauge(descHeld, float64(f.Held))
	counter(descUnstored, f.Unstored)
	gauge(descLost, float64(f.Lost.Count))
}
