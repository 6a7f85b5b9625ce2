package engine

import (
	"strconv"
	"time"
)

// Outcome is how a step or a whole flow ended for a lead.
type Outcome string

// The outcomes. Failure means the partner answered no; Error means no usable
// answer could be had (transport error, timeout, 5xx, unreadable body).
const (
	Success Outcome = "success"
	Failure Outcome = "failure"
	Error   Outcome = "error"
	Skip    Outcome = "skip"
)

// Duration is a time.Duration that marshals to JSON as milliseconds.
type Duration time.Duration

// MarshalJSON writes the duration as a number of milliseconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(d)/float64(time.Millisecond), 'f', 3, 64), nil
}

// UnmarshalJSON reads a number of milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	*d = Duration(f * float64(time.Millisecond))
	return nil
}

// String renders the duration like time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// Result is what became of one lead: every lead that enters Run leaves with
// one, whatever happened.
type Result struct {
	Outcome Outcome `json:"outcome"`
	Reason  string  `json:"reason,omitempty"`
	// Step names the step that decided a failure or error.
	Step     string         `json:"step,omitempty"`
	Duration Duration       `json:"duration_ms"`
	Steps    []StepResult   `json:"steps"`
	Lead     map[string]any `json:"lead"`
}

// StepResult is what became of one step.
type StepResult struct {
	Name    string  `json:"name"`
	Outcome Outcome `json:"outcome"`
	Reason  string  `json:"reason,omitempty"`
	Method  string  `json:"method,omitempty"`
	// URL is the URL called, with secret setting values masked.
	URL      string         `json:"url,omitempty"`
	Status   int            `json:"status,omitempty"`
	Attempts int            `json:"attempts"`
	Duration Duration       `json:"duration_ms"`
	Captured map[string]any `json:"captured,omitempty"`
	// Fallback names the fallback link that answered (request, cache,
	// defaults, skip), if any.
	Fallback string `json:"fallback,omitempty"`
	// Tried says why each earlier source of an answer (the primary request,
	// then each fallback link) gave none.
	Tried []string `json:"tried,omitempty"`
	// Variant is the 1-based route of the step's variants that was taken.
	Variant int `json:"variant,omitempty"`
	// Cache is hit or miss for a step with a response cache.
	Cache string `json:"cache,omitempty"`
	// Batch is the id of the batch request that carried this lead.
	Batch string `json:"batch,omitempty"`
	// Appended holds the lead fields this step wrote.
	Appended map[string]any `json:"appended,omitempty"`
}
