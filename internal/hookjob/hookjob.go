// Package hookjob is how plumb serve stores an accepted webhook delivery
// as a queue job and reads it back: the delivery's envelope (what the
// signature scheme said about it) around the raw signed body. It is
// plumb's own storage format, so it lives here rather than in the public
// webhook package, which verifies deliveries and leaves storing them to
// its caller.
package hookjob

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/plumbhq/plumb/webhook"
)

// Envelope is a stored delivery: what the scheme said about it and the
// raw event.
type Envelope struct {
	Webhook Meta            `json:"webhook"`
	Event   json.RawMessage `json:"event"`
}

// Meta is the stored description of a delivery.
type Meta struct {
	Integration string    `json:"integration"`
	ID          string    `json:"id,omitempty"`
	Type        string    `json:"type,omitempty"`
	Preset      string    `json:"preset"`
	Key         string    `json:"key,omitempty"`
	Received    time.Time `json:"received"`
}

// IsJob reports whether a queue job id is a webhook delivery's (jobs
// stored before jobs carried a kind are told apart by it).
func IsJob(id string) bool { return strings.HasPrefix(id, webhook.JobPrefix) }

// Encode is the queue payload of a delivery accepted for integration.
func Encode(integration string, d *webhook.Delivery) []byte {
	env := Envelope{Webhook: Meta{Integration: integration, ID: d.Event.ID, Type: d.Event.Type,
		Preset: d.Event.Preset, Key: d.Key, Received: d.Received}, Event: d.Body}
	b, _ := json.Marshal(env) // a verified JSON object and plain fields: cannot fail
	return b
}

// Decode reads a stored delivery back; [webhook.Hook.Lead] turns it into
// the lead its steps run.
func Decode(b []byte) (Envelope, *webhook.Delivery, error) {
	var env Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return env, nil, fmt.Errorf("webhook: stored event: %w", err)
	}
	if len(env.Event) == 0 {
		return env, nil, fmt.Errorf("webhook: stored event: no event")
	}
	m := env.Webhook
	d := &webhook.Delivery{Event: webhook.Event{ID: m.ID, Type: m.Type, Preset: m.Preset}, Body: env.Event,
		Key: m.Key, Received: m.Received}
	return env, d, nil
}
