// Package sandbox is a fake partner API for plumb's examples: one
// http.Handler that serves every endpoint the integrations in examples/ call.
//
// It behaves like a careful real partner: it checks credentials, content
// types and required fields, answers 4xx when something is wrong, and its
// answers depend on the lead (blocked domains are blacklisted, minors are
// rejected, and so on), so the examples exercise the engine for real. It is
// deterministic. The only state it keeps is per handler (never global): the
// OAuth2 tokens it issued, and per-lead try counters of the endpoints that
// fail a lead's first try and answer the next (/enrich/company scenarios,
// token revocation at /secure/leads); those cycle, so running the same
// leads again gives the same results. For tests, a Sandbox from New also
// counts the /checks/* requests in flight at once and the batches
// /validate-batch received; they do not change its answers. Its
// ActuallyCare-like API (actuallycare.go) keeps its leads and the CRM's
// contacts per Sandbox, so a sync's writes are seen by the next request.
//
// The credentials it accepts are the demo values of the examples'
// settings.yaml files (exported below). `plumb run --sandbox` starts it on
// 127.0.0.1 and points the integration's base_url setting at it;
// `plumb sandbox` serves it in the foreground.
package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The demo credentials the sandbox accepts.
const (
	APIKey          = "demo-key"    // X-API-Key of the blacklist, api_key query of text-split
	PartnerUser     = "demo-user"   // basic auth user of partner-submit and SOAP user of soap-validate
	PartnerPassword = "demo-pass"   // password matching PartnerUser
	ClientID        = "demo-client" // OAuth2 client_id of token-then-call
	ClientSecret    = "demo-secret" // client_secret matching ClientID
	SOAPAction      = "http://partner.com/ValidateLead"
)

// Domains with a special meaning in lead emails.
const (
	BlockedDomain   = "blocked.example"   // blacklisted by /blacklist/check
	DuplicateDomain = "duplicate.example" // rejected as duplicates by /partner/leads and /regex/submit
	InvalidDomain   = "invalid.example"   // invalid for /soap/leads, /text/validate and /validate
	VerifyDomain    = "verify.example"    // needs verification at /validate
	MissingDomain   = "missing.example"   // left out of /validate-batch answers
)

const maxBody = 1 << 20

// Handler returns the sandbox API. Every call returns a new, independent
// handler.
func Handler() http.Handler { return New() }

// Sandbox is one independent sandbox API. Besides serving it, it counts
// what the flow examples' tests check: how many /checks/* requests were in
// flight at once and the size of every batch /validate-batch received.
type Sandbox struct {
	mux     *http.ServeMux
	checks  inflight
	batches batchLog
	ac      *ActuallyCare
}

// New returns a new, independent sandbox.
func New() *Sandbox {
	s := &Sandbox{mux: http.NewServeMux(), ac: newActuallyCare()}
	mux := s.mux
	s.ac.register(mux)
	mux.HandleFunc("POST /blacklist/check", blacklist)
	mux.HandleFunc("GET /v2/leads/{state}/validate", locate)
	mux.HandleFunc("POST /premium/validate", tier("premium"))
	mux.HandleFunc("POST /regional/validate", tier("regional"))
	mux.HandleFunc("POST /standard/validate", tier("standard"))
	mux.HandleFunc("POST /partner/leads", partnerSubmit)
	mux.HandleFunc("POST /soap/leads", soapValidate)
	mux.HandleFunc("POST /text/validate", textValidate)
	mux.HandleFunc("POST /regex/submit", regexSubmit)
	mux.HandleFunc("POST /auth/token", token)
	mux.HandleFunc("POST /validate", validate)
	mux.HandleFunc("POST /verify", verify)
	newEnrich().register(mux)
	newOAuthServer().register(mux)
	mux.HandleFunc("POST /signed/leads", signedLeads)
	mux.HandleFunc("POST /rotate/leads", rotateLeads)
	s.registerFlows(mux)
	mux.HandleFunc("GET /{$}", index)
	return s
}

// Handler returns s itself, as an http.Handler.
func (s *Sandbox) Handler() http.Handler { return s }

func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func index(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, `plumb sandbox: a fake partner API for the integrations in examples/

POST /blacklist/check        X-API-Key, JSON {email, phone, ip}
GET  /v2/leads/{state}/validate?source=&type=&test=
POST /premium|regional|standard/validate   JSON {email, state, value}
POST /partner/leads          basic auth, nested JSON lead
POST /soap/leads             SOAP 1.1 ValidateLead
POST /text/validate?api_key= form {email, phone}   -> STATUS|SCORE|CODE|REF
POST /regex/submit           form {email, state, age} -> "Lead accepted with ID: … and price: $…"
POST /auth/token             form client_credentials -> {access_token}
POST /validate, /verify      Authorization: Bearer, JSON {email}
`+enrichIndex+oauthIndex+signedIndex+flowsIndex+actuallyCareIndex)
}

// ---- helpers ----

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func jsonError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]any{"error": fmt.Sprintf(format, args...)})
}

// apiKey checks r's X-API-Key; it answers the error itself and reports
// false when the key is wrong or missing.
func apiKey(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("X-API-Key") != APIKey {
		jsonError(w, http.StatusUnauthorized, "invalid or missing X-API-Key")
		return false
	}
	return true
}

// required checks that the body field name has a value; it answers the
// error itself and reports false when it has none.
func required(w http.ResponseWriter, name, value string) bool {
	if value == "" {
		jsonError(w, http.StatusBadRequest, "%s is required", name)
		return false
	}
	return true
}

// mediaType reports whether r's Content-Type is one of want.
func mediaType(r *http.Request, want ...string) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return false
	}
	for _, w := range want {
		if mt == w {
			return true
		}
	}
	return false
}

// decodeJSON reads r's JSON body into v strictly; it answers the error itself
// and reports false when the body is unusable.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if !mediaType(r, "application/json") {
		jsonError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json, got %q", r.Header.Get("Content-Type"))
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		jsonError(w, http.StatusBadRequest, "invalid JSON body: %v", err)
		return false
	}
	return true
}

// parseForm reads r's urlencoded body; it answers the error itself.
func parseForm(w http.ResponseWriter, r *http.Request, plain bool) bool {
	bad := func(status int, msg string) bool {
		if plain {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(status)
			fmt.Fprintf(w, "ERROR|0|%s|\n", msg)
		} else {
			jsonError(w, status, "%s", msg)
		}
		return false
	}
	if !mediaType(r, "application/x-www-form-urlencoded") {
		return bad(http.StatusUnsupportedMediaType, "FORM_EXPECTED")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		return bad(http.StatusBadRequest, "BAD_FORM")
	}
	return true
}

func domain(email string) string {
	_, d, ok := strings.Cut(email, "@")
	if !ok {
		return ""
	}
	return strings.ToLower(d)
}

var emailRE = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)

func validEmail(email string) bool {
	return emailRE.MatchString(email) && domain(email) != InvalidDomain
}

var digitsRE = regexp.MustCompile(`^\d{10,11}$`)

// hash returns a short deterministic hex digest of parts.
func hash(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:])[:12]
}

// number derives a deterministic number in [lo, hi] from s.
func number(s string, lo, hi int) int {
	sum := sha256.Sum256([]byte(s))
	return lo + int(sum[0])%(hi-lo+1)
}

// ---- blacklist (seed: Basic HTTP Request) ----

func blacklist(w http.ResponseWriter, r *http.Request) {
	if !apiKey(w, r) {
		return
	}
	var in struct {
		Email string `json:"email"`
		Phone string `json:"phone"`
		IP    string `json:"ip"`
	}
	if !decodeJSON(w, r, &in) || !required(w, "email", in.Email) {
		return
	}
	if in.Phone != "" && !digitsRE.MatchString(in.Phone) {
		jsonError(w, http.StatusBadRequest, "phone must be 10 or 11 digits, got %q", in.Phone)
		return
	}
	w.Header().Set("X-Request-Id", "req-"+hash(in.Email, in.Phone))
	listed, reason, risk := blacklisted(in.Email)
	writeJSON(w, http.StatusOK, map[string]any{"is_blacklisted": listed, "reason": reason, "risk_score": risk})
}

// blacklisted is the verdict of the blacklist APIs (this one and the flow
// check) on an email: listed when its domain is BlockedDomain, with the
// reason and a risk score.
func blacklisted(email string) (listed bool, reason string, risk int) {
	if d := domain(email); d == BlockedDomain {
		return true, "email domain " + d + " is blacklisted", 95
	}
	return false, "", number(email, 1, 40)
}

// ---- regional router (seed: Dynamic URL Construction, Dynamic API Selection) ----

const stateCodes = " AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC "

// isState reports whether s is a US state code.
func isState(s string) bool { return len(s) == 2 && strings.Contains(stateCodes, " "+s+" ") }

func locate(w http.ResponseWriter, r *http.Request) {
	st := r.PathValue("state")
	if !isState(st) {
		jsonError(w, http.StatusNotFound, "unknown state %q", st)
		return
	}
	q := r.URL.Query()
	for _, k := range []string{"source", "type", "test"} {
		if q.Get(k) == "" {
			jsonError(w, http.StatusBadRequest, "query parameter %s is required", k)
			return
		}
	}
	test, err := strconv.ParseBool(q.Get("test"))
	if err != nil {
		jsonError(w, http.StatusBadRequest, "test must be true or false, got %q", q.Get("test"))
		return
	}
	region := "standard"
	if st == "CA" || st == "TX" {
		region = "regional"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"state": st, "region": region, "source": q.Get("source"), "type": q.Get("type"), "test": test,
		"accepts": q.Get("type") != "boat",
	})
}

func tier(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !apiKey(w, r) {
			return
		}
		var in struct {
			Email string  `json:"email"`
			State string  `json:"state"`
			Value float64 `json:"value"`
		}
		if !decodeJSON(w, r, &in) {
			return
		}
		if in.Email == "" || in.State == "" {
			jsonError(w, http.StatusBadRequest, "email and state are required")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"tier": name, "valid": validEmail(in.Email), "state": in.State, "value": in.Value,
			"score": number(name+in.Email, 50, 99),
		})
	}
}

// ---- partner submit (seed: Complex Request Bodies) ----

type partnerLead struct {
	Lead struct {
		Personal struct {
			FirstName   string `json:"firstName"`
			LastName    string `json:"lastName"`
			DateOfBirth string `json:"dateOfBirth"`
		} `json:"personal"`
		Contact struct {
			Emails []struct {
				Address  string `json:"address"`
				Type     string `json:"type"`
				Verified *bool  `json:"verified"`
			} `json:"emails"`
			Phones []struct {
				Number  string `json:"number"`
				Type    string `json:"type"`
				Carrier string `json:"carrier"`
			} `json:"phones"`
		} `json:"contact"`
		Metadata struct {
			Source    string `json:"source"`
			Timestamp string `json:"timestamp"`
			IPAddress string `json:"ipAddress"`
			UserAgent string `json:"userAgent"`
		} `json:"metadata"`
	} `json:"lead"`
	Options struct {
		Validate *bool `json:"validate"`
		Enhance  *bool `json:"enhance"`
		Dedupe   *bool `json:"dedupe"`
	} `json:"options"`
}

func basicAuth(w http.ResponseWriter, r *http.Request) bool {
	u, p, ok := r.BasicAuth()
	if !ok || u != PartnerUser || p != PartnerPassword {
		w.Header().Set("WWW-Authenticate", `Basic realm="partner"`)
		jsonError(w, http.StatusUnauthorized, "invalid credentials")
		return false
	}
	return true
}

func partnerSubmit(w http.ResponseWriter, r *http.Request) {
	if !basicAuth(w, r) {
		return
	}
	var in partnerLead
	if !decodeJSON(w, r, &in) {
		return
	}
	l := in.Lead
	var missing []string
	need := func(name, v string) {
		if v == "" {
			missing = append(missing, name)
		}
	}
	need("lead.personal.firstName", l.Personal.FirstName)
	need("lead.personal.lastName", l.Personal.LastName)
	need("lead.metadata.source", l.Metadata.Source)
	if len(l.Contact.Emails) == 0 || l.Contact.Emails[0].Address == "" {
		missing = append(missing, "lead.contact.emails[0].address")
	} else if l.Contact.Emails[0].Verified == nil {
		missing = append(missing, "lead.contact.emails[0].verified")
	}
	if len(l.Contact.Phones) == 0 || l.Contact.Phones[0].Number == "" {
		missing = append(missing, "lead.contact.phones[0].number")
	}
	if in.Options.Validate == nil || in.Options.Enhance == nil || in.Options.Dedupe == nil {
		missing = append(missing, "options.validate/enhance/dedupe")
	}
	if len(missing) > 0 {
		jsonError(w, http.StatusUnprocessableEntity, "missing fields: %s", strings.Join(missing, ", "))
		return
	}
	if _, err := time.Parse("01/02/2006", l.Personal.DateOfBirth); err != nil {
		jsonError(w, http.StatusUnprocessableEntity, "dateOfBirth must be MM/DD/YYYY, got %q", l.Personal.DateOfBirth)
		return
	}
	if !digitsRE.MatchString(l.Contact.Phones[0].Number) {
		jsonError(w, http.StatusUnprocessableEntity, "phone number must be digits only, got %q", l.Contact.Phones[0].Number)
		return
	}
	if l.Metadata.Timestamp != "" {
		if _, err := time.Parse(time.RFC3339, l.Metadata.Timestamp); err != nil {
			jsonError(w, http.StatusUnprocessableEntity, "timestamp must be RFC 3339, got %q", l.Metadata.Timestamp)
			return
		}
	}
	email := l.Contact.Emails[0].Address
	if *in.Options.Dedupe && domain(email) == DuplicateDomain {
		jsonError(w, http.StatusConflict, "duplicate lead: %s was submitted before", email)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"id": "P-" + hash(email, l.Personal.LastName), "status": "accepted",
		"verified": *l.Contact.Emails[0].Verified,
	})
}

// ---- SOAP (seed: XML Requests, XML Response Parsing) ----

const (
	nsSOAP  = "http://schemas.xmlsoap.org/soap/envelope/"
	nsAuth  = "http://partner.com/auth"
	nsLeads = "http://partner.com/leads"
)

type soapEnvelope struct {
	XMLName xml.Name `xml:"http://schemas.xmlsoap.org/soap/envelope/ Envelope"`
	Header  struct {
		Credentials *struct {
			Username string `xml:"http://partner.com/auth Username"`
			Password string `xml:"http://partner.com/auth Password"`
		} `xml:"http://partner.com/auth Credentials"`
	} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Header"`
	Body struct {
		Request *struct {
			Email      string `xml:"http://partner.com/leads Email"`
			Phone      string `xml:"http://partner.com/leads Phone"`
			PostalCode string `xml:"http://partner.com/leads PostalCode"`
		} `xml:"http://partner.com/leads ValidateRequest"`
	} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
}

func soapFault(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="%s"><soap:Body><soap:Fault><faultcode>soap:%s</faultcode><faultstring>%s</faultstring></soap:Fault></soap:Body></soap:Envelope>
`, nsSOAP, code, xmlEscape(msg))
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

var postalRE = regexp.MustCompile(`^\d{5}(-\d{4})?$`)

func soapValidate(w http.ResponseWriter, r *http.Request) {
	if !mediaType(r, "text/xml") {
		soapFault(w, http.StatusUnsupportedMediaType, "Client", "Content-Type must be text/xml")
		return
	}
	if strings.Trim(r.Header.Get("SOAPAction"), `"`) != SOAPAction {
		soapFault(w, http.StatusBadRequest, "Client", "SOAPAction must be "+SOAPAction)
		return
	}
	var env soapEnvelope
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err == nil {
		err = xml.Unmarshal(body, &env)
	}
	if err != nil {
		soapFault(w, http.StatusBadRequest, "Client", "malformed envelope: "+err.Error())
		return
	}
	c := env.Header.Credentials
	if c == nil || c.Username != PartnerUser || c.Password != PartnerPassword {
		soapFault(w, http.StatusUnauthorized, "Client", "authentication failed")
		return
	}
	req := env.Body.Request
	if req == nil || req.Email == "" {
		soapFault(w, http.StatusBadRequest, "Client", "ValidateRequest with an Email is required")
		return
	}
	emailOK := validEmail(req.Email)
	phoneOK := digitsRE.MatchString(req.Phone)
	postalOK := postalRE.MatchString(req.PostalCode)
	status, score := "Success", number(req.Email, 60, 99)
	if !emailOK || !phoneOK || !postalOK {
		status, score = "Rejected", number(req.Email, 1, 30)
	}
	word := func(ok bool) string {
		if ok {
			return "valid"
		}
		return "invalid"
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="%s">
  <soap:Body>
    <v:ValidateResponse xmlns:v="%s">
      <v:Status>%s</v:Status>
      <v:Result>
        <v:Valid>%t</v:Valid>
        <v:Score>%d</v:Score>
        <v:EmailStatus>%s</v:EmailStatus>
        <v:PhoneStatus>%s</v:PhoneStatus>
        <v:PostalStatus>%s</v:PostalStatus>
      </v:Result>
    </v:ValidateResponse>
  </soap:Body>
</soap:Envelope>
`, nsSOAP, nsLeads, status, status == "Success", score, word(emailOK), word(phoneOK), word(postalOK))
}

// ---- text split (seed: Text Response Parsing) ----

func textValidate(w http.ResponseWriter, r *http.Request) {
	reply := func(status int, line string) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintln(w, line)
	}
	if r.URL.Query().Get("api_key") != APIKey {
		reply(http.StatusUnauthorized, "ERROR|0|BAD_API_KEY|")
		return
	}
	if !parseForm(w, r, true) {
		return
	}
	email, phone := r.PostForm.Get("email"), r.PostForm.Get("phone")
	if email == "" || phone == "" {
		reply(http.StatusBadRequest, "ERROR|0|MISSING_FIELD|")
		return
	}
	ref := strings.ToUpper(hash(email, phone)[:6])
	switch {
	case !validEmail(email):
		reply(http.StatusOK, fmt.Sprintf("FAILURE|%d|INVALID_EMAIL|%s", number(email, 1, 20), ref))
	case !digitsRE.MatchString(phone):
		reply(http.StatusOK, fmt.Sprintf("FAILURE|%d|INVALID_PHONE|%s", number(email, 1, 20), ref))
	default:
		reply(http.StatusOK, fmt.Sprintf("SUCCESS|%d|VALID|%s", number(email, 70, 99), ref))
	}
}

// ---- regex (seed: Regex Parsing) ----

func regexSubmit(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-API-Key") != APIKey {
		http.Error(w, "Unauthorized: bad API key", http.StatusUnauthorized)
		return
	}
	if !parseForm(w, r, true) {
		return
	}
	email, state, ageText := r.PostForm.Get("email"), r.PostForm.Get("state"), r.PostForm.Get("age")
	age, err := strconv.Atoi(ageText)
	if email == "" || !isState(state) || err != nil {
		http.Error(w, "Bad request: email, a US state and a whole-number age are required", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch {
	case age < 18:
		fmt.Fprintf(w, "Lead rejected: applicant is under 18 (age %d)\n", age)
	case domain(email) == DuplicateDomain:
		fmt.Fprintln(w, "Lead rejected: duplicate")
	default:
		price := 45.00
		if age < 25 {
			price = 30.00
		}
		if state == "CA" || state == "NY" {
			price += 12.50
		}
		id := 10000 + number(email, 0, 255)*37
		fmt.Fprintf(w, "Lead accepted with ID: %d and price: $%.2f\n", id, price)
	}
}

// ---- token then call (seed: Multi-Step Flows, OAuth 2.0) ----

// Token is the access token the sandbox issues to ClientID.
func Token() string { return "tok-" + hash(ClientID, ClientSecret) }

func token(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r, false) {
		return
	}
	f := r.PostForm
	if f.Get("grant_type") != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "unsupported_grant_type"})
		return
	}
	if f.Get("client_id") != ClientID || f.Get("client_secret") != ClientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"access_token": Token(), "token_type": "Bearer", "expires_in": 3600})
}

func bearer(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("Authorization") != "Bearer "+Token() {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		jsonError(w, http.StatusUnauthorized, "invalid or missing bearer token")
		return false
	}
	return true
}

func validate(w http.ResponseWriter, r *http.Request) {
	if !bearer(w, r) {
		return
	}
	var in struct {
		Email string `json:"email"`
	}
	if !decodeJSON(w, r, &in) || !required(w, "email", in.Email) {
		return
	}
	ok := validEmail(in.Email)
	writeJSON(w, http.StatusOK, map[string]any{
		"valid": ok, "needs_verification": ok && domain(in.Email) == VerifyDomain,
		"score": map[bool]int{true: number(in.Email, 60, 99), false: 0}[ok],
	})
}

func verify(w http.ResponseWriter, r *http.Request) {
	if !bearer(w, r) {
		return
	}
	var in struct {
		Email string `json:"email"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"verified": validEmail(in.Email), "method": "mailbox-ping"})
}
