// Command handserve is the baseline of bench/compare-serve.sh: the
// three-step flow of bench/integration.yaml (JSON, SOAP/XPath, text/regex,
// against the sandbox) served over HTTP by hand with net/http, the way a
// careful Go programmer would write a small lead service for this one
// partner. It answers the same routes and JSON shapes as plumb serve, so one
// load generator (bench/load) drives both:
//
//   - POST /v1/integrations/bench-three-step/run: one lead (JSON), run now,
//     answered with the same result JSON as plumb serve (200 on success,
//     422 on failure, 502 on error);
//   - POST /v1/integrations/bench-three-step/leads: one lead or NDJSON;
//     every lead is appended to a journal file, fsynced once per request
//     before the 202 (-fsync=false skips the fsync), and queued in memory
//     for the workers; answers {"accepted", "leads": [{"id", "status_url"}]};
//   - GET /v1/leads/{id}: {"id", "state", "result"}; GET /v1/queue:
//     {"depth", "pending", "in_flight", "dead"}.
//
// The flow itself is bench/handwritten's: one pooled http.Client, compiled
// XPath and regexes, streaming decode of the answers. At most -concurrency
// leads run at once, sync and queued together (as plumb serve's
// --concurrency); the queue has -concurrency workers. Unlike plumb serve it
// keeps no results across restarts, has no dedupe, no dead letters, no
// retries of the queue, no auth and no metrics: it is the least a service
// doing this flow needs, so the ratio is an upper bound on plumb's overhead.
//
// Usage: handserve -addr 127.0.0.1:PORT -base SANDBOX_URL -journal FILE
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/plumbhq/plumb/bench/handflow"
)

const (
	name    = "bench-three-step"
	maxBody = 1 << 20
	maxJobs = 1 << 17 // leads queued in memory at most; more is a 503
)

// entry is one lead's state, kept in memory.
type entry struct {
	mu     sync.Mutex
	state  string // queued, running, done
	result []byte
}

type server struct {
	c       *handflow.Client
	sem     chan struct{} // leads running at once, sync and queued
	jobs    chan queued
	journal *os.File
	jmu     sync.Mutex
	fsync   bool
	seq     atomic.Uint64
	leads   sync.Map // id → *entry
	running atomic.Int64
}

type queued struct {
	id   string
	e    *entry
	lead *handflow.Lead
}

func writeJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
	w.Write([]byte{'\n'}) // as json.Encoder, like plumb serve
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": msg}})
	writeJSON(w, status, b)
}

func statusFor(res *handflow.Result) int {
	switch res.Outcome {
	case "success", "skip":
		return http.StatusOK
	case "failure":
		return http.StatusUnprocessableEntity
	}
	return http.StatusBadGateway
}

// runOne runs one lead under the concurrency limit and encodes its result.
func (s *server) runOne(l *handflow.Lead) (int, []byte) {
	s.sem <- struct{}{}
	res := s.c.Run(l)
	<-s.sem
	b, err := json.Marshal(&res)
	if err != nil {
		return http.StatusInternalServerError, []byte(`{"outcome":"error"}`)
	}
	return statusFor(&res), b
}

func (s *server) handleRun(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "send application/json")
		return
	}
	l := new(handflow.Lead)
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(l); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_json", err.Error())
		return
	}
	status, b := s.runOne(l)
	writeJSON(w, status, b)
}

func (s *server) handleLeads(w http.ResponseWriter, r *http.Request) {
	ct := r.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "application/x-ndjson") && !strings.HasPrefix(ct, "application/jsonl") {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "send application/json or application/x-ndjson")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", err.Error())
		return
	}
	// decode every line first: a malformed line rejects the whole body
	var leads []*handflow.Lead
	for i, line := range bytes.Split(body, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		l := new(handflow.Lead)
		if err := json.Unmarshal(line, l); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_json", fmt.Sprintf("line %d: %v", i+1, err))
			return
		}
		leads = append(leads, l)
	}
	if len(leads) > cap(s.jobs)-len(s.jobs) {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the queue is full")
		return
	}
	// stored before the 202: appended to the journal, fsynced once per body
	s.jmu.Lock()
	_, err = s.journal.Write(append(bytes.TrimRight(body, "\n"), '\n'))
	if err == nil && s.fsync {
		err = s.journal.Sync()
	}
	s.jmu.Unlock()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "queue_error", err.Error())
		return
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, `{"accepted":%d,"leads":[`, len(leads))
	for i, l := range leads {
		id := strconv.FormatUint(s.seq.Add(1), 36)
		e := &entry{state: "queued"}
		s.leads.Store(id, e)
		s.jobs <- queued{id: id, e: e, lead: l}
		if i > 0 {
			out.WriteByte(',')
		}
		fmt.Fprintf(&out, `{"id":%q,"status_url":"/v1/leads/%s"}`, id, id)
	}
	out.WriteString("]}")
	writeJSON(w, http.StatusAccepted, out.Bytes())
}

func (s *server) handleLead(w http.ResponseWriter, r *http.Request) {
	v, ok := s.leads.Load(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no such lead")
		return
	}
	e := v.(*entry)
	e.mu.Lock()
	state, res := e.state, e.result
	e.mu.Unlock()
	var out bytes.Buffer
	fmt.Fprintf(&out, `{"id":%q,"state":%q`, r.PathValue("id"), state)
	if res != nil {
		out.WriteString(`,"result":`)
		out.Write(res)
	}
	out.WriteByte('}')
	writeJSON(w, http.StatusOK, out.Bytes())
}

func (s *server) handleQueue(w http.ResponseWriter, _ *http.Request) {
	depth, running := len(s.jobs), s.running.Load()
	writeJSON(w, http.StatusOK, fmt.Appendf(nil, `{"dead":0,"depth":%d,"in_flight":%d,"pending":%d,"redelivered":0}`, int64(depth)+running, running, depth))
}

func (s *server) worker() {
	for j := range s.jobs {
		s.running.Add(1)
		j.e.mu.Lock()
		j.e.state = "running"
		j.e.mu.Unlock()
		_, b := s.runOne(j.lead)
		j.e.mu.Lock()
		j.e.state, j.e.result = "done", b
		j.e.mu.Unlock()
		s.running.Add(-1)
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:18092", "loopback address to listen on")
	base := flag.String("base", "http://127.0.0.1:18080", "sandbox base URL")
	conc := flag.Int("concurrency", 32, "leads running at once, sync and queued together")
	journal := flag.String("journal", "", "file the accepted leads are appended to (required)")
	doSync := flag.Bool("fsync", true, "fsync the journal before every 202")
	flag.Parse()
	host, _, err := net.SplitHostPort(*addr)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		fmt.Fprintln(os.Stderr, "handserve: -addr must be a loopback host:port")
		os.Exit(2)
	}
	if *journal == "" {
		fmt.Fprintln(os.Stderr, "handserve: -journal FILE is required")
		os.Exit(2)
	}
	jf, err := os.OpenFile(*journal, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer jf.Close()
	s := &server{
		c:       handflow.NewClient(*base, *conc),
		sem:     make(chan struct{}, *conc),
		jobs:    make(chan queued, maxJobs),
		journal: jf,
		fsync:   *doSync,
	}
	for range *conc {
		go s.worker()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/integrations/"+name+"/run", s.handleRun)
	mux.HandleFunc("POST /v1/integrations/"+name+"/leads", s.handleLeads)
	mux.HandleFunc("GET /v1/leads/{id}", s.handleLead)
	mux.HandleFunc("GET /v1/queue", s.handleQueue)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, []byte(`{"status":"ready"}`))
	})
	srv := &http.Server{
		Addr:              *addr,
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
