package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/plumbhq/plumb/engine"
)

// TestNDJSONOutputUnchanged (issue 21): result lines are written by hand
// (engine.Result.AppendJSON), byte for byte what encoding/json wrote for
// {index, line, *engine.Result} with HTML escaping off, which these lines
// were recorded from.
func TestNDJSONOutputUnchanged(t *testing.T) {
	tricky := &engine.Result{Outcome: engine.Error, Reason: "partner said <no> & \"bye\"\n\x01\u2028", Step: "b", Class: engine.ClassStatus,
		Duration: engine.Duration(1234567 * time.Nanosecond),
		Steps: []engine.StepResult{
			{Name: "a", Outcome: engine.Success, Attempts: 1, Captured: map[string]any{}, Tried: []string{},
				Appended: map[string]any{"z": nil, "a": []any{1.5, "é\xff", json.Number("12e3"), true, map[string]any{}}}},
			{Name: "b", Outcome: engine.Error, Reason: "status 503", Method: "POST", URL: "http://h/x?a=1&b=<2>", Status: 503, Attempts: 3,
				Duration: engine.Duration(-1), Fallback: "cache", Tried: []string{"request: 503", "cache: miss"}, Variant: 2, Timeout: engine.Duration(time.Second),
				Rule: "retry (default rule)", Waited: engine.Duration(5 * time.Millisecond), Cache: "miss", Batch: "b1", Class: engine.ClassStatus,
				Captured: map[string]any{"big": 1e21, "small": 1e-7, "neg": math.Copysign(0, -1), "max": math.MaxFloat64, "n": 100.0, "k\u00e9y": "v\t", "": "empty"}},
		},
		Lead: map[string]any{"nested": map[string]any{"deep": []any{nil, []any{}, map[string]any{"x": "<y>"}}}, "n": json.Number("-0.5E+10")},
	}
	var buf bytes.Buffer
	o := &jsonOutput{w: bufio.NewWriter(&buf), lines: true}
	for _, c := range []struct {
		it item
		r  *engine.Result
	}{
		{item{index: 1, line: 2}, benchResult()},
		{item{index: 7}, tricky},
		{item{index: 3, line: 9}, &engine.Result{Outcome: engine.Skip}},
		{item{index: 4, line: 5}, nil},
	} {
		if err := o.result(c.it, c.r); err != nil {
			t.Fatal(err)
		}
	}
	o.w.Flush()
	want := "{\"index\":1,\"line\":2,\"outcome\":\"success\",\"duration_ms\":0.900,\"steps\":[{\"name\":\"check\",\"outcome\":\"success\",\"method\":\"POST\",\"url\":\"http://127.0.0.1:18080/blacklist/check\",\"status\":200,\"attempts\":1,\"duration_ms\":0.300,\"captured\":{\"blacklisted\":false,\"request_id\":\"req-7ddfb9846b5a\",\"risk\":31},\"timeout_ms\":5000.000},{\"name\":\"soap\",\"outcome\":\"success\",\"method\":\"POST\",\"url\":\"http://127.0.0.1:18080/soap/leads\",\"status\":200,\"attempts\":1,\"duration_ms\":0.300,\"captured\":{\"score\":90,\"status\":\"Success\",\"valid\":true},\"timeout_ms\":5000.000},{\"name\":\"accept\",\"outcome\":\"success\",\"method\":\"POST\",\"url\":\"http://127.0.0.1:18080/regex/submit\",\"status\":200,\"attempts\":1,\"duration_ms\":0.300,\"captured\":{\"lead_id\":\"17030\",\"price\":45},\"timeout_ms\":5000.000,\"appended\":{\"partner_id\":\"17030\",\"price\":45}}],\"lead\":{\"age\":\"34\",\"email\":\"lead1@gmail.example\",\"ip_address\":\"203.0.113.1\",\"partner_id\":\"17030\",\"phone\":\"(512) 555-0001\",\"postal_code\":\"78701\",\"price\":45,\"state\":\"TX\"}}\n" +
		"{\"index\":7,\"outcome\":\"error\",\"reason\":\"partner said <no> & \\\"bye\\\"\\n\\u0001\\u2028\",\"step\":\"b\",\"duration_ms\":1.235,\"steps\":[{\"name\":\"a\",\"outcome\":\"success\",\"attempts\":1,\"duration_ms\":0.000,\"appended\":{\"a\":[1.5,\"é\\ufffd\",12e3,true,{}],\"z\":null}},{\"name\":\"b\",\"outcome\":\"error\",\"reason\":\"status 503\",\"method\":\"POST\",\"url\":\"http://h/x?a=1&b=<2>\",\"status\":503,\"attempts\":3,\"duration_ms\":-0.000,\"captured\":{\"\":\"empty\",\"big\":1e+21,\"kéy\":\"v\\t\",\"max\":1.7976931348623157e+308,\"n\":100,\"neg\":-0,\"small\":1e-7},\"fallback\":\"cache\",\"tried\":[\"request: 503\",\"cache: miss\"],\"variant\":2,\"timeout_ms\":1000.000,\"rule\":\"retry (default rule)\",\"waited_ms\":5.000,\"cache\":\"miss\",\"batch\":\"b1\",\"class\":\"status\"}],\"lead\":{\"n\":-0.5E+10,\"nested\":{\"deep\":[null,[],{\"x\":\"<y>\"}]}},\"class\":\"status\"}\n" +
		"{\"index\":3,\"line\":9,\"outcome\":\"skip\",\"duration_ms\":0.000,\"steps\":null,\"lead\":null}\n" +
		"{\"index\":4,\"line\":5}\n"
	if got := buf.String(); got != want {
		t.Errorf("ndjson output changed:\n got %s\nwant %s", got, want)
	}

	// a result that cannot be encoded is an error, and writes nothing
	buf.Reset()
	err := o.result(item{index: 4}, &engine.Result{Outcome: engine.Success, Lead: map[string]any{"x": math.NaN()}})
	if err == nil || err.Error() != "lead 4: encoding the result: json: unsupported value: NaN" {
		t.Errorf("encoding a NaN: %v", err)
	}
	o.w.Flush()
	if buf.Len() != 0 {
		t.Errorf("a failed result wrote %q", buf.String())
	}
	// the array form is the same objects
	buf.Reset()
	o = &jsonOutput{w: bufio.NewWriter(&buf), stderr: &bytes.Buffer{}}
	o.result(item{index: 3, line: 9}, &engine.Result{Outcome: engine.Skip})
	o.result(item{index: 4}, &engine.Result{Outcome: engine.Success, Steps: []engine.StepResult{}, Lead: map[string]any{}})
	o.finish(newSummary())
	if got, want := buf.String(), "[\n{\"index\":3,\"line\":9,\"outcome\":\"skip\",\"duration_ms\":0.000,\"steps\":null,\"lead\":null},\n"+
		"{\"index\":4,\"outcome\":\"success\",\"duration_ms\":0.000,\"steps\":[],\"lead\":{}}\n]\n"; got != want {
		t.Errorf("json output:\n got %q\nwant %q", got, want)
	}
	if strings.Contains(buf.String(), `\u003c`) {
		t.Error("HTML escaped")
	}
}
