package history

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/steps"
)

// The sources a lead comes from (Record.Source).
const (
	SourceRun     = "run"     // POST /v1/integrations/{name}/run
	SourceLeads   = "leads"   // POST /v1/integrations/{name}/leads (queued)
	SourceWebhook = "webhook" // a verified webhook delivery
	SourceSync    = "sync"    // a record of a source's sync
)

// Record is what the history keeps of one lead run: its identity, its
// outcome and timings, and its steps with their tries. Everything in it is
// masked: it is built from an engine result (masked by the runner) and the
// engine's try events (masked too), never from the raw lead.
type Record struct {
	ID          string `json:"id"`
	Integration string `json:"integration"`
	Source      string `json:"source"`
	RequestID   string `json:"request_id,omitempty"`
	Batch       string `json:"batch,omitempty"`
	Outcome     string `json:"outcome"`
	Class       string `json:"class,omitempty"`
	Reason      string `json:"reason,omitempty"`
	// Step is the step that decided the outcome, if any.
	Step string `json:"step,omitempty"`
	// Accepted is when a queued lead was stored (zero for a synchronous
	// run); Started and Finished bound its run.
	Accepted time.Time `json:"accepted,omitzero"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// QueuedMS is Started-Accepted, DurationMS Finished-Started, in
	// milliseconds as every duration of the API.
	QueuedMS   engine.Duration `json:"queued_ms"`
	DurationMS engine.Duration `json:"duration_ms"`
	Steps      []Step          `json:"steps"`
}

// Step is one step of a Record.
type Step struct {
	Name       string          `json:"name"`
	Outcome    string          `json:"outcome"`
	Class      string          `json:"class,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	Method     string          `json:"method,omitempty"`
	URL        string          `json:"url,omitempty"`
	Status     int             `json:"status,omitempty"`
	Attempts   int             `json:"attempts"`
	DurationMS engine.Duration `json:"duration_ms"`
	// Group names the parallel group the step ran in (empty: alone).
	Group string `json:"group,omitempty"`
	Tries []Try  `json:"tries,omitempty"`
}

// Try is one HTTP try of a step. Request and Response are kept only when
// the integration asks (history.exchanges), masked and cut (exchanges.go).
type Try struct {
	Attempt    int             `json:"attempt"`
	Fallback   bool            `json:"fallback,omitempty"`
	Status     int             `json:"status,omitempty"`
	Class      string          `json:"class,omitempty"`
	Error      string          `json:"error,omitempty"`
	Rule       string          `json:"rule,omitempty"`
	DurationMS engine.Duration `json:"duration_ms"`
	Request    *Sent           `json:"request,omitempty"`
	Response   *Answer         `json:"response,omitempty"`
}

// maxTries bounds the tries kept per lead (a step retried without end
// must not grow a record without end).
const maxTries = 64

// tries collects the try events of one lead run; it rides in the run's
// context (WithTries) and Events appends to it.
type tries struct {
	mu     sync.Mutex
	redact func(string) string
	list   []stepTry // in the order they ended, all steps together
	inline [4]stepTry
	keep   steps.HistoryExchanges
	kept   int // bytes of the exchanges kept so far
}

// stepTry is a try and the step it was a try of.
type stepTry struct {
	step string
	Try
}

type triesKey struct{}

// WithTries returns a context whose lead run collects its tries for
// NewRecord. redact masks what a try event says (the runner's masker; nil:
// none beyond the engine's own); keep is the integration's
// history.exchanges (which leads keep their tries' requests and responses).
func WithTries(ctx context.Context, redact func(string) string, keep steps.HistoryExchanges) context.Context {
	t := &tries{redact: redact, keep: keep}
	t.list = t.inline[:0]
	return context.WithValue(ctx, triesKey{}, t)
}

// Events is an engine.Events that adds each try to the lead's record when
// the run's context came from WithTries (and does nothing otherwise).
type Events struct{ engine.NopEvents }

// TryEnd implements engine.Events.
func (Events) TryEnd(ctx context.Context, e engine.TryEnd) {
	t, _ := ctx.Value(triesKey{}).(*tries)
	if t == nil {
		return
	}
	msg := e.Err
	if t.redact != nil && msg != "" {
		msg = t.redact(msg)
	}
	t.mu.Lock()
	if len(t.list) < maxTries {
		t.list = append(t.list, stepTry{step: e.Step, Try: Try{Attempt: e.Attempt, Fallback: e.Fallback, Status: e.Status,
			Class: string(e.Class), Error: msg, Rule: e.Rule, DurationMS: engine.Duration(e.Duration)}})
	}
	t.mu.Unlock()
}

// Meta is what the service knows of a lead besides its result.
type Meta struct {
	ID, Integration, Source, RequestID, Batch string
	Accepted, Started, Finished               time.Time
}

// NewRecord builds the record of a finished lead from its (masked) result
// and the tries collected in ctx (WithTries).
func NewRecord(ctx context.Context, m Meta, res *engine.Result) Record {
	rec := Record{ID: m.ID, Integration: m.Integration, Source: m.Source, RequestID: m.RequestID, Batch: m.Batch,
		Accepted: m.Accepted, Started: m.Started, Finished: m.Finished,
		DurationMS: engine.Duration(m.Finished.Sub(m.Started)), Steps: []Step{}}
	if !m.Accepted.IsZero() && m.Started.After(m.Accepted) {
		rec.QueuedMS = engine.Duration(m.Started.Sub(m.Accepted))
	}
	if res == nil {
		return rec
	}
	rec.Outcome, rec.Class, rec.Reason, rec.Step = string(res.Outcome), string(res.Class), res.Reason, res.Step
	rec.Steps = make([]Step, 0, len(res.Steps))
	t, _ := ctx.Value(triesKey{}).(*tries)
	var all []Try // every step's tries, copied: each step has its part
	if t != nil {
		t.mu.Lock()
		defer t.mu.Unlock()
		all = make([]Try, 0, len(t.list))
	}
	dropExchanges := t != nil && t.keep == steps.HistoryExchangesFailed && res.Outcome == engine.Success
	for _, sr := range res.Steps {
		st := Step{Name: sr.Name, Outcome: string(sr.Outcome), Class: string(sr.Class), Reason: sr.Reason,
			Method: sr.Method, URL: sr.URL, Status: sr.Status, Attempts: sr.Attempts, DurationMS: sr.Duration, Group: sr.Group}
		if t != nil {
			from := len(all)
			for _, x := range t.list {
				if x.step == sr.Name {
					all = append(all, x.Try)
				}
			}
			if len(all) > from {
				st.Tries = all[from:len(all):len(all)]
			}
			if dropExchanges {
				for i := range st.Tries {
					st.Tries[i].Request, st.Tries[i].Response = nil, nil
				}
			}
		}
		rec.Steps = append(rec.Steps, st)
	}
	return rec
}

// RequestID returns the client's request id from an X-Request-Id header
// value: at most 128 characters of A-Z a-z 0-9 . _ : -, else "".
func RequestID(v string) string {
	if v == "" || len(v) > 128 {
		return ""
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._:-", c)) {
			return ""
		}
	}
	return v
}
