package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/plumbhq/plumb/parse"
)

// jsonArray is n copies of elem in a JSON array.
func jsonArray(elem string, n int) string {
	return "[" + strings.TrimSuffix(strings.Repeat(elem+",", n), ",") + "]"
}

// TestCaptureFactorBounds: the documented factor bounds what decoding
// counts (valueSize) for the shapes that cost the most per byte of text.
func TestCaptureFactorBounds(t *testing.T) {
	for _, elem := range []string{`{}`, `[]`, `1`, `""`, `{"a":{}}`, `[[]]`, `{"":1}`, `null`} {
		text := jsonArray(elem, 1000)
		var v any
		if err := json.Unmarshal([]byte(text), &v); err != nil {
			t.Fatal(err)
		}
		if n := valueSize(v); n > int64(len(text))*captureFactor {
			t.Errorf("%s…: %d bytes of text decode to %d, more than %d times", elem, len(text), n, captureFactor)
		}
	}
}

// TestReserveCaptures counts what is reserved before a json capture is
// decoded: captureFactor times the text it selects, nothing for a small
// answer or a small selection, and a refusal when the budget cannot hold it.
func TestReserveCaptures(t *testing.T) {
	big := jsonArray("1", 50000)
	body := []byte(`{"big":` + big + `,"small":7}`)
	p := plan(t, "version: 1\nname: r\nsteps:\n  - name: s\n    request: { url: \"http://x\" }\n    capture: { a: { json: big }, b: { json: small }, h: { header: X } }\n")
	st := p.steps[0]
	mem := &memBudget{max: 10 << 20}
	n, err := reserveCaptures(st, body, mem)
	want := int64(len(big)) * captureFactor // big's text; small's 7 is a number
	if err != nil || n != want || mem.used != want {
		t.Fatalf("reserved %d (used %d, %v), want %d", n, mem.used, err, want)
	}
	mem.give(n)
	for _, small := range []string{`{"big":[1,2],"small":7}`, `{"big":1,"small":2,"pad":"` + strings.Repeat("x", 8000) + `"}`, `{"big":"` + strings.Repeat("x", 4000) + `"}`} {
		if n, err := reserveCaptures(st, []byte(small), mem); n != 0 || err != nil || mem.used != 0 {
			t.Fatalf("%.40s…: reserved %d (used %d, %v), want nothing", small, n, mem.used, err)
		}
	}
	mem = &memBudget{max: want - 1}
	if n, err := reserveCaptures(st, body, mem); err == nil || n != 0 || mem.used != 0 {
		t.Fatalf("over budget: reserved %d (used %d), err %v", n, mem.used, err)
	}
}

// TestCaptureOverBudgetNotDecoded: a capture whose decoded value would pass
// the runner's response memory budget ends the lead as too_large before it
// is decoded, and every byte reserved goes back.
func TestCaptureOverBudgetNotDecoded(t *testing.T) {
	text := jsonArray("1", 100000) // 200 KB of text: about 4.8 MB counted decoded
	srv := newFaults(t, ok(text))
	src := "version: 1\nname: r\nsettings: { base_url: {} }\nsteps:\n  - name: s\n    request: { url: \"{{settings.base_url}}/x\" }\n    capture: { x: { json: \"@this\" } }\n"
	r := bindCfg(t, src, Config{Values: map[string]any{"base_url": srv.URL}, MaxResponseMemory: 4 << 20})
	res := r.Run(context.Background(), map[string]any{})
	if res.Outcome != Error || res.Class != ClassTooLarge || !strings.Contains(res.Reason, "not decoded") || res.Steps[0].Captured != nil {
		t.Fatalf("%s %s %q", res.Outcome, res.Class, res.Reason)
	}
	if r.mem.used != 0 {
		t.Fatalf("%d bytes still reserved", r.mem.used)
	}
	r = bindCfg(t, src, Config{Values: map[string]any{"base_url": srv.URL}, MaxResponseMemory: 8 << 20})
	if res := r.Run(context.Background(), map[string]any{}); res.Outcome != Success || r.mem.used != 0 {
		t.Fatalf("within the budget: %s %q, %d bytes still reserved", res.Outcome, res.Reason, r.mem.used)
	}
}

// lateTransport reads each answer whole, then ends the lead's context with
// a flow deadline, as if reading it took the time left.
type lateTransport struct{ end context.CancelCauseFunc }

func (l lateTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	l.end(&deadlineCause{of: "flow", after: time.Second})
	return resp, err
}

// judgeLate ends the lead's context with a flow deadline once the try's
// answer has been judged, as if judging it took the time left.
type judgeLate struct {
	NopEvents
	end context.CancelCauseFunc
}

func (j judgeLate) TryEnd(context.Context, TryEnd) {
	j.end(&deadlineCause{of: "flow", after: time.Second})
}

// TestAnswerPastDeadline: an answer read after the flow's deadline passed is
// not judged, and one judged after it is not a success: both end as a
// timeout naming the deadline. A caller that gave up after the answer
// does not undo it.
func TestAnswerPastDeadline(t *testing.T) {
	srv := newFaults(t, ok(`{"score": 1}`))
	src := oneStep("    retry: [ { on: [timeout], action: fail } ]\n")
	check := func(t *testing.T, opts func(context.CancelCauseFunc) []Option, want Class, reason string) {
		t.Helper()
		ctx, end := context.WithCancelCause(context.Background())
		defer end(nil)
		p := plan(t, src, opts(end)...)
		s, _ := p.Settings(map[string]any{"base_url": srv.URL}, nil)
		r := p.Run(ctx, map[string]any{"email": "a@b.co"}, s)
		if r.Class != want || !strings.Contains(r.Reason, reason) {
			t.Fatalf("%s %s %q, want %s: %s", r.Outcome, r.Class, r.Reason, want, reason)
		}
	}
	check(t, func(end context.CancelCauseFunc) []Option {
		return []Option{WithHTTPClient(&http.Client{Transport: lateTransport{end}})}
	}, ClassTimeout, ": flow deadline 1s exceeded")
	check(t, func(end context.CancelCauseFunc) []Option { return []Option{WithEvents(judgeLate{end: end})} },
		ClassTimeout, "flow deadline 1s exceeded while the answer (status 200) was judged")
	t.Run("caller", func(t *testing.T) {
		ctx, end := context.WithCancelCause(context.Background())
		p := plan(t, src, WithEvents(judgeLate{end: func(error) { end(context.Canceled) }}))
		s, _ := p.Settings(map[string]any{"base_url": srv.URL}, nil)
		if r := p.Run(ctx, map[string]any{"email": "a@b.co"}, s); r.Outcome != Success {
			t.Fatalf("%s %s %q", r.Outcome, r.Class, r.Reason)
		}
	})
}

// TestXMLOverBudgetNotParsed: a step that parses its answer as XML (an
// xpath capture, response.format: xml) reserves the tree it would build
// before parsing; one that does not fit ends the lead as too_large,
// unparsed, and every byte reserved goes back. A small answer reserves
// nothing.
func TestXMLOverBudgetNotParsed(t *testing.T) {
	doc := "<r>" + strings.Repeat("<a/>", 50000) + "<n>7</n></r>" // 200 KB: about 7 MB counted parsed
	srv := newFaults(t, reply(200, "application/xml", doc))
	for _, how := range []string{"capture: { n: { xpath: \"//n\" } }", "response: { format: xml }"} {
		src := "version: 1\nname: r\nsettings: { base_url: {} }\nsteps:\n  - name: s\n    request: { url: \"{{settings.base_url}}/x\" }\n    " + how + "\n"
		r := bindCfg(t, src, Config{Values: map[string]any{"base_url": srv.URL}, MaxResponseMemory: 4 << 20})
		res := r.Run(context.Background(), map[string]any{})
		if res.Outcome != Error || res.Class != ClassTooLarge || !strings.Contains(res.Reason, "XML answer of") || res.Steps[0].Captured != nil {
			t.Fatalf("%s: %s %s %q", how, res.Outcome, res.Class, res.Reason)
		}
		if r.mem.used != 0 {
			t.Fatalf("%s: %d bytes still reserved", how, r.mem.used)
		}
		r = bindCfg(t, src, Config{Values: map[string]any{"base_url": srv.URL}, MaxResponseMemory: 16 << 20})
		if res := r.Run(context.Background(), map[string]any{}); res.Outcome != Success || r.mem.used != 0 {
			t.Fatalf("%s within the budget: %s %q, %d bytes still reserved", how, res.Outcome, res.Reason, r.mem.used)
		}
	}
	p := plan(t, "version: 1\nname: r\nsteps:\n  - name: s\n    request: { url: \"http://x\" }\n    capture: { n: { xpath: \"//n\" } }\n")
	mem := &memBudget{max: 16 << 20}
	if n, err := reserveCaptures(p.steps[0], []byte("<r><n>7</n></r>"), mem); n != 0 || err != nil || mem.used != 0 {
		t.Fatalf("a small XML answer: reserved %d (used %d, %v), want nothing", n, mem.used, err)
	}
	big := []byte(doc)
	if n, err := reserveCaptures(p.steps[0], big, mem); n != parse.XMLTreeSize(big) || err != nil || mem.used != n {
		t.Fatalf("a large XML answer: reserved %d (used %d, %v), want %d", n, mem.used, err, parse.XMLTreeSize(big))
	}
	// both kinds: the XML tree fits, the JSON does not — nothing stays reserved
	both := plan(t, "version: 1\nname: r\nsteps:\n  - name: s\n    request: { url: \"http://x\" }\n    capture: { n: { xpath: \"//n\" }, j: { json: big } }\n")
	body := []byte(`{"big":` + jsonArray("1", 20000) + `,"x":"` + strings.Repeat("<a/>", 2000) + `"}`)
	xml := parse.XMLTreeSize(body)
	mem = &memBudget{max: xml + 1000}
	if n, err := reserveCaptures(both.steps[0], body, mem); err == nil || n != 0 || mem.used != 0 {
		t.Fatalf("XML that fits and JSON that does not: reserved %d (used %d), err %v", n, mem.used, err)
	}
}
