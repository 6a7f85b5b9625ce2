// Command embed is a small HTTP service around a plumb integration: the
// shape to copy when embedding plumb in a Go program.
//
// It loads the integration once, binds it to its settings once (a Runner
// is long-lived and safe for concurrent use, like an http.Client), serves
//
//	POST /leads         one JSON lead  → its result as JSON
//	POST /leads/batch   NDJSON leads   → NDJSON results, in input order
//
// and closes the runner after the server has shut down, so leads still
// running finish and its connections are released.
//
//	BLACKLIST_API_KEY=… BLACKLIST_BASE_URL=https://… go run ./examples/embed -integration examples/embed/blacklist.yaml
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/plumbhq/plumb/engine"
)

func main() {
	path := flag.String("integration", "blacklist.yaml", "integration file")
	addr := flag.String("addr", "localhost:8080", "listen address")
	flag.Parse()

	plan, err := engine.Load(*path)
	if err != nil {
		log.Fatal(err) // every problem of the file, file:line:col
	}
	runner, err := plan.Bind(engine.Config{LookupEnv: os.LookupEnv})
	if err != nil {
		log.Fatal(err) // every missing or invalid setting
	}

	srv := &http.Server{Addr: *addr, Handler: newHandler(runner), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	log.Printf("serving %s on %s", plan.Name(), *addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	runner.Close(context.Background()) // after Shutdown: no handler uses it any more
}

// maxLead bounds the body of one lead.
const maxLead = 1 << 20

// response is what the service answers for a lead.
type response struct {
	Outcome engine.Outcome `json:"outcome"`
	Class   engine.Class   `json:"class,omitempty"`
	Reason  string         `json:"reason,omitempty"`
	Lead    map[string]any `json:"lead,omitempty"`
}

func newResponse(res *engine.Result) response {
	return response{Outcome: res.Outcome, Class: res.Class, Reason: res.Reason, Lead: res.Lead}
}

// newHandler serves leads with r. Every request shares r: its connections,
// token cache, batches and answer cache.
func newHandler(r *engine.Runner) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /leads", func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxLead))
		var lead map[string]any
		if err == nil {
			lead, err = engine.DecodeLead(body) // one object, numbers exact (big integers stay digit for digit)
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, response{Outcome: engine.Error, Class: engine.ClassInput, Reason: err.Error()})
			return
		}
		// the request's context: a client that goes away cancels its lead
		res := r.Run(req.Context(), lead)
		writeJSON(w, status(res), newResponse(res))
	})
	mux.HandleFunc("POST /leads/batch", func(w http.ResponseWriter, req *http.Request) {
		sc := bufio.NewScanner(req.Body)
		sc.Buffer(make([]byte, 64<<10), maxLead)
		leads := func(yield func(map[string]any, error) bool) {
			for sc.Scan() {
				lead, err := engine.DecodeLead(sc.Bytes())
				if !yield(lead, err) { // a malformed line gets a result of class input
					return
				}
			}
			if err := sc.Err(); err != nil {
				yield(nil, err)
			}
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w)
		flusher, _ := w.(http.Flusher)
		for _, res := range r.RunAll(req.Context(), leads, engine.RunAllOptions{Concurrency: 16}) {
			if enc.Encode(newResponse(res)) != nil {
				return // the client went away: RunAll stops
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
	})
	return mux
}

// status maps a result to the service's HTTP status: a lead that ran to an
// answer (success, failure, skip) is a 200 whose body says which; an error
// is mapped by its class.
func status(res *engine.Result) int {
	if res.Outcome != engine.Error {
		return http.StatusOK
	}
	switch res.Class {
	case engine.ClassInput, engine.ClassTemplate:
		return http.StatusUnprocessableEntity // the lead lacks what the integration needs
	case engine.ClassTimeout:
		return http.StatusGatewayTimeout
	case engine.ClassCanceled:
		return http.StatusServiceUnavailable
	case engine.ClassInternal:
		return http.StatusInternalServerError
	}
	return http.StatusBadGateway // the partner failed us: connection, tls, status, auth, capture, too_large
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
