package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/antchfx/xmlquery"
)

// The benchmark flow: a JSON request answered in JSON, a SOAP call answered
// with a SOAP envelope read by XPath, and a text answer read by a regex.
const benchFlow = `version: 1
name: bench
settings: { base_url: {}, api_key: { secret: true } }
steps:
  - name: score
    request:
      method: POST
      url: "{{settings.base_url}}/score"
      headers: { X-API-Key: "{{settings.api_key}}" }
      body: { json: { email: "{{lead.email}}", phone: "{{ lead.phone | digits }}", state: "{{lead.state}}" } }
    capture: { score: { json: data.score, type: number }, id: { json: meta.request_id } }
  - name: soap
    request:
      url: "{{settings.base_url}}/soap"
      headers: { SOAPAction: "http://partner.com/ValidateLead" }
      body:
        xml: |
          <soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><v:ValidateRequest xmlns:v="http://partner.com/leads"><v:Email>{{lead.email}}</v:Email><v:Score>{{steps.score.score}}</v:Score></v:ValidateRequest></soap:Body></soap:Envelope>
    namespaces: { v: "http://partner.com/leads" }
    capture: { valid: { xpath: "//v:Valid", type: bool }, status: { xpath: "//v:Status" } }
  - name: accept
    request: { url: "{{settings.base_url}}/accept", query: { ref: "{{steps.score.id}}" } }
    capture: { lead_id: { regex: 'ID: (\d+)' }, price: { regex: 'price: \$(\d+\.\d{2})', type: number } }
    append: { partner_id: "{{captured.lead_id}}", price: "{{captured.price}}" }
`

func benchServer(b testing.TB) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/score", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"success","data":{"validated":true,"score":85,"details":{"email_valid":true}},"meta":{"request_id":"abc123","processing_time":0.234}}`)
	})
	mux.HandleFunc("/soap", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, soapEnvelope)
	})
	mux.HandleFunc("/accept", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "Lead accepted with ID: 12345 and price: $45.00")
	})
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	return srv
}

var benchLead = map[string]any{"email": "ann@example.com", "phone": "(512) 555-0100", "state": "TX"}

// handWritten is the same flow written directly with net/http,
// encoding/json, xmlquery and regexp: the baseline plumb is measured
// against.
type handWritten struct {
	client      *http.Client
	base, key   string
	idRE, price *regexp.Regexp
}

func (h *handWritten) run(ctx context.Context, lead map[string]any) (map[string]any, error) {
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, lead["phone"].(string))
	body, _ := json.Marshal(map[string]any{"email": lead["email"], "phone": digits, "state": lead["state"]})
	req, _ := http.NewRequestWithContext(ctx, "POST", h.base+"/score", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", h.key)
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, err
	}
	var scored struct {
		Data struct{ Score float64 }
		Meta struct {
			RequestID string `json:"request_id"`
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&scored)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var x strings.Builder
	x.WriteString(`<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><v:ValidateRequest xmlns:v="http://partner.com/leads"><v:Email>`)
	xmlEscape(&x, lead["email"].(string))
	fmt.Fprintf(&x, `</v:Email><v:Score>%v</v:Score></v:ValidateRequest></soap:Body></soap:Envelope>`, scored.Data.Score)
	req, _ = http.NewRequestWithContext(ctx, "GET", h.base+"/soap", strings.NewReader(x.String()))
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", "http://partner.com/ValidateLead")
	resp, err = h.client.Do(req)
	if err != nil {
		return nil, err
	}
	doc, err := xmlquery.Parse(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	valid := xmlquery.FindOne(doc, "//*[local-name()='Valid']")
	if valid == nil {
		return nil, fmt.Errorf("no Valid")
	}
	resp, err = h.client.Get(h.base + "/accept?ref=" + scored.Meta.RequestID)
	if err != nil {
		return nil, err
	}
	text, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	out := map[string]any{"valid": valid.InnerText() == "true"}
	if m := h.idRE.FindSubmatch(text); m != nil {
		out["partner_id"] = string(m[1])
	}
	if m := h.price.FindSubmatch(text); m != nil {
		out["price"] = string(m[1])
	}
	return out, nil
}

func xmlEscape(b *strings.Builder, s string) {
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		default:
			b.WriteRune(r)
		}
	}
}

func benchPlan(b testing.TB, srv *httptest.Server) (*Plan, Settings) {
	p, err := Parse("bench.yaml", []byte(benchFlow))
	if err != nil {
		b.Fatal(err)
	}
	s, err := p.Settings(map[string]any{"base_url": srv.URL, "api_key": "k"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return p, s
}

func newHand(srv *httptest.Server) *handWritten {
	return &handWritten{client: &http.Client{Transport: newTransport(nil)}, base: srv.URL, key: "k",
		idRE: regexp.MustCompile(`ID: (\d+)`), price: regexp.MustCompile(`price: \$(\d+\.\d{2})`)}
}

// TestBenchFlowsAgree keeps the baseline honest: both do the same work.
func TestBenchFlowsAgree(t *testing.T) {
	srv := benchServer(t)
	p, s := benchPlan(t, srv)
	r := p.Run(context.Background(), benchLead, s)
	wantOutcome(t, r, Success)
	h, err := newHand(srv).run(context.Background(), benchLead)
	if err != nil {
		t.Fatal(err)
	}
	if r.Lead["partner_id"] != h["partner_id"] || r.Steps[1].Captured["valid"] != h["valid"] || fmt.Sprint(r.Lead["price"]) != "45" || h["price"] != "45.00" {
		t.Fatalf("plumb %v / hand %v", r.Lead, h)
	}
}

// BenchmarkFlow runs the 3-step flow through plumb and hand-written, one
// lead per op; compare their ns/op (BenchmarkFlowRatio prints the ratio).
func BenchmarkFlow(b *testing.B) {
	srv := benchServer(b)
	b.Run("plumb", func(b *testing.B) {
		p, s := benchPlan(b, srv)
		b.ReportAllocs()
		for b.Loop() {
			if r := p.Run(context.Background(), benchLead, s); r.Outcome != Success {
				b.Fatal(r.Reason)
			}
		}
	})
	b.Run("handwritten", func(b *testing.B) {
		h := newHand(srv)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.run(context.Background(), benchLead); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkFlowRatio alternates plumb and hand-written leads in one loop
// and reports both per-lead times and plumb's throughput relative to the
// hand-written client (1.0 = as fast).
func BenchmarkFlowRatio(b *testing.B) {
	srv := benchServer(b)
	p, s := benchPlan(b, srv)
	h := newHand(srv)
	var tp, th time.Duration
	for b.Loop() {
		t0 := time.Now()
		r := p.Run(context.Background(), benchLead, s)
		t1 := time.Now()
		hr, err := h.run(context.Background(), benchLead)
		tp += t1.Sub(t0)
		th += time.Since(t1)
		// a ratio of two flows that did not do the same work means nothing
		if r.Outcome != Success || err != nil {
			b.Fatalf("plumb: %s %s; hand-written: %v", r.Outcome, r.Reason, err)
		}
		if r.Lead["partner_id"] != hr["partner_id"] || r.Steps[1].Captured["valid"] != hr["valid"] || fmt.Sprint(r.Lead["price"]) != "45" || hr["price"] != "45.00" {
			b.Fatalf("the flows disagree: plumb %v / hand-written %v", r.Lead, hr)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(tp.Nanoseconds())/n, "plumb-ns/lead")
	b.ReportMetric(float64(th.Nanoseconds())/n, "hand-ns/lead")
	b.ReportMetric(float64(th)/float64(tp), "throughput-ratio")
}

// BenchmarkBuild measures rendering one step's request (no I/O): the
// engine's per-step overhead before the network.
func BenchmarkBuild(b *testing.B) {
	p, s := benchPlan(b, benchServer(b))
	st := p.steps[0]
	b.ReportAllocs()
	for b.Loop() {
		f := &flow{lead: benchLead, vars: map[string]any{}, done: map[string]any{}}
		if _, err := p.build(context.Background(), st, f.data(s)); err != nil {
			b.Fatal(err)
		}
	}
}
