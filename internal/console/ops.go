package console

// The operations console: /console/ops/ shows what the service is doing —
// the lead list and a lead's timeline, per-integration health, dead
// letters and webhook deliveries. The page reads the service's API through
// /console/api/v1/… (Config.API), under the console's own rules: a console
// token or session, a loopback Host without tokens, and the
// X-Plumb-Console header with a JSON body on every POST. static/opsapi.js
// is the page's only reader of that API.

import (
	"html/template"
	"net/http"
	"strings"
)

// opsPrefix is where the console serves the service's API to its page.
const opsPrefix = "/console/api"

// mountOps adds the operations page and the API passage to m.
func (c *Console) mountOps(m *http.ServeMux) error {
	page, err := template.ParseFS(static, "static/ops.html")
	if err != nil {
		return err
	}
	m.HandleFunc("GET /console/ops/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if !c.authorized(r) {
			w.WriteHeader(http.StatusUnauthorized)
			c.page.ExecuteTemplate(w, "login.html", nil)
			return
		}
		if err := page.Execute(w, map[string]any{"Auth": c.cfg.RequireToken, "Ops": c.cfg.API != nil}); err != nil {
			c.log.Warn("ops page", "err", err)
		}
	})
	m.HandleFunc(opsPrefix+"/v1/", c.opsAPI)
	return nil
}

// opsAPI passes a console call on to the service's API (Config.API).
func (c *Console) opsAPI(w http.ResponseWriter, r *http.Request) {
	if !c.authorized(r) {
		writeError(w, http.StatusUnauthorized, "log in to the console with a console token (reload the page)")
		return
	}
	if c.cfg.API == nil {
		writeError(w, http.StatusNotFound, "this console has no service API behind it")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if !consoleCall(r) {
			writeError(w, http.StatusForbidden, "console API calls need the X-Plumb-Console header and a JSON body")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = strings.TrimPrefix(r.URL.Path, opsPrefix)
	r2.URL.RawPath = ""
	c.cfg.API.ServeHTTP(w, r2)
}
