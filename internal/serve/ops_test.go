package serve

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/history"
	"github.com/plumbhq/plumb/webhook"
)

func res(outcome engine.Outcome, class engine.Class, d time.Duration) *engine.Result {
	return &engine.Result{Outcome: outcome, Class: class, Duration: engine.Duration(d)}
}

// TestStatsWindows: leads land in their 10 s and 5 min steps; totals,
// rates, percentiles and classes are over the window; an hour later the
// 1h window is empty and the 24h one still holds them.
func TestStatsWindows(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)}
	st := newStats(clk.now)
	for i := range 100 {
		// 90 successes of 10..99 ms, 6 failures (rejected), 4 timeouts of 5 s
		switch {
		case i < 90:
			st.add("a", res(engine.Success, "", time.Duration(10+i)*time.Millisecond))
		case i < 96:
			st.add("a", res(engine.Failure, engine.ClassRejected, 20*time.Millisecond))
		default:
			st.add("a", res(engine.Error, engine.ClassTimeout, 5*time.Second))
		}
		if i == 49 {
			clk.t = clk.t.Add(25 * time.Second) // the second half two steps later
		}
	}
	st.add("b", res(engine.Error, "something new", time.Millisecond))

	w := st.window("a", "1h")
	if w.StepSeconds != 10 || len(w.Integrations) != 1 || len(w.Integrations[0].Points) != fineBuckets {
		t.Fatalf("1h window: %+v", w)
	}
	a := w.Integrations[0]
	pts := a.Points
	if last, first := pts[len(pts)-1], pts[len(pts)-3]; last.Leads != 50 || first.Leads != 50 || pts[len(pts)-2].Leads != 0 ||
		last.T-first.T != 20 {
		t.Fatalf("steps: %+v %+v %+v", first, pts[len(pts)-2], last)
	}
	tot := a.Total
	if tot.Leads != 100 || tot.Success != 90 || tot.Failure != 6 || tot.Error != 4 ||
		tot.Classes["rejected"] != 6 || tot.Classes["timeout"] != 4 || len(tot.Classes) != 2 {
		t.Fatalf("total: %+v", tot)
	}
	if a.SuccessRate == nil || *a.SuccessRate != 0.9 || a.LeadsPerSecond != 100.0/3600 {
		t.Fatalf("rates: %v %v", a.SuccessRate, a.LeadsPerSecond)
	}
	// p50 is about 55 ms, p95 a 5 s timeout's bin; bins are within 50%
	if p := *tot.P50; p < 55 || p > 55*1.5 {
		t.Errorf("p50 = %v ms", p)
	}
	if p := *tot.P99; p < 5000 || p > 7500 || *tot.P95 > *tot.P99 {
		t.Errorf("p95 = %v, p99 = %v ms", *tot.P95, p)
	}
	if b := st.window("b", "1h").Integrations[0].Total; b.Classes["other"] != 1 {
		t.Errorf("an unknown class: %+v", b)
	}
	if all := st.window("", "1h"); len(all.Integrations) != 2 || all.Integrations[0].Integration != "a" {
		t.Errorf("all integrations: %+v", all.Integrations)
	}

	clk.t = clk.t.Add(time.Hour)
	if w := st.window("a", "1h"); w.Integrations[0].Total.Leads != 0 {
		t.Errorf("1h window an hour later: %+v", w.Integrations[0].Total)
	}
	if w := st.window("a", "24h"); w.StepSeconds != 300 || len(w.Integrations[0].Points) != coarseBucket || w.Integrations[0].Total.Leads != 100 {
		t.Errorf("24h window an hour later: %d %+v", w.StepSeconds, w.Integrations[0].Total)
	}
	clk.t = clk.t.Add(24 * time.Hour)
	if w := st.window("a", "24h"); w.Integrations[0].Total.Leads != 0 {
		t.Errorf("24h window a day later: %+v", w.Integrations[0].Total)
	}
}

// TestStatsBoundedMemory: a million leads over days and over more
// integrations than the cap leave the structure at the same size; the
// integration fed last keeps its counts.
func TestStatsBoundedMemory(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)}
	st := newStats(clk.now)
	const names = maxStatsSeries + 100
	var sizeAt1k [2]int
	for i := range 1_000_000 {
		clk.t = clk.t.Add(173 * time.Millisecond) // ~2 days in all
		st.add(fmt.Sprintf("in-%d", (i/1000)%names), res(engine.Success, "", time.Duration(i%5000)*time.Millisecond))
		if i == 1000*maxStatsSeries {
			sizeAt1k[0], sizeAt1k[1] = st.size()
		}
	}
	series, buckets := st.size()
	if series != maxStatsSeries || buckets != maxStatsSeries*(fineBuckets+coarseBucket) || [2]int{series, buckets} != sizeAt1k {
		t.Fatalf("size after 1e6 leads: %d series, %d buckets (at the cap: %v)", series, buckets, sizeAt1k)
	}
	last := fmt.Sprintf("in-%d", (999_999/1000)%names)
	if tot := st.window(last, "1h").Integrations[0].Total; tot.Leads != 1000 {
		t.Fatalf("the last integration's hour: %d leads, want 1000", tot.Leads)
	}
}

// TestDeliveryRingBounded: the ring keeps the newest maxDeliveries.
func TestDeliveryRingBounded(t *testing.T) {
	var g deliveryRing
	for i := range 1_000_000 {
		g.add(HookDelivery{Integration: []string{"a", "b"}[i%2], Status: i})
	}
	all := g.list("", maxDeliveries+10)
	if g.n != maxDeliveries || len(all) != maxDeliveries || all[0].Status != 999_999 || all[maxDeliveries-1].Status != 1_000_000-maxDeliveries {
		t.Fatalf("ring: n=%d len=%d first=%d last=%d", g.n, len(all), all[0].Status, all[len(all)-1].Status)
	}
	if b := g.list("b", 3); len(b) != 3 || b[0].Status != 999_999 || b[2].Status != 999_995 {
		t.Fatalf("filtered: %+v", b)
	}
}

// TestStatsAPI: leads run through the service show in GET /v1/stats,
// which wants the API token and a known window.
func TestStatsAPI(t *testing.T) {
	t.Parallel()
	_, c, _ := setup(t, testAPIToken)
	for i := range 5 {
		email := fmt.Sprintf("l%d@x.example", i)
		if i >= 3 {
			email = fmt.Sprintf("l%d@reject.example", i)
		}
		c.do("POST", "/v1/integrations/partner/run", "application/json", fmt.Appendf(nil, `{"n": %d, "email": %q}`, i, email))
	}
	code, b := c.do("GET", "/v1/stats?integration=partner&window=1h", "", nil)
	ans := decode[StatsAnswer](t, b)
	if code != 200 || len(ans.Integrations) != 1 {
		t.Fatalf("stats: %d %s", code, b)
	}
	tot := ans.Integrations[0].Total
	if tot.Leads != 5 || tot.Success != 3 || tot.Failure != 2 || tot.Classes["rejected"] != 2 || tot.P50 == nil {
		t.Fatalf("stats total: %s", b)
	}
	if code, b := c.do("GET", "/v1/stats?window=1d", "", nil); code != 400 || errorCode(t, b) != CodeBadRequest {
		t.Errorf("bad window: %d %s", code, b)
	}
	if code, _ := (client{t: t, base: c.base}).do("GET", "/v1/stats", "", nil); code != 401 {
		t.Errorf("stats without a token: %d", code)
	}
}

// TestHookDeliveriesLog: verified, duplicate and refused deliveries are
// logged newest first, with no signature, secret or body in the log.
func TestHookDeliveriesLog(t *testing.T) {
	t.Parallel()
	p := newPartner(t)
	dir := t.TempDir()
	writeHookIntegration(t, dir, p.URL)
	writeIntegration(t, dir, p.URL)
	s := testServer(t, Config{Dir: dir, Tokens: []string{testAPIToken}})
	base := "http://" + s.Addr()
	for _, d := range []struct {
		body   []byte
		secret string
		want   int
	}{{event(1), hookSecret, 200}, {event(1), hookSecret, 200}, {event(2), "", 401}, {event(3), "wrong-secret-0123456789", 401}} {
		if code, b, err := post(base, "/v1/hooks/acare", d.body, d.secret); err != nil || code != d.want {
			t.Fatalf("delivery: %d %s %v", code, b, err)
		}
	}
	c := client{t: t, base: base, token: testAPIToken}
	code, b := c.do("GET", "/v1/hooks/deliveries?integration=acare", "", nil)
	got := decode[struct{ Deliveries []HookDelivery }](t, b).Deliveries
	if code != 200 || len(got) != 4 {
		t.Fatalf("deliveries: %d %s", code, b)
	}
	want := []struct{ verdict, result string }{{"refused", CodeBadSignature}, {"refused", CodeMissingSignature}, {"duplicate", "duplicate"}, {"verified", "accepted"}}
	for i, w := range want {
		if got[i].Verdict != w.verdict || got[i].Result != w.result || len(got[i].Log) < 2 || got[i].Header["Content-Type"] != "application/json" {
			t.Errorf("delivery %d: %+v, want %s %s", i, got[i], w.verdict, w.result)
		}
	}
	if got[3].ID == "" || got[3].ID != got[2].ID || got[3].Status != 200 || got[0].Status != 401 {
		t.Errorf("ids and statuses: %+v", got)
	}
	v, err := webhook.New(webhook.Config{Preset: webhook.PresetActuallyCare, Secrets: []string{hookSecret}}, nil)
	must(t, err)
	sig, err := v.Sign(event(1), "", time.Time{})
	must(t, err)
	for _, d := range got {
		for k := range d.Header {
			if strings.Contains(strings.ToLower(k), "signature") {
				t.Errorf("a signature header is logged: %+v", d)
			}
		}
	}
	for _, secret := range []string{hookSecret, "wrong-secret", sig.Get("X-Webhook-Signature"), "lead1@x.example"} {
		if bytes.Contains(bytes.ToLower(b), bytes.ToLower([]byte(secret))) {
			t.Errorf("the log holds %q: %s", secret, b)
		}
	}
	if code, b := c.do("GET", "/v1/hooks/deliveries?integration=partner", "", nil); code != 200 || !strings.Contains(string(b), `"deliveries":[]`) {
		t.Errorf("another integration's deliveries: %d %s", code, b)
	}
	if code, _ := c.do("GET", "/v1/hooks/deliveries?limit=0", "", nil); code != 400 {
		t.Errorf("limit=0: %d", code)
	}
	if code, _ := (client{t: t, base: base}).do("GET", "/v1/hooks/deliveries", "", nil); code != 401 {
		t.Errorf("deliveries without a token: %d", code)
	}
}

// TestOpsAPIThroughConsole: the console serves the listed API routes to a
// console user only, POSTs only with its header and a JSON body, and
// nothing that is not listed.
func TestOpsAPIThroughConsole(t *testing.T) {
	t.Parallel()
	p := newPartner(t)
	dir := consoleDir(t)
	writeIntegration(t, dir, p.URL)
	s := testServer(t, Config{Dir: dir, Console: true, Tokens: []string{testAPIToken}, ConsoleTokens: []string{testConsoleToken}})
	base := "http://" + s.Addr()
	con := client{t: t, base: base, token: testConsoleToken}
	api := client{t: t, base: base, token: testAPIToken}
	for _, path := range []string{"/console/api/v1/dead", "/console/api/v1/stats?window=24h", "/console/api/v1/hooks/deliveries", "/console/api/v1/integrations", "/console/ops/"} {
		if code, b := con.do("GET", path, "", nil); code != 200 {
			t.Errorf("console token on %s: %d %s", path, code, b)
		}
		if code, _ := api.do("GET", path, "", nil); code != 401 {
			t.Errorf("API token on %s: %d", path, code)
		}
	}
	if code, b := con.do("POST", "/console/api/v1/dead/nope/retry", "application/json", []byte(`{}`)); code != 403 {
		t.Errorf("retry without X-Plumb-Console: %d %s", code, b)
	}
	if code, b := con.do("POST", "/console/api/v1/dead/nope/retry", "application/json", []byte(`{}`), "X-Plumb-Console", "1"); code != 404 || errorCode(t, b) != CodeNotFound {
		t.Errorf("retry of an unknown dead letter: %d %s", code, b)
	}
	if code, b := con.do("POST", "/console/api/v1/integrations/partner/run", "application/json", []byte(`{"n":1,"email":"a@x.example"}`), "X-Plumb-Console", "1"); code != 404 {
		t.Errorf("a route the console does not pass on: %d %s", code, b)
	}
	if n := len(p.snapshot()); n != 0 {
		t.Errorf("the partner was called %d times", n)
	}
	open := testServer(t, Config{Dir: dir, Console: true})
	if code := hostGet(t, "http://"+open.Addr()+"/console/api/v1/dead", "rebind.example"); code != http.StatusForbidden {
		t.Errorf("ops API without tokens to another Host: %d", code)
	}
}

// TestStatsFromRecords: the cluster's records count at the time they
// finished (a record applied late still lands in its own step); one older
// than the day or from the future is not counted, nor one whose step the
// ring has already reused for a newer one.
func TestStatsFromRecords(t *testing.T) {
	now := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	clk := &fakeClock{t: now}
	st := newStats(clk.now)
	rec := func(at time.Time) history.Record {
		return history.Record{Integration: "a", Outcome: "success", Finished: at, DurationMS: engine.Duration(30 * time.Millisecond)}
	}
	st.addRecord(rec(now.Add(-2 * time.Minute))) // late: two minutes ago
	st.addRecord(rec(now.Add(-25 * time.Hour)))  // older than the day
	st.addRecord(rec(now.Add(time.Minute)))      // from the future
	st.addRecord(rec(now))                       // now
	st.addRecord(rec(now.Add(-time.Hour)))       // the fine ring's slot of now, which holds the newer step: in 24h only
	w := st.window("a", "1h")
	pts := w.Integrations[0].Points
	if w.Integrations[0].Total.Leads != 2 || pts[len(pts)-1].Leads != 1 || pts[len(pts)-1-12].Leads != 1 {
		t.Fatalf("1h: total %+v, last %+v, 2 min before %+v", w.Integrations[0].Total, pts[len(pts)-1], pts[len(pts)-13])
	}
	if tot := st.window("a", "24h").Integrations[0].Total; tot.Leads != 3 {
		t.Fatalf("24h total %+v, want 3 leads", tot)
	}
}
