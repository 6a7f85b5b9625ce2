package sandbox

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// ---- resilient enrichment (seed: Error Handling, Timeout Handling, Fallback Strategies) ----

// Scenarios of /enrich/company, chosen per lead with the X-Sandbox-Scenario
// header. Empty (or "normal") means a healthy partner.
const (
	ScenarioRateLimited = "rate_limited" // every 1st of 2 tries: 429 with Retry-After: 1
	ScenarioFlaky       = "flaky"        // tries 1, 2 of every 3: 500, then a dropped connection
	ScenarioSlow        = "slow"         // every 1st of 2 tries: no answer for 5s (the client times out)
	ScenarioPrimaryDown = "primary_down" // /enrich/company answers 503; /enrich/backup works
	ScenarioAllDown     = "all_down"     // /enrich/company and /enrich/backup answer 503
)

// FreeMailDomain cannot be enriched: /enrich/company and /enrich/backup
// answer 422 for its addresses.
const FreeMailDomain = "freemail.example"

// enrich serves the enrichment endpoints. Scenarios that fail a lead's
// first try and answer the next one count tries per (scenario, reference)
// and cycle, so running the same leads again gives the same results.
type enrich struct {
	mu    sync.Mutex
	tries map[string]int
}

func newEnrich() *enrich { return &enrich{tries: map[string]int{}} }

func (e *enrich) register(mux *http.ServeMux) {
	mux.HandleFunc("POST /enrich/company", e.company)
	mux.HandleFunc("POST /enrich/backup", e.backup)
	mux.HandleFunc("POST /enrich/social", e.social)
	mux.HandleFunc("POST /crm/leads", crmLeads)
}

// try returns the 1-based number of this try for key.
func (e *enrich) try(key string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tries[key]++
	return e.tries[key]
}

type enrichRequest struct {
	Reference string `json:"reference"`
	Email     string `json:"email"`
}

// enrichInput checks the API key and the body of an enrichment call; it
// answers the error itself.
func enrichInput(w http.ResponseWriter, r *http.Request) (enrichRequest, bool) {
	var in enrichRequest
	if !apiKey(w, r) {
		return in, false
	}
	if !decodeJSON(w, r, &in) {
		return in, false
	}
	if in.Reference == "" || in.Email == "" {
		jsonError(w, http.StatusBadRequest, "reference and email are required")
		return in, false
	}
	if !emailRE.MatchString(in.Email) {
		jsonError(w, http.StatusBadRequest, "email %q is not an email address", in.Email)
		return in, false
	}
	if d := domain(in.Email); d == FreeMailDomain {
		jsonError(w, http.StatusUnprocessableEntity, "cannot enrich %s: %s is a personal email domain", in.Email, d)
		return in, false
	}
	return in, true
}

// firmographics derives a company from an email domain.
func firmographics(d, source string) map[string]any {
	name, _, _ := strings.Cut(d, ".")
	industries := []string{"software", "manufacturing", "retail", "finance", "healthcare"}
	return map[string]any{
		"company":   strings.ToUpper(name[:1]) + name[1:],
		"domain":    d,
		"industry":  industries[number(d, 0, len(industries)-1)],
		"employees": number(d, 1, 50) * 100,
		"source":    source,
	}
}

func (e *enrich) company(w http.ResponseWriter, r *http.Request) {
	in, ok := enrichInput(w, r)
	if !ok {
		return
	}
	sc := r.Header.Get("X-Sandbox-Scenario")
	switch sc {
	case "", "normal":
	case ScenarioRateLimited:
		if e.try(sc+"|"+in.Reference)%2 == 1 {
			w.Header().Set("Retry-After", "1")
			jsonError(w, http.StatusTooManyRequests, "rate limit exceeded, retry after 1s")
			return
		}
	case ScenarioFlaky:
		switch e.try(sc+"|"+in.Reference) % 3 {
		case 1:
			jsonError(w, http.StatusInternalServerError, "internal error")
			return
		case 2:
			drop(w)
			return
		}
	case ScenarioSlow:
		if e.try(sc+"|"+in.Reference)%2 == 1 {
			select {
			case <-r.Context().Done(): // the client gave up
			case <-time.After(5 * time.Second):
			}
			return
		}
	case ScenarioPrimaryDown, ScenarioAllDown:
		jsonError(w, http.StatusServiceUnavailable, "enrichment service unavailable")
		return
	default:
		jsonError(w, http.StatusBadRequest, "unknown X-Sandbox-Scenario %q", sc)
		return
	}
	writeJSON(w, http.StatusOK, firmographics(domain(in.Email), "primary"))
}

// drop closes the connection without answering.
func drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		jsonError(w, http.StatusBadGateway, "connection dropped")
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	_ = conn.Close()
}

func (e *enrich) backup(w http.ResponseWriter, r *http.Request) {
	in, ok := enrichInput(w, r)
	if !ok {
		return
	}
	if r.Header.Get("X-Sandbox-Scenario") == ScenarioAllDown {
		jsonError(w, http.StatusServiceUnavailable, "backup enrichment service unavailable")
		return
	}
	writeJSON(w, http.StatusOK, firmographics(domain(in.Email), "backup"))
}

// social is always down: the example's optional step shows that an
// enrichment error does not stop delivery.
func (e *enrich) social(w http.ResponseWriter, r *http.Request) {
	if _, ok := enrichInput(w, r); !ok {
		return
	}
	jsonError(w, http.StatusServiceUnavailable, "social profiles are down for maintenance")
}

// crmLeads accepts an enriched lead.
func crmLeads(w http.ResponseWriter, r *http.Request) {
	if !apiKey(w, r) {
		return
	}
	var in struct {
		Reference    string `json:"reference"`
		Email        string `json:"email"`
		Company      string `json:"company"`
		Industry     string `json:"industry"`
		Employees    *int   `json:"employees"`
		ManualReview bool   `json:"manual_review"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	if in.Reference == "" || in.Email == "" {
		jsonError(w, http.StatusBadRequest, "reference and email are required")
		return
	}
	status := "accepted"
	if in.ManualReview {
		status = "queued_for_review"
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": "CRM-" + hash(in.Reference, in.Email), "status": status})
}

// enrichIndex lists the endpoints of this file for GET /.
const enrichIndex = `POST /enrich/company          X-API-Key, JSON {reference, email}; X-Sandbox-Scenario: rate_limited|flaky|slow|primary_down|all_down
POST /enrich/backup           the same, a backup service (down for all_down)
POST /enrich/social           X-API-Key, JSON {reference, email}: always 503
POST /crm/leads               X-API-Key, JSON {reference, email, company, industry, employees, manual_review}
`
