package serve

// The log of recent webhook deliveries (GET /v1/hooks/deliveries): a
// bounded ring, newest first, of what each delivery was — verified and
// stored, a duplicate, or refused and why. Nothing of a delivery's secrets
// is kept: no body, and of the headers only a few harmless ones (never a
// signature, an authorization or a cookie).

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// maxDeliveries bounds the ring.
const maxDeliveries = 500

// deliveryHeaders are the only request headers a logged delivery keeps.
var deliveryHeaders = []string{"Content-Type", "Content-Length", "User-Agent"}

// HookDelivery is one logged webhook delivery.
type HookDelivery struct {
	Time        time.Time `json:"time"`
	Integration string    `json:"integration"`
	// Verdict is verified, duplicate or refused.
	Verdict string `json:"verdict"`
	// Result is accepted, duplicate or the refusal's code
	// (missing_signature, bad_signature, stale, …).
	Result string `json:"result"`
	Status int    `json:"status"`
	// ID is the event's job id, once verified.
	ID     string            `json:"id,omitempty"`
	Bytes  int64             `json:"bytes"`
	Header map[string]string `json:"header"`
	// Log lists what happened to the delivery, in order.
	Log []string `json:"log"`
}

// deliveryRing keeps the last maxDeliveries deliveries.
type deliveryRing struct {
	mu   sync.Mutex
	buf  [maxDeliveries]HookDelivery
	next int // index of the next write
	n    int // entries held
}

func (g *deliveryRing) add(d HookDelivery) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.buf[g.next] = d
	g.next = (g.next + 1) % len(g.buf)
	g.n = min(g.n+1, len(g.buf))
}

// list returns the deliveries of integration ("" for all), newest first,
// at most limit.
func (g *deliveryRing) list(integration string, limit int) []HookDelivery {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := []HookDelivery{}
	for i := 0; i < g.n && len(out) < limit; i++ {
		d := g.buf[(g.next-1-i+2*len(g.buf))%len(g.buf)]
		if integration == "" || d.Integration == integration {
			out = append(out, d)
		}
	}
	return out
}

// logDelivery logs one delivery of integration name: result is accepted,
// duplicate or the refusal code, msg the refusal's message.
func (s *Server) logDelivery(r *http.Request, name, result string, status int, id, msg string) {
	d := HookDelivery{Time: time.Now().UTC(), Integration: name, Result: result, Status: status, ID: id,
		Bytes: r.ContentLength, Header: map[string]string{}}
	for _, h := range deliveryHeaders {
		if v := r.Header.Get(h); v != "" {
			d.Header[h] = truncate(v, 200)
		}
	}
	d.Log = append(d.Log, "received "+r.Method+" "+r.URL.Path+" ("+strconv.FormatInt(r.ContentLength, 10)+" bytes)")
	switch result {
	case "accepted":
		d.Verdict = "verified"
		d.Log = append(d.Log, "signature verified", "stored as job "+id)
	case "duplicate":
		d.Verdict = "duplicate"
		d.Log = append(d.Log, "signature verified", "event seen before as job "+id+"; nothing stored")
	default:
		d.Verdict = "refused"
		d.Log = append(d.Log, "refused ("+result+"): "+truncate(msg, 500))
	}
	s.hooks.log.add(d)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// hookDeliveries answers GET /v1/hooks/deliveries?integration=&limit=.
func (s *Server) hookDeliveries(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxDeliveries {
			writeError(w, http.StatusBadRequest, CodeBadRequest, "limit must be 1..500")
			return
		}
		limit = n
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": s.hooks.log.list(r.URL.Query().Get("integration"), limit)})
}
