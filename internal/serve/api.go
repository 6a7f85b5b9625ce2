package serve

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/history"
	"github.com/plumbhq/plumb/internal/oauthflow"
	"github.com/plumbhq/plumb/internal/queue"
	"github.com/plumbhq/plumb/internal/telemetry"
)

// Error codes of the API's error answers, stable across releases.
const (
	CodeUnauthorized     = "unauthorized"
	CodeNotFound         = "not_found"
	CodeUnknownIntegr    = "unknown_integration"
	CodeMethod           = "method_not_allowed"
	CodeContentType      = "unsupported_media_type"
	CodeTooLarge         = "body_too_large"
	CodeInvalidJSON      = "invalid_json"
	CodeInvalidID        = "invalid_id"
	CodeUnavailable      = "unavailable"
	CodeQueue            = "queue_error"
	CodeNotReady         = "not_ready"
	CodeBadRequest       = "bad_request"
	CodeIntegrationStale = "integration_not_loaded"
)

// ErrorBody is the shape of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the error of an ErrorBody.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Line of an NDJSON body the error is about (1-based), if any.
	Line int `json:"line,omitempty"`
	// Accepted lists leads already stored when publishing failed part-way.
	Accepted []Accepted `json:"accepted,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	var b []byte
	var err error
	if res, ok := v.(*engine.Result); ok {
		b, err = marshalResult(res)
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		code = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"encoding the answer failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// marshalResult is json.Marshal(res), byte for byte, from the result's
// hand-written encoding: cheaper than json.Marshal, which compacts and
// copies what Result.MarshalJSON returns.
func marshalResult(res *engine.Result) ([]byte, error) {
	b, err := res.AppendJSON(make([]byte, 0, 1024))
	if err != nil {
		return nil, err
	}
	// json.Marshal escapes <, > and & for HTML; in JSON it writes they
	// can only be in strings (U+2028 and U+2029 AppendJSON escapes too)
	n := 0
	for _, c := range b {
		if c == '<' || c == '>' || c == '&' {
			n++
		}
	}
	if n == 0 {
		return b, nil
	}
	const hex = "0123456789abcdef"
	out := make([]byte, 0, len(b)+5*n)
	start := 0
	for i, c := range b {
		if c == '<' || c == '>' || c == '&' {
			out = append(append(out, b[start:i]...), '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			start = i + 1
		}
	}
	return append(out, b[start:]...), nil
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: msg}})
}

// statusWriter remembers the status code for the request counter.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// route wraps a handler: method check, bearer check (unless open), request
// counting; the access line (observe) names the route.
func (s *Server) route(pattern string, methods []string, open bool, h http.HandlerFunc) http.Handler {
	allow := strings.Join(methods, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setRoute(r, pattern)
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			code := sw.code
			if code == 0 {
				code = http.StatusOK
			}
			s.metrics.requests.WithLabelValues(pattern, strconv.Itoa(code)).Inc()
		}()
		if !open && !s.apiTokens.empty() && s.throttled(sw, r) {
			return
		}
		if !open && !s.authorized(r) {
			s.metrics.authFail.Inc()
			sw.Header().Set("WWW-Authenticate", `Bearer realm="plumb"`)
			writeError(sw, http.StatusUnauthorized, CodeUnauthorized, "a valid bearer token is required (Authorization: Bearer …)")
			return
		}
		ok := false
		for _, m := range methods {
			if r.Method == m || (m == http.MethodGet && r.Method == http.MethodHead) {
				ok = true
			}
		}
		if !ok {
			sw.Header().Set("Allow", allow)
			writeError(sw, http.StatusMethodNotAllowed, CodeMethod, fmt.Sprintf("%s is not allowed here; use %s", r.Method, allow))
			return
		}
		h(sw, r)
	})
}

// apiRoute is one route of the API's mux.
type apiRoute struct {
	pattern string
	methods []string
	open    bool // no bearer token needed
	h       http.HandlerFunc
}

// apiRoutes are the API's routes (the mux is built from them, and the
// tests walk them: a route added here is checked with the others).
func (s *Server) apiRoutes() []apiRoute {
	get, post := []string{http.MethodGet}, []string{http.MethodPost}
	metricsHandler := promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{s}})
	routes := []apiRoute{
		{"/healthz", get, true, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}},
		{"/readyz", get, true, func(w http.ResponseWriter, r *http.Request) {
			if ok, why := s.ready(); !ok {
				writeError(w, http.StatusServiceUnavailable, CodeNotReady, why)
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		}},
		{"/metrics", get, false, metricsHandler.ServeHTTP},
		{"/v1/integrations", get, false, s.listIntegrations},
		{"/v1/integrations/{name}/run", post, false, s.runNow},
		{"/v1/integrations/{name}/leads", post, false, s.accept},
		{"/v1/integrations/{name}/sync", []string{http.MethodGet, http.MethodPost}, false, s.syncRoute},
		{"/v1/leads/{id}", get, false, s.getLead},
		{"/v1/leads", get, false, s.listLeads},
		{"/v1/leads/export", get, false, s.exportLeads},
		{"/v1/batches/{id}", get, false, s.getBatch},
		{"/v1/callbacks/{id}", get, false, s.getCallback},
		{"/v1/queue", get, false, s.queueStats},
		{"/v1/dead", get, false, s.listDead},
		{"/v1/dead/{id}/retry", post, false, s.retryDead},
		{"/v1/stats", get, false, s.getStats},                  // stats.go
		{"/v1/hooks/deliveries", get, false, s.hookDeliveries}, // deliveries.go
	}
	if s.oauth != nil {
		// The install flow (package oauthflow): a browser reaches it, so the
		// route itself is open; start and status check the API token
		// (header, or ?access_token=), the callback the login's state and
		// cookie.
		routes = append(routes, apiRoute{oauthflow.Prefix, get, true, func(w http.ResponseWriter, r *http.Request) {
			if !s.apiTokens.empty() && s.throttled(w, r) {
				return
			}
			s.oauth.ServeHTTP(w, r)
		}})
	}
	return append(routes, apiRoute{"/", []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch}, false,
		func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, CodeNotFound, "no route "+r.URL.Path)
		}})
}

// routes is the API's mux.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.apiRoutes() {
		mux.Handle(rt.pattern, s.route(rt.pattern, rt.methods, rt.open, rt.h))
	}
	return mux
}

type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) { p.s.log.Warn("metrics", "err", fmt.Sprint(v...)) }

func (s *Server) listIntegrations(w http.ResponseWriter, r *http.Request) {
	out := []IntegrationInfo{}
	for _, e := range s.reg.list() {
		out = append(out, e.info())
	}
	writeJSON(w, http.StatusOK, map[string]any{"integrations": out})
}

// integration finds the integration of the request or answers 404.
func (s *Server) integration(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("name")
	e := s.reg.lookup(name)
	if e == nil {
		writeError(w, http.StatusNotFound, CodeUnknownIntegr, fmt.Sprintf("no integration named %q (GET /v1/integrations lists them)", name))
		return "", false
	}
	return name, true
}

// mediaType checks the request's content type against the accepted ones
// and answers 415 otherwise.
func mediaType(w http.ResponseWriter, r *http.Request, accepted ...string) (string, bool) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err == nil {
		for _, a := range accepted {
			if mt == a {
				return mt, true
			}
		}
	}
	writeError(w, http.StatusUnsupportedMediaType, CodeContentType, "Content-Type must be "+strings.Join(accepted, " or "))
	return "", false
}

// body reads the request body within MaxBody, answering 413 or 400.
func (s *Server) body(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if !identityEncoding(w, r) {
		return nil, false
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("the body is larger than %d bytes", s.cfg.MaxBody))
			return nil, false
		}
		writeError(w, http.StatusBadRequest, CodeBadRequest, "reading the body: "+err.Error())
		return nil, false
	}
	return b, true
}

// identityEncoding refuses (415) a body sent with a Content-Encoding
// (gzip, …): the service reads bodies as sent, and a compressed one would
// otherwise fail as JSON that does not parse.
func identityEncoding(w http.ResponseWriter, r *http.Request) bool {
	for _, ce := range r.Header.Values("Content-Encoding") {
		if ce = strings.TrimSpace(ce); ce != "" && !strings.EqualFold(ce, "identity") {
			writeError(w, http.StatusUnsupportedMediaType, CodeContentType,
				"a body with a Content-Encoding (compressed) is not accepted: send it uncompressed (nothing was stored)")
			return false
		}
	}
	return true
}

// StatusFor maps a result to the HTTP status of POST /run: success and skip
// 200, failure 422, error by class: timeout 504, input and template 400,
// canceled 503, internal 500, every other class (the partner failed us:
// connection, tls, status, auth, rejected, capture, too_large) 502.
func StatusFor(res *engine.Result) int {
	switch res.Outcome {
	case engine.Success, engine.Skip:
		return http.StatusOK
	case engine.Failure:
		return http.StatusUnprocessableEntity
	}
	switch res.Class {
	case engine.ClassTimeout:
		return http.StatusGatewayTimeout
	case engine.ClassInput, engine.ClassTemplate:
		return http.StatusBadRequest
	case engine.ClassCanceled:
		return http.StatusServiceUnavailable
	case engine.ClassInternal:
		return http.StatusInternalServerError
	}
	return http.StatusBadGateway
}

func (s *Server) runNow(w http.ResponseWriter, r *http.Request) {
	name, ok := s.integration(w, r)
	if !ok {
		return
	}
	if _, ok := mediaType(w, r, "application/json"); !ok {
		return
	}
	b, ok := s.body(w, r)
	if !ok {
		return
	}
	lead, err := engine.DecodeLead(b)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeInvalidJSON, "the body must be one JSON object (the lead): "+err.Error())
		return
	}
	l := leadRun{id: queue.NewID(), name: name, source: history.SourceRun, requestID: requestID(r)}
	// a /run lead's id names it on the log lines and spans of its run
	ctx, started := s.startLead(telemetry.WithLead(r.Context(), l.id), l)
	res, err := s.run(ctx, name, "sync", lead)
	s.finishLead(ctx, l, started, res)
	w.Header().Set("Plumb-Lead-Id", l.id)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, err.Error())
		return
	}
	if res == nil {
		writeError(w, http.StatusNotFound, CodeUnknownIntegr, fmt.Sprintf("integration %q is not served", name))
		return
	}
	writeJSON(w, StatusFor(res), res)
}

// Accepted is one lead stored by POST /leads.
type Accepted struct {
	ID string `json:"id"`
	// Duplicate: a lead with the same Idempotency-Key was accepted before;
	// nothing new was stored and ID is the earlier lead's.
	Duplicate bool   `json:"duplicate,omitempty"`
	Status    string `json:"status_url"`
}

// idemID derives a lead id from an Idempotency-Key, so a repeated request
// finds the same ids.
func idemID(name, key string, i int) string {
	h := sha256.Sum256([]byte(name + "\x00" + key + "\x00" + strconv.Itoa(i)))
	return "k" + hex.EncodeToString(h[:16])
}

func (s *Server) accept(w http.ResponseWriter, r *http.Request) {
	name, ok := s.integration(w, r)
	if !ok {
		return
	}
	mt, ok := mediaType(w, r, "application/json", "application/x-ndjson", "application/jsonl")
	if !ok {
		return
	}
	b, ok := s.body(w, r)
	if !ok {
		return
	}
	payloads, leads, ok := s.bodyLeads(w, mt, b)
	if !ok {
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > 256 {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "Idempotency-Key is longer than 256 bytes")
		return
	}
	batch := history.Batch{ID: queue.NewID(), Integration: name, CallbackURL: r.URL.Query().Get("callback_url")}
	if batch.CallbackURL != "" {
		if why := s.checkCallbackURL(name, batch.CallbackURL); why != "" {
			writeError(w, http.StatusBadRequest, CodeBadRequest, why+" (nothing was stored)")
			return
		}
	}
	q := s.q.Load()
	if err := q.Writable(); err != nil {
		writeStorageError(w, err, nil, len(payloads))
		return
	}
	done, ref := s.admit(r.Context(), q, len(payloads)) // backlog.go
	if ref != nil {
		s.writeBehind(w, name, len(payloads), ref)
		return
	}
	stored := 0
	defer func() { done(stored) }()
	var first string // the batch of the key's first request
	if key != "" {
		var err error
		first, err = s.checkIdem(r.Context(), q, name, key, leads, batch.ID)
		if errors.Is(err, errIdemReused) {
			writeError(w, http.StatusUnprocessableEntity, CodeIdemReused, err.Error()+" (nothing was stored)")
			return
		} else if errors.Is(err, queue.ErrStorage) {
			writeStorageError(w, err, nil, len(payloads))
			return
		} else if err != nil {
			writeError(w, http.StatusServiceUnavailable, CodeQueue, "checking the Idempotency-Key: "+err.Error())
			return
		}
	}
	out, errs := s.publish(r.Context(), q, name, key, payloads, func(ids []string) {
		if len(ids) == 0 && first != "" && first != batch.ID {
			batch.ID = first // a request sent again whole: its leads are in the first one's batch
			return
		}
		s.beginBatch(batch, ids, requestID(r))
	})
	var accepted []Accepted
	var firstErr error
	for i, e := range errs {
		if e != nil {
			if firstErr == nil {
				firstErr = e
			}
			continue
		}
		accepted = append(accepted, out[i])
		if !out[i].Duplicate {
			stored++
		}
	}
	if firstErr != nil {
		s.withdraw(batch.ID, out, errs)
		s.log.ErrorContext(r.Context(), "accepting leads", "integration", name, "err", firstErr, "stored", len(accepted), "of", len(payloads))
		if errors.Is(firstErr, queue.ErrStorage) {
			writeStorageError(w, firstErr, accepted, len(payloads))
			return
		}
		writeJSON(w, http.StatusServiceUnavailable, ErrorBody{Error: ErrorDetail{Code: CodeQueue, Accepted: accepted,
			Message: fmt.Sprintf("stored %d of %d leads, then: %v (send the rest again; with an Idempotency-Key the whole body can be sent again safely)", len(accepted), len(payloads), firstErr)}})
		return
	}
	// accepted counts the leads this request stored; duplicates are listed, not counted
	writeJSON(w, http.StatusAccepted, map[string]any{"accepted": stored, "leads": out, "batch": batch.ID, "batch_url": "/v1/batches/" + batch.ID})
}

// bodyLeads reads the leads of a POST /leads body of media type mt: one
// JSON object, or NDJSON of at most MaxBodyLeads objects (and at most the
// depth limit: a body the queue could never take). It answers the request
// itself when the body is refused.
func (s *Server) bodyLeads(w http.ResponseWriter, mt string, b []byte) (payloads [][]byte, leads []map[string]any, ok bool) {
	if mt == "application/json" {
		lead, err := engine.DecodeLead(b)
		if err != nil {
			writeError(w, http.StatusBadRequest, CodeInvalidJSON, "the body must be one JSON object (the lead); send many as application/x-ndjson: "+err.Error())
			return nil, nil, false
		}
		return [][]byte{bytes.TrimSpace(b)}, []map[string]any{lead}, true
	}
	limit, flag := s.cfg.MaxBodyLeads, "--max-body-leads"
	if d := s.cfg.MaxQueueDepth; d > 0 && d < limit {
		limit, flag = d, "--max-queue-depth"
	}
	for i, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if len(payloads) == limit {
			writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge,
				fmt.Sprintf("the body holds more than %d leads (%s): send them in smaller bodies (nothing was accepted)", limit, flag))
			return nil, nil, false
		}
		lead, err := engine.DecodeLead(line)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, ErrorBody{Error: ErrorDetail{Code: CodeInvalidJSON, Line: i + 1,
				Message: fmt.Sprintf("line %d: want one JSON object per line: %v (nothing was accepted)", i+1, err)}})
			return nil, nil, false
		}
		payloads, leads = append(payloads, line), append(leads, lead)
	}
	if len(payloads) == 0 {
		writeError(w, http.StatusBadRequest, CodeInvalidJSON, "no leads in the body")
		return nil, nil, false
	}
	return payloads, leads, true
}

// publish stores the leads of one request, a batch at a time where the
// queue can (one write for the lot), and says what became of each: its
// Accepted or its error.
func (s *Server) publish(ctx context.Context, q *queue.Queue, name, key string, payloads [][]byte, begin func(ids []string)) ([]Accepted, []error) {
	out := make([]Accepted, len(payloads))
	errs := make([]error, len(payloads))
	jobs := make([]queue.Job, len(payloads))
	for i, p := range payloads {
		jobs[i] = queue.Job{Kind: queue.KindLead, Integration: name, Payload: p}
		jobTrace(ctx, &jobs[i])
		if key != "" {
			jobs[i].ID = idemID(name, key, i)
		} else {
			jobs[i].ID = queue.NewID() // known before publishing, for the batch
		}
	}
	// with a key: seen before (within the results' lifetime)? then a duplicate
	seen := make([]bool, len(payloads))
	if key != "" {
		ids := make([]string, len(jobs))
		for i := range jobs {
			ids[i] = jobs[i].ID
		}
		seen = q.Known(ctx, ids)
	}
	fresh := make([]int, 0, len(payloads))
	for i, dup := range seen {
		if dup {
			out[i] = Accepted{ID: jobs[i].ID, Duplicate: true, Status: "/v1/leads/" + jobs[i].ID}
		} else {
			fresh = append(fresh, i)
		}
	}
	batch := make([]queue.Job, len(fresh))
	ids := make([]string, len(fresh))
	for j, i := range fresh {
		batch[j], ids[j] = jobs[i], jobs[i].ID
	}
	begin(ids)
	pubs, perrs := q.PublishAll(ctx, batch)
	for j, i := range fresh {
		if perrs[j] != nil {
			errs[i], out[i].ID = perrs[j], jobs[i].ID // the id for the batch (history.go), not answered
			continue
		}
		id := cmp.Or(pubs[j].ID, jobs[i].ID)
		if !pubs[j].Duplicate {
			s.metrics.accepted.WithLabelValues(name).Inc()
		}
		out[i] = Accepted{ID: id, Duplicate: pubs[j].Duplicate, Status: "/v1/leads/" + id}
	}
	s.logQueued(ctx, name, out, errs)
	return out, errs
}

// LeadStatus is the answer of GET /v1/leads/{id}.
type LeadStatus struct {
	ID          string          `json:"id"`
	Integration string          `json:"integration,omitempty"`
	State       queue.State     `json:"state"`
	Attempts    int             `json:"attempts,omitempty"`
	LastError   string          `json:"last_error,omitempty"`
	Updated     time.Time       `json:"updated,omitzero"`
	Result      json.RawMessage `json:"result,omitempty"`
}

func (s *Server) getLead(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !queue.ValidID(id) {
		writeError(w, http.StatusBadRequest, CodeInvalidID, "lead ids are 1-128 of A-Z a-z 0-9 _ = -")
		return
	}
	q := s.q.Load()
	st, err := q.Status(r.Context(), id)
	if errors.Is(err, queue.ErrNotFound) {
		writeError(w, http.StatusNotFound, CodeNotFound, "no lead "+id+" (never accepted, or its result expired)")
		return
	}
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, CodeQueue, err.Error())
		return
	}
	out := LeadStatus{ID: id, State: st.State, Attempts: st.Attempts, LastError: st.LastError, Updated: st.Updated}
	if s.hist != nil {
		if rec, ok, _ := s.hist.Get(id); ok {
			out.Integration = rec.Integration
		}
	}
	if st.State == queue.StateDone {
		res, err := q.GetResult(r.Context(), id)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, CodeQueue, err.Error())
			return
		}
		if len(res) > 0 {
			out.Result = res
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) queueStats(w http.ResponseWriter, r *http.Request) {
	st, err := s.q.Load().Stats(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, CodeQueue, err.Error())
		return
	}
	out := map[string]any{"depth": st.Depth, "pending": st.Pending, "in_flight": st.InFlight,
		"redelivered": st.Redelivered, "dead": st.Dead, "oldest_pending_age_seconds": pendingAge(st, s.now()),
		"max_depth": s.cfg.MaxQueueDepth, "max_age_seconds": int(s.cfg.MaxQueueAge / time.Second)}
	for k, v := range queueFaults(s.q.Load().Faults()) { // faults.go
		out[k] = v
	}
	writeJSON(w, http.StatusOK, out)
}

// DeadLead is one entry of GET /v1/dead.
type DeadLead struct {
	ID          string          `json:"id"`
	Integration string          `json:"integration"`
	Error       string          `json:"error"`
	Deliveries  int             `json:"deliveries"`
	Enqueued    time.Time       `json:"enqueued,omitzero"`
	Died        time.Time       `json:"died,omitzero"`
	Lead        json.RawMessage `json:"lead,omitempty"`
}

func (s *Server) listDead(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > queue.DefaultDeadLimit {
			writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("limit must be 1..%d", queue.DefaultDeadLimit))
			return
		}
		limit = n
	}
	dead, err := s.q.Load().Dead(r.Context(), limit)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, CodeQueue, err.Error())
		return
	}
	out := []DeadLead{}
	for _, d := range dead {
		dl := DeadLead{ID: d.ID, Integration: d.Integration, Error: d.Error, Deliveries: d.Deliveries, Enqueued: d.Enqueued, Died: d.Died}
		if json.Valid(d.Payload) {
			dl.Lead = d.Payload
		}
		out = append(out, dl)
	}
	writeJSON(w, http.StatusOK, map[string]any{"dead": out})
}

func (s *Server) retryDead(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !queue.ValidID(id) {
		writeError(w, http.StatusBadRequest, CodeInvalidID, "lead ids are 1-128 of A-Z a-z 0-9 _ = -")
		return
	}
	p, err := s.q.Load().Retry(r.Context(), id)
	if errors.Is(err, queue.ErrNotFound) {
		writeError(w, http.StatusNotFound, CodeNotFound, "no dead letter "+id)
		return
	}
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, CodeQueue, err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, Accepted{ID: p.ID, Duplicate: p.Duplicate, Status: "/v1/leads/" + p.ID})
}
