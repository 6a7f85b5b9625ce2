package cli

import (
	"bufio"
	"io"
	"testing"
	"time"

	"github.com/plumbhq/plumb/engine"
)

// benchResult is a result of the side-by-side benchmark's three-step flow
// (bench/integration.yaml), as plumb run --output ndjson writes it.
func benchResult() *engine.Result {
	ms := engine.Duration(300 * time.Microsecond)
	return &engine.Result{Outcome: engine.Success, Duration: 3 * ms,
		Steps: []engine.StepResult{
			{Name: "check", Outcome: engine.Success, Method: "POST", URL: "http://127.0.0.1:18080/blacklist/check", Status: 200, Attempts: 1, Duration: ms,
				Timeout: engine.Duration(5 * time.Second), Captured: map[string]any{"blacklisted": false, "request_id": "req-7ddfb9846b5a", "risk": 31.0}},
			{Name: "soap", Outcome: engine.Success, Method: "POST", URL: "http://127.0.0.1:18080/soap/leads", Status: 200, Attempts: 1, Duration: ms,
				Timeout: engine.Duration(5 * time.Second), Captured: map[string]any{"score": 90.0, "status": "Success", "valid": true}},
			{Name: "accept", Outcome: engine.Success, Method: "POST", URL: "http://127.0.0.1:18080/regex/submit", Status: 200, Attempts: 1, Duration: ms,
				Timeout: engine.Duration(5 * time.Second), Captured: map[string]any{"lead_id": "17030", "price": 45.0},
				Appended: map[string]any{"partner_id": "17030", "price": 45.0}},
		},
		Lead: map[string]any{"age": "34", "email": "lead1@gmail.example", "ip_address": "203.0.113.1", "partner_id": "17030",
			"phone": "(512) 555-0001", "postal_code": "78701", "price": 45.0, "state": "TX"},
	}
}

// BenchmarkEncodeResult writes one result line of plumb run --output ndjson.
func BenchmarkEncodeResult(b *testing.B) {
	out := &jsonOutput{w: bufio.NewWriterSize(io.Discard, 32<<10), stderr: io.Discard, lines: true}
	r := benchResult()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if err := out.result(item{index: i, line: i}, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeLead reads one NDJSON lead line, as plumb run --leads does.
func BenchmarkDecodeLead(b *testing.B) {
	line := []byte(`{"email":"lead1@gmail.example","phone":"(512) 555-0001","ip_address":"203.0.113.1","postal_code":"78701","state":"TX","age":21}` + "\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeLead(line); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSummaryAdd counts one result in the run's summary.
func BenchmarkSummaryAdd(b *testing.B) {
	s := newSummary()
	r := benchResult()
	b.ReportAllocs()
	for b.Loop() {
		s.add(item{index: 1}, r)
	}
}
