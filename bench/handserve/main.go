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
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/antchfx/xmlquery"
	"github.com/antchfx/xpath"
)

const (
	apiKey       = "demo-key"
	soapUser     = "demo-user"
	soapPassword = "demo-pass"
	soapAction   = `"http://partner.com/ValidateLead"`
	timeout      = 5 * time.Second
)

// lead is one input line; its fields are written back in key order, as
// plumb writes a lead (a map), with the fields the flow appends.
type lead struct {
	Age        json.Number `json:"age"`
	Email      string      `json:"email"`
	IPAddress  string      `json:"ip_address"`
	PartnerID  string      `json:"partner_id,omitempty"`
	Phone      string      `json:"phone"`
	PostalCode string      `json:"postal_code"`
	Price      *float64    `json:"price,omitempty"`
	State      string      `json:"state"`
}

type stepResult struct {
	Name     string         `json:"name"`
	Outcome  string         `json:"outcome"`
	Reason   string         `json:"reason,omitempty"`
	Method   string         `json:"method"`
	URL      string         `json:"url"`
	Status   int            `json:"status,omitempty"`
	Attempts int            `json:"attempts"`
	Duration ms             `json:"duration_ms"`
	Captured map[string]any `json:"captured,omitempty"`
	Timeout  ms             `json:"timeout_ms"`
	Appended map[string]any `json:"appended,omitempty"`
}

type result struct {
	Outcome  string       `json:"outcome"`
	Reason   string       `json:"reason,omitempty"`
	Step     string       `json:"step,omitempty"`
	Duration ms           `json:"duration_ms"`
	Steps    []stepResult `json:"steps"`
	Lead     *lead        `json:"lead"`
}

// ms marshals a duration as milliseconds with 3 decimals, like plumb.
type ms time.Duration

func (d ms) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(d)/float64(time.Millisecond), 'f', 3, 64), nil
}

type client struct {
	http                    *http.Client
	check, soap, accept     string
	xValid, xScore, xStatus *xpath.Expr
	idRE, priceRE           *regexp.Regexp
}

func newClient(base string, conc int) *client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: max(conc, 2),
		IdleConnTimeout:     90 * time.Second,
	}
	return &client{
		http:  &http.Client{Transport: tr, Timeout: timeout},
		check: base + "/blacklist/check", soap: base + "/soap/leads", accept: base + "/regex/submit",
		xValid:  xpath.MustCompile("//*[local-name()='Result']/*[local-name()='Valid']"),
		xScore:  xpath.MustCompile("//*[local-name()='Result']/*[local-name()='Score']"),
		xStatus: xpath.MustCompile("//*[local-name()='Status']"),
		idRE:    regexp.MustCompile(`ID: (\d+)`),
		priceRE: regexp.MustCompile(`price: \$(\d+\.\d{2})`),
	}
}

func digits(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func xmlEscape(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&#34;")
		case '\'':
			b.WriteString("&#39;")
		default:
			b.WriteByte(c)
		}
	}
}

// post sends one request and fills the step's method, URL, status,
// attempts and duration.
func (c *client) post(sr *stepResult, u, ctype string, body []byte, hdr func(http.Header)) (*http.Response, error) {
	sr.Method, sr.URL, sr.Attempts, sr.Timeout = "POST", u, 1, ms(timeout)
	req, err := http.NewRequestWithContext(context.Background(), "POST", u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("User-Agent", "handwritten/1")
	if hdr != nil {
		hdr(req.Header)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	sr.Status = resp.StatusCode
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		resp.Body.Close()
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return resp, nil
}

// run does the three steps for one lead.
func (c *client) run(l *lead) (res result) {
	start := time.Now()
	res.Lead = l
	res.Steps = make([]stepResult, 0, 3)
	defer func() { res.Duration = ms(time.Since(start)) }()
	fail := func(sr stepResult, outcome string, err error) result {
		sr.Outcome, sr.Reason = outcome, err.Error()
		res.Steps = append(res.Steps, sr)
		res.Outcome, res.Reason, res.Step = outcome, sr.Reason, sr.Name
		return res
	}
	phone := digits(l.Phone)

	// 1. JSON: the blacklist check
	t0 := time.Now()
	sr := stepResult{Name: "check"}
	body, _ := json.Marshal(struct {
		Email string `json:"email"`
		Phone string `json:"phone"`
		IP    string `json:"ip"`
	}{l.Email, phone, l.IPAddress})
	resp, err := c.post(&sr, c.check, "application/json", body, func(h http.Header) { h.Set("X-API-Key", apiKey) })
	if err != nil {
		return fail(sr, "error", err)
	}
	var checked struct {
		Blacklisted bool    `json:"is_blacklisted"`
		Risk        float64 `json:"risk_score"`
	}
	err = json.NewDecoder(resp.Body).Decode(&checked)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return fail(sr, "error", err)
	}
	sr.Captured = map[string]any{"blacklisted": checked.Blacklisted, "risk": checked.Risk, "request_id": resp.Header.Get("X-Request-Id")}
	sr.Duration = ms(time.Since(t0))
	if checked.Blacklisted {
		return fail(sr, "failure", errors.New("failure_when holds: captured.blacklisted == true"))
	}
	sr.Outcome = "success"
	res.Steps = append(res.Steps, sr)

	// 2. SOAP, read with XPath
	t0 = time.Now()
	sr = stepResult{Name: "soap"}
	var x bytes.Buffer
	x.WriteString(`<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header><auth:Credentials xmlns:auth="http://partner.com/auth"><auth:Username>`)
	xmlEscape(&x, soapUser)
	x.WriteString(`</auth:Username><auth:Password>`)
	xmlEscape(&x, soapPassword)
	x.WriteString(`</auth:Password></auth:Credentials></soap:Header><soap:Body><lead:ValidateRequest xmlns:lead="http://partner.com/leads"><lead:Email>`)
	xmlEscape(&x, l.Email)
	x.WriteString(`</lead:Email><lead:Phone>`)
	xmlEscape(&x, phone)
	x.WriteString(`</lead:Phone><lead:PostalCode>`)
	xmlEscape(&x, l.PostalCode)
	x.WriteString("</lead:PostalCode></lead:ValidateRequest></soap:Body></soap:Envelope>\n")
	resp, err = c.post(&sr, c.soap, "text/xml; charset=utf-8", x.Bytes(), func(h http.Header) { h.Set("SOAPAction", soapAction) })
	if err != nil {
		return fail(sr, "error", err)
	}
	doc, err := xmlquery.Parse(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fail(sr, "error", err)
	}
	text := func(e *xpath.Expr) (string, bool) {
		n := xmlquery.QuerySelector(doc, e)
		if n == nil {
			return "", false
		}
		return n.InnerText(), true
	}
	validText, ok1 := text(c.xValid)
	scoreText, ok2 := text(c.xScore)
	status, ok3 := text(c.xStatus)
	valid, err1 := strconv.ParseBool(strings.TrimSpace(validText))
	score, err2 := strconv.ParseFloat(strings.TrimSpace(scoreText), 64)
	if !ok1 || !ok2 || !ok3 || err1 != nil || err2 != nil {
		return fail(sr, "error", errors.New("the SOAP answer lacks Valid, Score or Status"))
	}
	sr.Captured = map[string]any{"valid": valid, "score": score, "status": status}
	sr.Duration = ms(time.Since(t0))
	if !valid {
		return fail(sr, "failure", errors.New("failure_when holds: captured.valid == false"))
	}
	sr.Outcome = "success"
	res.Steps = append(res.Steps, sr)

	// 3. form POST answered in text, read with regexes
	t0 = time.Now()
	sr = stepResult{Name: "accept"}
	form := "email=" + url.QueryEscape(l.Email) + "&state=" + url.QueryEscape(l.State) + "&age=" + url.QueryEscape(l.Age.String())
	resp, err = c.post(&sr, c.accept, "application/x-www-form-urlencoded", []byte(form), func(h http.Header) { h.Set("X-API-Key", apiKey) })
	if err != nil {
		return fail(sr, "error", err)
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fail(sr, "error", err)
	}
	id, pm := c.idRE.FindSubmatch(answer), c.priceRE.FindSubmatch(answer)
	if id == nil || pm == nil {
		return fail(sr, "error", fmt.Errorf("unexpected answer %q", answer))
	}
	price, err := strconv.ParseFloat(string(pm[1]), 64)
	if err != nil {
		return fail(sr, "error", err)
	}
	l.PartnerID, l.Price = string(id[1]), &price
	sr.Captured = map[string]any{"lead_id": l.PartnerID, "price": price}
	sr.Appended = map[string]any{"partner_id": l.PartnerID, "price": price}
	sr.Duration = ms(time.Since(t0))
	sr.Outcome = "success"
	res.Steps = append(res.Steps, sr)
	res.Outcome = "success"
	return res
}

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
	c       *client
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
	lead *lead
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

func statusFor(res *result) int {
	switch res.Outcome {
	case "success", "skip":
		return http.StatusOK
	case "failure":
		return http.StatusUnprocessableEntity
	}
	return http.StatusBadGateway
}

// runOne runs one lead under the concurrency limit and encodes its result.
func (s *server) runOne(l *lead) (int, []byte) {
	s.sem <- struct{}{}
	res := s.c.run(l)
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
	l := new(lead)
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
	var leads []*lead
	for i, line := range bytes.Split(body, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		l := new(lead)
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
		c:       newClient(*base, *conc),
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
