package serve

import (
	"net/http"
	"slices"
)

// opsPatterns are the API routes the operations console reads (and the one
// it writes: retrying a dead letter). The console serves them at
// /console/api/v1/… to a console user, after its own checks (console
// token or session, loopback Host, X-Plumb-Console and a JSON body on a
// POST); a route not listed here is not reachable through the console.
var opsPatterns = []string{
	"/v1/integrations", "/v1/queue",
	"/v1/leads", "/v1/leads/{id}", "/v1/leads/export", "/v1/batches/{id}", // lead history
	"/v1/dead", "/v1/dead/{id}/retry",
	"/v1/stats", "/v1/hooks/deliveries",
}

// opsAPI is the handler behind the console's /console/api/v1/…: the
// listed API routes with their method checks, without the API's bearer
// check (the console checked its own role). Paths arrive without the
// /console/api prefix.
func (s *Server) opsAPI() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.apiRoutes() {
		if slices.Contains(opsPatterns, rt.pattern) {
			mux.Handle(rt.pattern, s.route(rt.pattern, rt.methods, true, rt.h))
		}
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, CodeNotFound, "the console does not serve "+r.URL.Path)
	})
	return mux
}
