package hookjob

import (
	"bytes"
	"testing"
	"time"

	"github.com/plumbhq/plumb/webhook"
)

// TestRoundTrip: a stored delivery reads back with what the scheme said
// about it and its exact signed body; its lead is the hook's lead of the
// original delivery.
func TestRoundTrip(t *testing.T) {
	body := []byte(`{"event":"lead.status_changed","n":12345678901234567890}`)
	d := &webhook.Delivery{Event: webhook.Event{ID: "e1", Type: "lead.status_changed", Preset: "actuallycare"},
		Body: body, Key: "id:e1", JobID: webhook.JobPrefix + "x", Received: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}
	env, got, err := Decode(Encode("acare", d))
	if err != nil {
		t.Fatal(err)
	}
	if env.Webhook.Integration != "acare" || !bytes.Equal(got.Body, body) || got.Key != d.Key ||
		got.Event.ID != "e1" || got.Event.Type != d.Event.Type || got.Event.Preset != d.Event.Preset || !got.Received.Equal(d.Received) {
		t.Errorf("round trip: %+v %+v", env, got)
	}
	var h *webhook.Hook
	lead, err := h.Lead(got)
	if err != nil || lead["n"].(interface{ String() string }).String() != "12345678901234567890" {
		t.Errorf("lead %v, %v: numbers must stay exact", lead, err)
	}
	for _, bad := range []string{``, `{`, `{"webhook":{}}`} {
		if _, _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q): no error", bad)
		}
	}
	if !IsJob(webhook.JobPrefix+"a") || IsJob("lead-1") {
		t.Error("IsJob")
	}
}
