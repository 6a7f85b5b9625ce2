// Package handflow is the hand-written three-step flow of bench/ — the
// baseline plumb is measured against — shared by the hand-written batch
// program (bench/handwritten) and the hand-written service
// (bench/handserve): JSON check → SOAP/XPath validate → text/regex accept,
// with one pooled client, XPath and regexes compiled once, answers decoded
// as streams, and results in plumb's JSON shape.
package handflow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
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
	Index    int          `json:"index,omitempty"` // handwritten's NDJSON lines
	Line     int          `json:"line,omitempty"`
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

// Lead, Result, StepResult and Client are the flow's types, for the
// programs that run it.
type (
	Lead       = lead
	Result     = result
	StepResult = stepResult
	Client     = client
)

// NewClient makes the flow's client against the sandbox at base, pooled for
// conc concurrent leads.
func NewClient(base string, conc int) *Client { return newClient(base, conc) }

// Run runs the three steps for one lead.
func (c *client) Run(l *Lead) Result { return c.run(l) }
