package sandbox

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"time"
)

// ---- parallel validation (seed: Parallel Processing, Data Preparation) ----
// ---- batch validation (seed: Batch Processing) ----

// CheckDelay is how long each /checks/* endpoint thinks before answering, so
// a flow that calls them one after the other takes 3×CheckDelay and a
// parallel group about 1×.
const CheckDelay = 100 * time.Millisecond

// MaxBatch is the largest batch /validate-batch accepts.
const MaxBatch = 100

func (s *Sandbox) registerFlows(mux *http.ServeMux) {
	mux.HandleFunc("POST /checks/email", s.checkEmail)
	mux.HandleFunc("POST /checks/phone", s.checkPhone)
	mux.HandleFunc("POST /checks/blacklist", s.checkBlacklist)
	mux.HandleFunc("POST /leads/deliver", deliver)
	mux.HandleFunc("POST /validate-batch", s.validateBatch)
}

// MaxInFlight returns the largest number of /checks/* requests the sandbox
// was serving at the same time. A lead whose three checks run in one
// parallel group makes it 3; more when several leads run at once.
func (s *Sandbox) MaxInFlight() int { return s.checks.max() }

// BatchSizes returns the number of leads of every batch /validate-batch
// accepted, in the order they arrived.
func (s *Sandbox) BatchSizes() []int {
	s.batches.mu.Lock()
	defer s.batches.mu.Unlock()
	return slices.Clone(s.batches.sizes)
}

// inflight counts requests being served and remembers the peak.
type inflight struct {
	mu      sync.Mutex
	n, peak int
}

func (f *inflight) enter() {
	f.mu.Lock()
	f.n++
	f.peak = max(f.peak, f.n)
	f.mu.Unlock()
}

func (f *inflight) leave() {
	f.mu.Lock()
	f.n--
	f.mu.Unlock()
}

func (f *inflight) max() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peak
}

type batchLog struct {
	mu    sync.Mutex
	sizes []int
}

// think holds a check's answer back for CheckDelay (less when the client
// gives up), counting the request as in flight meanwhile.
func (s *Sandbox) think(r *http.Request) {
	s.checks.enter()
	defer s.checks.leave()
	select {
	case <-r.Context().Done():
	case <-time.After(CheckDelay):
	}
}

var onlyDigitsRE = regexp.MustCompile(`^\d+$`)

func (s *Sandbox) checkEmail(w http.ResponseWriter, r *http.Request) {
	if !apiKey(w, r) {
		return
	}
	var in struct {
		Email string `json:"email"`
	}
	if !decodeJSON(w, r, &in) || !required(w, "email", in.Email) {
		return
	}
	s.think(r)
	out := map[string]any{"valid": true, "score": number(in.Email, 60, 99), "reason": ""}
	if !validEmail(in.Email) {
		out = map[string]any{"valid": false, "score": 0, "reason": in.Email + " is not a deliverable address"}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Sandbox) checkPhone(w http.ResponseWriter, r *http.Request) {
	if !apiKey(w, r) {
		return
	}
	var in struct {
		Phone string `json:"phone"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	if !onlyDigitsRE.MatchString(in.Phone) {
		jsonError(w, http.StatusBadRequest, "phone must be digits only, got %q", in.Phone)
		return
	}
	s.think(r)
	out := map[string]any{"valid": false, "line_type": "unknown"}
	if digitsRE.MatchString(in.Phone) {
		out = map[string]any{"valid": true, "line_type": []string{"mobile", "landline", "voip"}[number(in.Phone, 0, 2)]}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Sandbox) checkBlacklist(w http.ResponseWriter, r *http.Request) {
	if !apiKey(w, r) {
		return
	}
	var in struct {
		Email string `json:"email"`
		Phone string `json:"phone"`
	}
	if !decodeJSON(w, r, &in) || !required(w, "email", in.Email) {
		return
	}
	if in.Phone != "" && !onlyDigitsRE.MatchString(in.Phone) {
		jsonError(w, http.StatusBadRequest, "phone must be digits only, got %q", in.Phone)
		return
	}
	s.think(r)
	listed, reason, risk := blacklisted(in.Email)
	writeJSON(w, http.StatusOK, map[string]any{"listed": listed, "reason": reason, "risk_score": risk})
}

// yearsSince returns whole years from birth to now.
func yearsSince(birth, now time.Time) int {
	years := now.Year() - birth.Year()
	if now.Month() < birth.Month() || (now.Month() == birth.Month() && now.Day() < birth.Day()) {
		years--
	}
	return years
}

func deliver(w http.ResponseWriter, r *http.Request) {
	if !apiKey(w, r) {
		return
	}
	var in struct {
		Email     string   `json:"email"`
		Phone     string   `json:"phone"`
		BirthDate string   `json:"birth_date"`
		Age       *float64 `json:"age"`
		Type      string   `json:"type"`
		Company   string   `json:"company"`
		Checks    struct {
			EmailScore *float64 `json:"email_score"`
			PhoneValid *bool    `json:"phone_valid"`
			LineType   string   `json:"line_type"`
			RiskScore  *float64 `json:"risk_score"`
		} `json:"checks"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	c := in.Checks
	if in.Email == "" || in.BirthDate == "" || in.Age == nil || in.Type == "" ||
		c.EmailScore == nil || c.PhoneValid == nil || c.LineType == "" || c.RiskScore == nil {
		jsonError(w, http.StatusUnprocessableEntity, "email, birth_date, age, type and checks.{email_score, phone_valid, line_type, risk_score} are required")
		return
	}
	if !onlyDigitsRE.MatchString(in.Phone) {
		jsonError(w, http.StatusUnprocessableEntity, "phone must be digits only, got %q", in.Phone)
		return
	}
	dob, err := time.Parse("01/02/2006", in.BirthDate)
	if err != nil {
		jsonError(w, http.StatusUnprocessableEntity, "birth_date must be MM/DD/YYYY, got %q", in.BirthDate)
		return
	}
	// a day either way, for time zones
	if age := yearsSince(dob, time.Now()); *in.Age < float64(age-1) || *in.Age > float64(age+1) {
		jsonError(w, http.StatusUnprocessableEntity, "age %v does not match birth_date %s", *in.Age, in.BirthDate)
		return
	}
	price := 20.0
	switch in.Type {
	case "B2C":
	case "B2B":
		if in.Company == "" {
			jsonError(w, http.StatusUnprocessableEntity, "company is required for B2B leads")
			return
		}
		price = 35
	default:
		jsonError(w, http.StatusUnprocessableEntity, "type must be B2B or B2C, got %q", in.Type)
		return
	}
	if *in.Age < 18 {
		jsonError(w, http.StatusUnprocessableEntity, "applicant is under 18 (age %v)", *in.Age)
		return
	}
	if *c.PhoneValid && c.LineType == "mobile" {
		price += 5
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"id": "D-" + hash(in.Email, in.BirthDate), "status": "accepted", "price": price,
	})
}

func (s *Sandbox) validateBatch(w http.ResponseWriter, r *http.Request) {
	if !apiKey(w, r) {
		return
	}
	var in struct {
		BatchID string `json:"batch_id"`
		Leads   []struct {
			ID    string `json:"id"`
			Email string `json:"email"`
		} `json:"leads"`
	}
	if !decodeJSON(w, r, &in) || !required(w, "batch_id", in.BatchID) {
		return
	}
	if len(in.Leads) == 0 || len(in.Leads) > MaxBatch {
		jsonError(w, http.StatusBadRequest, "a batch holds 1 to %d leads, got %d", MaxBatch, len(in.Leads))
		return
	}
	seen := map[string]bool{}
	for i, l := range in.Leads {
		if l.ID == "" || l.Email == "" {
			jsonError(w, http.StatusBadRequest, "leads[%d]: id and email are required", i)
			return
		}
		if seen[l.ID] {
			jsonError(w, http.StatusBadRequest, "leads[%d]: duplicate id %q", i, l.ID)
			return
		}
		seen[l.ID] = true
	}
	s.batches.mu.Lock()
	s.batches.sizes = append(s.batches.sizes, len(in.Leads))
	s.batches.mu.Unlock()
	results := []map[string]any{}
	for _, l := range in.Leads {
		d := domain(l.Email)
		switch {
		case d == MissingDomain: // the partner lost it: no result
		case d == BlockedDomain:
			results = append(results, map[string]any{"id": l.ID, "valid": false, "score": 0, "reason": "email domain " + d + " is blacklisted"})
		case !validEmail(l.Email):
			results = append(results, map[string]any{"id": l.ID, "valid": false, "score": 0, "reason": l.Email + " is not a deliverable address"})
		default:
			results = append(results, map[string]any{"id": l.ID, "valid": true, "score": number(l.Email, 60, 99), "reason": ""})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"batch_id": in.BatchID, "results": results})
}

// flowsIndex lists the endpoints of this file for GET /.
var flowsIndex = fmt.Sprintf(`POST /checks/email           X-API-Key, JSON {email} -> {valid, score, reason}; each check answers after %s
POST /checks/phone           X-API-Key, JSON {phone} (digits only) -> {valid, line_type}
POST /checks/blacklist       X-API-Key, JSON {email, phone} -> {listed, reason, risk_score}
POST /leads/deliver          X-API-Key, JSON {email, phone, birth_date MM/DD/YYYY, age, type B2B|B2C, company, checks{…}}
POST /validate-batch         X-API-Key, JSON {batch_id, leads: [{id, email}]} -> {results: [{id, valid, score, reason}]}; leads at %s get no result
`, CheckDelay, MissingDomain)
