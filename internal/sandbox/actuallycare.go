package sandbox

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ---- ActuallyCare lead sync (seed 000: paginated pull, check-before-create, write-back) ----

// ActuallyCareLeads is how many leads the sandbox's ActuallyCare API holds.
const ActuallyCareLeads = 132

// InvalidCRMEmail is the email of the one ActuallyCare lead the CRM
// rejects (422), so a sync shows a failure.
const InvalidCRMEmail = "lead077@invalid.example"

// acEpoch is the updatedAt of lead 1; lead i is i-1 hours later.
var acEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// acLead is one ActuallyCare lead.
type acLead struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Email     string `json:"email"`
	Phone     string `json:"phone"`
	Status    string `json:"status"`
	CreatedAt string `json:"createdAt"`
	UpdatedAt string `json:"updatedAt"`
	updated   time.Time
}

// crmContact is one contact of the sandbox's CRM ("your own system").
type crmContact struct {
	ID       string `json:"id"`
	Email    string `json:"email"`
	Name     string `json:"name"`
	Phone    string `json:"phone,omitempty"`
	SourceID string `json:"source_id"`
	Status   string `json:"status"`
}

// ActuallyCare is the sandbox's ActuallyCare-like API and the CRM a sync
// writes into. Its data is deterministic; tests read its counters and
// turn on its rate budget, a looping cursor or a CRM outage.
type ActuallyCare struct {
	mu       sync.Mutex
	leads    []*acLead
	contacts map[string]*crmContact // by email
	nextID   int
	requests map[string]int // by route
	creates  map[string]int // CRM creates by email
	pages    []url.Values   // queries of list requests, in order
	// the 429 budget: budget list requests, then 429 with Retry-After
	// until blockedUntil
	budget, used int
	retryAfter   time.Duration
	blockedUntil time.Time
	last429      time.Time
	gaps         []time.Duration
	loop         bool
	down         map[string]bool // CRM writes answer 503 for these emails
	touched      int
}

func newActuallyCare() *ActuallyCare {
	a := &ActuallyCare{contacts: map[string]*crmContact{}, requests: map[string]int{}, creates: map[string]int{}, down: map[string]bool{}}
	for i := 1; i <= ActuallyCareLeads; i++ {
		t := acEpoch.Add(time.Duration(i-1) * time.Hour)
		email := fmt.Sprintf("lead%03d@actuallycare.example", i)
		if i == 77 {
			email = InvalidCRMEmail
		}
		a.leads = append(a.leads, &acLead{
			ID: fmt.Sprintf("a1b2c3d4-0000-4000-8000-%012d", i), Name: fmt.Sprintf("Lead %d", i), Email: email,
			Phone: fmt.Sprintf("512555%04d", i), Status: "new", CreatedAt: acTime(t), UpdatedAt: acTime(t), updated: t,
		})
	}
	return a
}

func acTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (a *ActuallyCare) register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/leads", a.list)
	mux.HandleFunc("POST /v1/leads", a.create)
	mux.HandleFunc("PUT /v1/leads/{id}", a.update)
	mux.HandleFunc("GET /crm/v1/contacts", a.crmFind)
	mux.HandleFunc("POST /crm/v1/contacts", a.crmCreate)
	mux.HandleFunc("PUT /crm/v1/contacts/{id}", a.crmUpdate)
}

// ActuallyCare returns the sandbox's ActuallyCare API, for tests.
func (s *Sandbox) ActuallyCare() *ActuallyCare { return s.ac }

// Requests returns how many requests each route received, keyed by its
// pattern ("GET /v1/leads", "POST /crm/v1/contacts", …); list requests
// by email count as "GET /v1/leads?email".
func (a *ActuallyCare) Requests() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.requests)
}

// PageQueries returns the query of every page request of GET /v1/leads
// that was answered 200, in order.
func (a *ActuallyCare) PageQueries() []url.Values {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]url.Values(nil), a.pages...)
}

// Creates returns how many times the CRM created a contact for each email.
func (a *ActuallyCare) Creates() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.creates)
}

// Contacts is the number of contacts in the CRM.
func (a *ActuallyCare) Contacts() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.contacts)
}

// Status returns the status of ActuallyCare lead n (1-based).
func (a *ActuallyCare) Status(n int) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.leads[n-1].Status
}

// SetBudget lets n list requests through, then answers 429 with a
// Retry-After of retryAfter (whole seconds, at least 1) until that time has
// passed, when the budget refills. n = 0 turns the budget off (default).
func (a *ActuallyCare) SetBudget(n int, retryAfter time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.budget, a.used, a.retryAfter, a.blockedUntil = n, 0, max(retryAfter.Truncate(time.Second), time.Second), time.Time{}
}

// RetryGaps returns, for every 429 answered, the time from it to the next
// list request that was let through.
func (a *ActuallyCare) RetryGaps() []time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Duration(nil), a.gaps...)
}

// SetLoopingCursor makes every page of GET /v1/leads?cursor= name the same
// next cursor, like a buggy API.
func (a *ActuallyCare) SetLoopingCursor(on bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.loop = on
}

// SetCRMDown makes the CRM answer 503 to every write for these emails
// (none: the outage ends).
func (a *ActuallyCare) SetCRMDown(emails ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.down)
	for _, e := range emails {
		a.down[e] = true
	}
}

// Touch moves lead n's updatedAt after every other lead's, as an edit
// in ActuallyCare would.
func (a *ActuallyCare) Touch(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.touched++
	l := a.leads[n-1]
	l.updated = acEpoch.Add(time.Duration(ActuallyCareLeads+a.touched) * time.Hour)
	l.UpdatedAt = acTime(l.updated)
	// keep the list ordered by updatedAt
	i := n - 1
	for j, x := range a.leads {
		if x == l {
			i = j
		}
	}
	a.leads = append(append(a.leads[:i:i], a.leads[i+1:]...), l)
}

func acError(w http.ResponseWriter, status int, code, format string, args ...any) {
	writeJSON(w, status, map[string]any{"success": false, "error": map[string]any{"code": code, "message": fmt.Sprintf(format, args...)}})
}

func acData(w http.ResponseWriter, status int, data any) {
	writeJSON(w, status, map[string]any{"success": true, "data": data, "timestamp": "2026-06-11T17:42:11.000Z"})
}

func (a *ActuallyCare) count(route string) {
	a.mu.Lock()
	a.requests[route]++
	a.mu.Unlock()
}

func acKey(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("X-API-Key") != APIKey {
		acError(w, http.StatusUnauthorized, "UNAUTHORIZED", "invalid or missing X-API-Key")
		return false
	}
	return true
}

// list is GET /v1/leads: page & limit (limit default 25, max 100), or
// offset, or cursor; updated_since (leads updated strictly after it);
// email (the leads with that email). Answers carry meta.hasMore,
// meta.nextCursor, meta.next and a Link rel="next" header.
func (a *ActuallyCare) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Has("email") {
		a.count("GET /v1/leads?email")
	} else {
		a.count("GET /v1/leads")
	}
	if !acKey(w, r) {
		return
	}
	a.mu.Lock()
	if a.budget > 0 {
		now := time.Now()
		switch {
		case now.Before(a.blockedUntil):
			wait := a.blockedUntil.Sub(now)
			a.mu.Unlock()
			w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
			acError(w, http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED", "rate limit exceeded")
			return
		case !a.blockedUntil.IsZero():
			a.gaps = append(a.gaps, now.Sub(a.last429))
			a.blockedUntil, a.used = time.Time{}, 0
		}
		if a.used >= a.budget {
			a.last429, a.blockedUntil = now, now.Add(a.retryAfter)
			a.mu.Unlock()
			w.Header().Set("Retry-After", strconv.Itoa(int(a.retryAfter/time.Second)))
			acError(w, http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED", "rate limit exceeded")
			return
		}
		a.used++
	}
	defer a.mu.Unlock()
	limit := 25
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			acError(w, http.StatusBadRequest, "VALIDATION_ERROR", "limit must be a positive number")
			return
		}
		limit = min(n, 100)
	}
	var leads []*acLead
	since := time.Time{}
	if s := q.Get("updated_since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			acError(w, http.StatusBadRequest, "VALIDATION_ERROR", "updated_since must be an ISO 8601 timestamp")
			return
		}
		since = t
	}
	for _, l := range a.leads {
		if (since.IsZero() || l.updated.After(since)) && (!q.Has("email") || strings.EqualFold(l.Email, q.Get("email"))) {
			leads = append(leads, l)
		}
	}
	from, page := 0, 1
	switch {
	case q.Get("cursor") != "":
		n, err := strconv.ParseInt(strings.TrimPrefix(q.Get("cursor"), "c_"), 36, 32)
		if err != nil || n < 0 {
			acError(w, http.StatusBadRequest, "VALIDATION_ERROR", "bad cursor")
			return
		}
		from = int(n)
	case q.Get("offset") != "":
		n, err := strconv.Atoi(q.Get("offset"))
		if err != nil || n < 0 {
			acError(w, http.StatusBadRequest, "VALIDATION_ERROR", "offset must be a number ≥ 0")
			return
		}
		from = n
	case q.Get("page") != "":
		n, err := strconv.Atoi(q.Get("page"))
		if err != nil || n < 1 {
			acError(w, http.StatusBadRequest, "VALIDATION_ERROR", "page must be a number ≥ 1")
			return
		}
		page, from = n, (n-1)*limit
	}
	if !q.Has("email") {
		a.pages = append(a.pages, q)
	}
	to := min(from+limit, len(leads))
	out := []*acLead{}
	if from < len(leads) {
		out = leads[from:to]
	}
	more := to < len(leads)
	meta := map[string]any{"page": page, "limit": limit, "total": len(leads), "totalPages": (len(leads) + limit - 1) / limit, "hasMore": more}
	if more {
		next := from + limit
		if a.loop {
			next = from
		}
		cursor := "c_" + strconv.FormatInt(int64(next), 36)
		nq := url.Values{"limit": {strconv.Itoa(limit)}}
		if s := q.Get("updated_since"); s != "" {
			nq.Set("updated_since", s)
		}
		nq.Set("cursor", cursor)
		meta["nextCursor"] = cursor
		meta["next"] = "/v1/leads?" + nq.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<http://%s/v1/leads?%s>; rel="next"`, r.Host, nq.Encode()))
	}
	acData(w, http.StatusOK, map[string]any{"leads": out, "meta": meta})
}

func (a *ActuallyCare) create(w http.ResponseWriter, r *http.Request) {
	a.count("POST /v1/leads")
	if !acKey(w, r) {
		return
	}
	var in acLead
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&in); err != nil || in.Name == "" || in.Email == "" {
		acError(w, http.StatusBadRequest, "VALIDATION_ERROR", "name and email are required.")
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	t := acEpoch.Add(time.Duration(len(a.leads)) * time.Hour)
	l := &acLead{ID: fmt.Sprintf("a1b2c3d4-0000-4000-8000-%012d", len(a.leads)+1), Name: in.Name, Email: in.Email, Phone: in.Phone, Status: "new", CreatedAt: acTime(t), UpdatedAt: acTime(t), updated: t}
	a.leads = append(a.leads, l)
	acData(w, http.StatusCreated, l)
}

// update is PUT /v1/leads/{id}: sets the status. It does not move
// updatedAt (the sandbox keeps the sync's write-back out of the next
// incremental pull).
func (a *ActuallyCare) update(w http.ResponseWriter, r *http.Request) {
	a.count("PUT /v1/leads/{id}")
	if !acKey(w, r) {
		return
	}
	var in struct {
		Status string `json:"status"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&in); err != nil || in.Status == "" {
		acError(w, http.StatusBadRequest, "VALIDATION_ERROR", "status is required.")
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, l := range a.leads {
		if l.ID == r.PathValue("id") {
			l.Status = in.Status
			acData(w, http.StatusOK, l)
			return
		}
	}
	acError(w, http.StatusNotFound, "NOT_FOUND", "lead %s not found", r.PathValue("id"))
}

func (a *ActuallyCare) crmFind(w http.ResponseWriter, r *http.Request) {
	a.count("GET /crm/v1/contacts")
	if !acKey(w, r) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	out := []*crmContact{}
	if c, ok := a.contacts[strings.ToLower(r.URL.Query().Get("email"))]; ok {
		out = append(out, c)
	}
	writeJSON(w, http.StatusOK, map[string]any{"contacts": out})
}

type crmIn struct {
	Email    string `json:"email"`
	Name     string `json:"name"`
	Phone    string `json:"phone"`
	SourceID string `json:"source_id"`
}

func (a *ActuallyCare) crmRead(w http.ResponseWriter, r *http.Request) (crmIn, bool) {
	var in crmIn
	if !acKey(w, r) {
		return in, false
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&in); err != nil {
		jsonError(w, http.StatusBadRequest, "invalid JSON: %v", err)
		return in, false
	}
	a.mu.Lock()
	down := a.down[in.Email]
	a.mu.Unlock()
	switch {
	case down:
		jsonError(w, http.StatusServiceUnavailable, "CRM temporarily unavailable")
		return in, false
	case in.Email == "" || !strings.Contains(in.Email, "@"):
		jsonError(w, http.StatusUnprocessableEntity, "email is required")
		return in, false
	case strings.HasSuffix(in.Email, "@"+InvalidDomain):
		jsonError(w, http.StatusUnprocessableEntity, "%s is not a deliverable address", in.Email)
		return in, false
	}
	return in, true
}

func (a *ActuallyCare) crmCreate(w http.ResponseWriter, r *http.Request) {
	a.count("POST /crm/v1/contacts")
	in, ok := a.crmRead(w, r)
	if !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	key := strings.ToLower(in.Email)
	a.creates[key]++
	if c, ok := a.contacts[key]; ok {
		writeJSON(w, http.StatusConflict, map[string]any{"error": "contact exists", "id": c.ID})
		return
	}
	a.nextID++
	c := &crmContact{ID: fmt.Sprintf("C-%05d", a.nextID), Email: in.Email, Name: in.Name, Phone: in.Phone, SourceID: in.SourceID, Status: "created"}
	a.contacts[key] = c
	writeJSON(w, http.StatusCreated, c)
}

func (a *ActuallyCare) crmUpdate(w http.ResponseWriter, r *http.Request) {
	a.count("PUT /crm/v1/contacts/{id}")
	in, ok := a.crmRead(w, r)
	if !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.contacts {
		if c.ID == r.PathValue("id") {
			c.Name, c.Phone, c.SourceID, c.Status = in.Name, in.Phone, in.SourceID, "updated"
			writeJSON(w, http.StatusOK, c)
			return
		}
	}
	jsonError(w, http.StatusNotFound, "contact %s not found", r.PathValue("id"))
}

// actuallyCareIndex lists the endpoints of this file for GET /.
const actuallyCareIndex = `GET  /v1/leads                X-API-Key; page&limit | offset | cursor; updated_since; email -> {success, data: {leads, meta: {hasMore, nextCursor, next}}} + Link rel=next
POST /v1/leads                X-API-Key, JSON {name, email, phone}
PUT  /v1/leads/{id}           X-API-Key, JSON {status}
GET  /crm/v1/contacts?email=  X-API-Key -> {contacts: [{id, email, …}]}
POST /crm/v1/contacts         X-API-Key, JSON {email, name, phone, source_id} (409 when it exists)
PUT  /crm/v1/contacts/{id}    X-API-Key, JSON {email, name, phone, source_id}
`
