package history

import (
	"context"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/steps"
)

// Bounds of the exchanges a lead keeps (history.exchanges): each body is
// cut to MaxExchangeBody bytes, and once a lead's kept exchanges reach
// MaxLeadExchanges bytes its later tries keep their status only.
const (
	MaxExchangeBody  = 4 << 10
	MaxLeadExchanges = 64 << 10
)

// Sent is the request of a kept try, masked by the engine.
type Sent struct {
	Method string      `json:"method"`
	URL    string      `json:"url"`
	Header http.Header `json:"header,omitempty"`
	Body   string      `json:"body,omitempty"`
}

// Answer is the response of a kept try, masked by the engine (absent when
// the try had none).
type Answer struct {
	Status int         `json:"status,omitempty"`
	Header http.Header `json:"header,omitempty"`
	Body   string      `json:"body,omitempty"`
}

// WantsExchanges implements engine.ExchangeFilter: only the runs of an
// integration that asks for its exchanges are traced and copied.
func (Events) WantsExchanges(ctx context.Context) bool {
	t, _ := ctx.Value(triesKey{}).(*tries)
	return t != nil && (t.keep == steps.HistoryExchangesFailed || t.keep == steps.HistoryExchangesAll)
}

// Exchange implements engine.ExchangeObserver: it adds the try's masked
// request and response to the try TryEnd recorded (the engine calls
// Exchange after TryEnd), within the lead's bounds.
func (e Events) Exchange(ctx context.Context, ex *engine.Exchange) {
	if !e.WantsExchanges(ctx) {
		return
	}
	t := ctx.Value(triesKey{}).(*tries)
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.list
	i := len(list) - 1
	for i >= 0 && (list[i].step != ex.Step || list[i].Attempt != ex.Attempt || list[i].Fallback != ex.Fallback) {
		i--
	}
	if i < 0 || list[i].Request != nil {
		return // not a recorded try (over maxTries, or a token fetch), or kept already
	}
	sent := &Sent{Method: ex.Method, URL: ex.URL, Header: ex.RequestHeader, Body: cut(ex.RequestBody)}
	var answer *Answer
	if ex.Status != 0 || ex.ResponseBody != "" {
		answer = &Answer{Status: ex.Status, Header: ex.ResponseHeader, Body: cut(ex.ResponseBody)}
	}
	size := exchangeSize(sent, answer)
	if t.kept+size > MaxLeadExchanges {
		return
	}
	t.kept += size
	list[i].Request, list[i].Response = sent, answer
}

// cut bounds a body to MaxExchangeBody bytes (on a rune boundary), saying
// how long it was.
func cut(body string) string {
	if len(body) <= MaxExchangeBody {
		return body
	}
	n := MaxExchangeBody
	for n > 0 && !utf8.RuneStart(body[n]) {
		n--
	}
	return body[:n] + "… (cut; " + strconv.Itoa(len(body)) + " bytes)"
}

func exchangeSize(s *Sent, a *Answer) int {
	n := len(s.Method) + len(s.URL) + len(s.Body) + headerSize(s.Header)
	if a != nil {
		n += len(a.Body) + headerSize(a.Header)
	}
	return n
}

func headerSize(h http.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}
