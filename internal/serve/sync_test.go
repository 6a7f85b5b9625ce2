package serve

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/sandbox"
	"github.com/plumbhq/plumb/internal/syncrun"
)

// copyExample copies examples/NAME into dir/NAME with its settings
// pointing at base, editing the integration with edit (nil: as it is).
func copyExample(t *testing.T, dir, name, base string, edit func(string) string) {
	t.Helper()
	to := filepath.Join(dir, name)
	must(t, os.MkdirAll(to, 0o700))
	src, err := os.ReadFile(filepath.Join("..", "..", "examples", name, "integration.yaml"))
	must(t, err)
	text := string(src)
	if edit != nil {
		text = edit(text)
	}
	must(t, os.WriteFile(filepath.Join(to, "integration.yaml"), []byte(text), 0o600))
	settings, err := os.ReadFile(filepath.Join("..", "..", "examples", name, "settings.yaml"))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(to, "settings.yaml"), append(settings, []byte("base_url: "+base+"\n")...), 0o600))
}

// waitSync polls GET /v1/integrations/{name}/sync until done holds (a
// condition; the deadline only turns a hang into a failure).
func (c client) waitSync(name string, done func(syncrun.Status) bool) syncrun.Status {
	c.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, b := c.do("GET", "/v1/integrations/"+name+"/sync", "", nil)
		if code != 200 {
			c.t.Fatalf("GET sync: %d %s", code, b)
		}
		st := decode[syncrun.Status](c.t, b)
		if done(st) {
			return st
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("sync of %s: not there after 2 minutes: %s", name, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ended(st syncrun.Status) bool { return !st.Running && st.Ended == "complete" }

// TestSyncExampleInService runs seed 000 end to end in plumb serve with
// the sandbox's ActuallyCare and CRM: examples/actuallycare-sync on its
// schedule (every: 1h here, so the first sync runs at start) pulls the
// 132 leads page by page into the CRM and writes their status back;
// examples/actuallycare-webhook then receives a signed lead.created event
// for a lead made since, which reaches the CRM at once; the next sync
// (triggered) pulls that lead and neither creates, updates nor writes it
// back a second time — it writes its status back once; a full re-sync
// (confirmed) writes nothing at all.
func TestSyncExampleInService(t *testing.T) {
	box := sandbox.New()
	srv := httptest.NewServer(box)
	t.Cleanup(srv.Close)
	ac := box.ActuallyCare()
	dir := t.TempDir()
	copyExample(t, dir, "actuallycare-sync", srv.URL, func(s string) string {
		return strings.Replace(s, "    cron: \"0 2 * * *\"\n    timezone: America/New_York\n    jitter: 5m\n", "    every: 1h\n", 1)
	})
	copyExample(t, dir, "actuallycare-webhook", srv.URL, nil)
	s := testServer(t, Config{Dir: dir})
	c := client{t: t, base: "http://" + s.Addr()}

	// the schedule's first sync
	st := c.waitSync("actuallycare-sync", ended)
	if st.Last.Pages != 6 || st.Last.Records != 132 || st.Last.Errors != 0 || st.Schedule != "every 1h0m0s" || st.NextRun.IsZero() {
		t.Fatalf("first sync: %+v", st)
	}
	req := ac.Requests()
	if req["PUT /v1/leads/{id}"] != 131 || req["POST /crm/v1/contacts"] != 132 || req["PUT /crm/v1/contacts/{id}"] != 0 {
		t.Fatalf("first sync at the partner: %v (want 131 write-backs: lead 77 is refused by the CRM)", req)
	}
	if ac.Status(5) != "synced" || ac.Contacts() != 131 {
		t.Fatalf("lead 5: %s, %d contacts", ac.Status(5), ac.Contacts())
	}
	first := st.LastRun

	// a lead made in ActuallyCare since; its webhook arrives at once
	lead := newACLead(t, srv.URL)
	event := fmt.Appendf(nil, `{"event":"lead.created","team_id":"team_1","timestamp":"2026-06-12T09:00:00.000Z","data":{"id":%q,"name":"Lead New","email":"new@actuallycare.example","phone":"5125550133"}}`, lead)
	code, b, err := post(c.base, "/webhooks/actuallycare", event, "demo-webhook-secret")
	must(t, err)
	if code != 200 {
		t.Fatalf("webhook: %d %s", code, b)
	}
	if r := c.waitDone(decode[HookAnswer](t, b).ID); r.Result == nil || r.Result.Outcome != "success" {
		t.Fatalf("webhook lead: %+v", r.Result)
	}
	if n := ac.Creates()["new@actuallycare.example"]; n != 1 {
		t.Fatalf("webhook: %d creates for the new lead", n)
	}

	// the next sync pulls it: no second create, no update, one write-back
	code, b = c.do("POST", "/v1/integrations/actuallycare-sync/sync", "", nil)
	if code != 202 {
		t.Fatalf("trigger: %d %s", code, b)
	}
	st = c.waitSync("actuallycare-sync", func(st syncrun.Status) bool { return ended(st) && st.LastRun.After(first) })
	if st.Last.Records != 1 {
		t.Errorf("second sync: %+v, want the one new lead", st)
	}
	req = ac.Requests()
	if n := ac.Creates()["new@actuallycare.example"]; n != 1 || req["PUT /crm/v1/contacts/{id}"] != 0 || req["PUT /v1/leads/{id}"] != 132 {
		t.Fatalf("after the sync: %d creates of the webhook's lead, requests %v (want 1 create, 0 CRM updates, 132 write-backs)", n, req)
	}
	if ac.Status(133) != "synced" {
		t.Errorf("the new lead's status: %q", ac.Status(133))
	}

	// full and reset need the integration's name
	code, b = c.do("POST", "/v1/integrations/actuallycare-sync/sync", "application/json", []byte(`{"mode":"full"}`))
	if code != 400 || errorCode(t, b) != CodeConfirm {
		t.Fatalf("full without confirm: %d %s", code, b)
	}
	second := st.LastRun
	code, b = c.do("POST", "/v1/integrations/actuallycare-sync/sync", "application/json", []byte(`{"mode":"full","confirm":"actuallycare-sync"}`))
	if code != 202 {
		t.Fatalf("full: %d %s", code, b)
	}
	st = c.waitSync("actuallycare-sync", func(st syncrun.Status) bool { return ended(st) && st.LastRun.After(second) })
	after := ac.Requests()
	if st.Last.Records != 133 || after["POST /crm/v1/contacts"] != req["POST /crm/v1/contacts"]+1 ||
		after["PUT /crm/v1/contacts/{id}"] != 0 || after["PUT /v1/leads/{id}"] != 132 {
		t.Errorf("full re-sync: %+v; requests before %v after %v (want 133 records read, only lead 77's refused create again, no other write)", st, req, after)
	}
	if code, b := c.do("POST", "/v1/integrations/actuallycare-webhook/sync", "", nil); code != 404 || errorCode(t, b) != CodeNoSource {
		t.Errorf("sync of an integration without a source: %d %s", code, b)
	}
}

// newACLead makes a lead in the sandbox's ActuallyCare and returns its id.
func newACLead(t *testing.T, base string) string {
	t.Helper()
	c := client{t: t, base: base}
	code, b := c.do("POST", "/v1/leads", "application/json", []byte(`{"name":"Lead New","email":"new@actuallycare.example","phone":"5125550133"}`), "X-API-Key", sandbox.APIKey)
	if code != 201 {
		t.Fatalf("creating a lead: %d %s", code, b)
	}
	return decode[struct {
		Data struct{ ID string } `json:"data"`
	}](t, b).Data.ID
}
