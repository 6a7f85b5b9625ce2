package serve

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/plumbhq/plumb/engine"
)

// answerResult has every character json.Marshal escapes for HTML.
func answerResult() *engine.Result {
	ms := engine.Duration(300 * time.Microsecond)
	return &engine.Result{Outcome: engine.Failure, Reason: "partner said <no> & left", Step: "accept", Duration: 3 * ms, Class: engine.ClassRejected,
		Steps: []engine.StepResult{
			{Name: "check", Outcome: engine.Success, Method: "POST", URL: "http://127.0.0.1:18080/blacklist/check?a=1&b=2", Status: 200, Attempts: 1, Duration: ms,
				Timeout: engine.Duration(5 * time.Second), Captured: map[string]any{"blacklisted": false, "request_id": "req-7ddfb9846b5a", "risk": 31.0}},
			{Name: "accept", Outcome: engine.Failure, Reason: "partner said <no> & left", Method: "POST", URL: "http://127.0.0.1:18080/regex/submit", Status: 200,
				Attempts: 1, Duration: ms, Captured: map[string]any{"message": "<b>no</b>\u2028", "price": 45.0}, Class: engine.ClassRejected},
		},
		Lead: map[string]any{"email": "lead1@gmail.example", "note": "a<b>&c", "<key>": json.Number("1e3")},
	}
}

// marshalResult writes what json.Marshal writes for a result (the /run
// answer and the stored results are unchanged by the hand-written encoding),
// and writeJSON answers with it.
func TestMarshalResultIsJSONMarshal(t *testing.T) {
	for _, res := range []*engine.Result{nil, {Outcome: engine.Skip}, answerResult(), {Outcome: engine.Success, Lead: map[string]any{"a": "plain"}}} {
		want, err := json.Marshal(res)
		must(t, err)
		got, err := marshalResult(res)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("marshalResult writes\n%s (%v)\njson.Marshal writes\n%s", got, err, want)
		}
		rec := httptest.NewRecorder()
		writeJSON(rec, 200, res)
		if !bytes.Equal(rec.Body.Bytes(), append(want, '\n')) {
			t.Errorf("writeJSON answers\n%s\njson.Marshal writes\n%s", rec.Body.Bytes(), want)
		}
	}
	if _, err := marshalResult(&engine.Result{Lead: map[string]any{"x": math.Inf(1)}}); err == nil {
		t.Error("an infinite number encoded")
	}
	rec := httptest.NewRecorder()
	writeJSON(rec, 200, &engine.Result{Lead: map[string]any{"x": math.NaN()}})
	if rec.Code != 500 {
		t.Errorf("a result that cannot be encoded answers %d", rec.Code)
	}
}

// BenchmarkMarshalResult: the /run answer's encoding, json.Marshal (through
// Result.MarshalJSON) against marshalResult, for a result with and without
// characters to escape for HTML.
func BenchmarkMarshalResult(b *testing.B) {
	for _, c := range []struct {
		name string
		res  *engine.Result
	}{
		{"plain", &engine.Result{Outcome: engine.Success, Duration: 300000, Steps: []engine.StepResult{{Name: "check", Outcome: engine.Success, Method: "POST",
			URL: "http://127.0.0.1:18080/blacklist/check", Status: 200, Attempts: 1, Duration: 300000, Captured: map[string]any{"risk": 31.0}}},
			Lead: map[string]any{"email": "lead1@gmail.example"}}},
		{"escaped", answerResult()},
	} {
		b.Run(c.name+"/json.Marshal", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(c.res); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/marshalResult", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := marshalResult(c.res); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
