package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/queue/natstest"
	"github.com/plumbhq/plumb/internal/serve"
)

// scaleYAML is a partner contract: OAuth2 client credentials and a rate
// of 200 requests a second for the whole integration.
const scaleYAML = `version: 1
name: crm
settings:
  base_url: { required: true }
auth:
  type: oauth2
  token_url: "{{settings.base_url}}/token"
  client_id: plumb
  client_secret: s3cret
limits: { rate: 200/s }
steps:
  - name: enrich
    request:
      method: POST
      url: "{{settings.base_url}}/enrich"
      body:
        json: { n: "{{lead.n}}" }
    timeout: 5s
    capture:
      score: { json: score, type: number }
`

// partner is the scale test's partner: a token endpoint issuing tokens
// that live ttl, and /enrich, which refuses unknown or expired tokens and
// records when each call arrived.
type partner struct {
	*httptest.Server
	ttl     time.Duration
	mu      sync.Mutex
	issued  map[string]time.Time // token → expiry
	fetches []time.Time
	calls   []time.Time
	byN     map[int]int
	refused atomic.Int32
}

func newScalePartner(t testing.TB, ttl time.Duration) *partner {
	p := &partner{ttl: ttl, issued: map[string]time.Time{}, byN: map[int]int{}}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/token":
			p.mu.Lock()
			p.fetches = append(p.fetches, now)
			tok := "tok-" + strconv.Itoa(len(p.fetches))
			p.issued[tok] = now.Add(ttl)
			p.mu.Unlock()
			fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":%d}`, tok, int(ttl.Seconds()))
		case "/enrich":
			tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			var body struct {
				N json.Number `json:"n"`
			}
			_ = json.NewDecoder(r.Body).Decode(&body)
			n, _ := strconv.Atoi(body.N.String())
			p.mu.Lock()
			exp, ok := p.issued[tok]
			if ok && now.Before(exp) {
				p.calls = append(p.calls, now)
				p.byN[n]++
			}
			p.mu.Unlock()
			if !ok || !now.Before(exp) {
				p.refused.Add(1)
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"error":"invalid_token"}`)
				return
			}
			fmt.Fprintf(w, `{"score": %d}`, n)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(p.Close)
	return p
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestScaleOut: three plumb serve instances (two in this process, one a
// child process; each with its own address and data directory) on a
// 3-node NATS cluster on loopback. Leads are posted round-robin; a third
// of the way in, the child is killed with SIGKILL (nothing acked, nothing
// drained) and the NATS node leading the lead stream is stopped. Then: every lead has exactly one stored result and
// all are successes; the token endpoint saw about one fetch per renewal
// window for the whole cluster; the partner's rate: 200/s held
// cluster-wide within the documented tolerance, counted from the
// partner's own arrival times.
//
// PLUMB_SCALE_LEADS sets the number of leads (default 2,000, about 10 s at
// 200/s; the 10,000 takes about 50 s more).
func TestScaleOut(t *testing.T) {
	if testing.Short() {
		t.Skip("3 NATS nodes and 3 plumb instances: skipped with -short")
	}
	n := envInt("PLUMB_SCALE_LEADS", 2000)
	// Tokens live 20 s and are renewed 10 s before they expire. (Shorter
	// lifetimes are renewed at half-life by the authenticator that fetched
	// them, but one that adopts a token from the store renews 10 s before
	// expiry regardless: see the report on auth.reloadShared.)
	tokenTTL := time.Duration(envInt("PLUMB_SCALE_TOKEN_TTL", 20)) * time.Second
	renewEvery := tokenTTL - min(10*time.Second, tokenTTL/2)
	start := time.Now()
	c := natstest.StartCluster(t, 3)
	p := newScalePartner(t, tokenTTL)
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "crm.yaml"), []byte(scaleYAML), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "crm.settings.yaml"), []byte("base_url: "+p.URL+"\n"), 0o600))

	// Instances 1 and 2 run in this process; instance 3 is a child
	// process, so that it can be killed with SIGKILL.
	servers := make([]*serve.Server, 2)
	for i := range servers {
		cfg := instanceConfig(dir, c.URLs())
		cfg.DataDir = t.TempDir()
		cfg.Logger = slog.New(slog.DiscardHandler)
		s, err := serve.New(cfg)
		must(t, err)
		must(t, s.Start())
		servers[i] = s
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_ = s.Shutdown(ctx)
		})
	}
	third := startChild(t, dir, c.URLs())
	addrs := []string{servers[0].Addr(), servers[1].Addr(), third.addr}
	q := servers[0].Queue()
	ctx := t.Context()
	info, err := q.JetStream().Stream(ctx, "PLUMB_WORK")
	must(t, err)
	if si, err := info.Info(ctx); err != nil || si.Config.Replicas != 3 {
		t.Fatalf("jobs stream: %v replicas, %v (want 3: --replicas detected from 3 URLs)", si.Config.Replicas, err)
	}
	t.Logf("cluster and 3 instances up in %s", time.Since(start).Round(time.Millisecond))

	// Post round-robin in NDJSON batches of 50, to live instances only (a
	// load balancer's health check would drop the killed one).
	var dead atomic.Int32
	dead.Store(-1)
	ids := make([]string, n)
	posted := make(chan struct{})
	// Lead 0 first, alone: the first token fetch happens while turns of
	// the budget are handed out, and those go together when the token
	// arrives (the engine waits for limits before it signs), a bunch
	// that is not the limiter's doing. See the report.
	first, err := postLeads(func(int) string { return servers[0].Addr() }, "first", []byte("{\"n\": 0}\n"))
	must(t, err)
	ids[0] = first[0]
	waitFor(t, "the first lead's result", func() (int, bool) {
		_, err := q.GetResult(ctx, ids[0])
		return 0, err == nil
	})

	// Three posters, each sending batches round-robin.
	const batch = 50
	var nextBatch atomic.Int64
	nextBatch.Store(1)
	var postWG sync.WaitGroup
	for range 3 {
		postWG.Go(func() {
			for {
				from := int(nextBatch.Add(batch-1)) - (batch - 1)
				if from >= n {
					return
				}
				var body bytes.Buffer
				for i := from; i < min(from+batch-1, n); i++ {
					fmt.Fprintf(&body, "{\"n\": %d}\n", i)
				}
				pick := func(try int) string {
					inst := (from/batch + try) % len(addrs)
					if int32(inst) == dead.Load() {
						inst = (inst + 1) % len(addrs)
					}
					return addrs[inst]
				}
				got, err := postLeads(pick, "batch-"+strconv.Itoa(from), body.Bytes())
				if err != nil {
					t.Errorf("posting leads %d..: %v", from, err)
					return
				}
				copy(ids[from:], got)
			}
		})
	}
	runStart := time.Now()
	go func() { postWG.Wait(); close(posted) }()

	// A third of the way in: instance 3 is killed (SIGKILL) and the lead
	// stream's leader node stops.
	waitFor(t, "a third of the leads called", func() (int, bool) { c := p.callCount(); return c, c >= n/3 })
	dead.Store(2)
	killTime := time.Now()
	third.Kill9(t)
	si, err := info.Info(ctx)
	must(t, err)
	for i, node := range c.Nodes {
		if node.Name == si.Cluster.Leader {
			c.Stop(i)
			t.Logf("at %s: killed instance 3 (SIGKILL); stopped %s, leader of the lead stream", time.Since(runStart).Round(time.Millisecond), node.Name)
		}
	}
	<-posted
	t.Logf("%d leads posted in %s", n, time.Since(runStart).Round(time.Millisecond))

	// Every lead gets exactly one stored result, answered by any live
	// instance.
	live := servers
	missing := func() int {
		m := 0
		for i, id := range ids {
			if id == "" {
				m++
				continue
			}
			if _, err := live[i%2].Queue().GetResult(ctx, id); err != nil {
				m++
			}
		}
		return m
	}
	waitFor(t, "every lead has a result", func() (int, bool) { m := missing(); return m, m == 0 })
	elapsed := time.Since(runStart)
	t.Logf("all %d results stored %s after the first post (%.0f leads/s; the rate limit allows 200/s)", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())

	results, err := q.JetStream().KeyValue(ctx, "plumb_leads")
	must(t, err)
	st, err := results.Status(ctx)
	must(t, err)
	if int(st.Values()) != n {
		t.Errorf("records bucket holds %d values, want exactly %d", st.Values(), n)
	}
	outcomes := map[string]int{}
	for i, id := range ids {
		b, err := live[i%2].Queue().GetResult(ctx, id)
		must(t, err)
		var r struct {
			Outcome string `json:"outcome"`
			Reason  string `json:"reason"`
			Lead    struct {
				N json.Number `json:"n"`
			} `json:"lead"`
		}
		must(t, json.Unmarshal(b, &r))
		outcomes[r.Outcome]++
		if r.Lead.N.String() != strconv.Itoa(i) {
			t.Fatalf("lead %s: result of lead %s, want %d", id, r.Lead.N, i)
		}
		if r.Outcome != "success" && outcomes[r.Outcome] <= 3 {
			t.Logf("lead %d: %s: %s", i, r.Outcome, r.Reason)
		}
	}
	if outcomes["success"] != n {
		t.Errorf("outcomes %v, want %d successes", outcomes, n)
	}

	p.mu.Lock()
	calls, fetches := sortedTimes(p.calls), sortedTimes(p.fetches)
	repeats := 0
	for i := range n {
		if p.byN[i] == 0 {
			t.Errorf("lead %d never reached the partner", i)
		}
		repeats += max(p.byN[i]-1, 0)
	}
	p.mu.Unlock()

	// Rate: 200/s, burst 1. The turns handed out never exceed 1 + 200·W
	// in any window W; counted at the partner, arrivals carry the jitter
	// between a turn and the request's arrival. The documented tolerance
	// for 1 s windows on a quiet machine is 200 × 50 ms (5%); this test
	// shares 2 cores with three NATS nodes and three instances (under
	// -race in CI), so it allows 150 ms of scheduling delay (15%) — a
	// limiter that did not share the budget would let 3× through.
	// 100 ms windows are reported.
	const rate = 200.0
	for _, w := range []time.Duration{100 * time.Millisecond, time.Second} {
		limit := 1 + rate*w.Seconds()
		tol := limit + rate*0.15
		most, at := densest(calls, w)
		t.Logf("rate: most partner calls in any %s window %d, from %s (kill at %s) (rate·W+burst %.0f, tolerance %.0f)",
			w, most, at.Sub(runStart).Round(time.Millisecond), killTime.Sub(runStart).Round(time.Millisecond), limit, tol)
		if w == time.Second && float64(most) > tol {
			t.Errorf("rate: %d calls in a %s window, more than the tolerance %.0f", most, w, tol)
		}
	}

	// Tokens: about one fetch per renewal window for the whole cluster.
	span := calls[len(calls)-1].Sub(calls[0])
	expected := span.Seconds()/renewEvery.Seconds() + 1
	closest := time.Hour
	for i := 1; i < len(fetches); i++ {
		closest = min(closest, fetches[i].Sub(fetches[i-1]))
	}
	t.Logf("tokens: %d fetches over %s of calls (one per renewal window: %.1f); closest two fetches %s apart; %d calls refused (expired or unknown token)",
		len(fetches), span.Round(time.Millisecond), expected, closest.Round(time.Millisecond), p.refused.Load())
	if float64(len(fetches)) > expected+3 {
		t.Errorf("tokens: %d fetches, want about %.1f (one per renewal window for the cluster)", len(fetches), expected)
	}
	t.Logf("partner calls %d for %d leads: %d repeated (leads running on the killed instance, at-least-once); killed %s after the start; total %s",
		len(calls), n, repeats, killTime.Sub(runStart).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	var lims []string
	for i, s := range servers {
		if l := s.Cluster().Limiter("crm"); l != nil {
			lims = append(lims, fmt.Sprintf("instance %d %+v", i+1, l.Stats()))
		}
	}
	t.Logf("shared budget KV traffic: %s", strings.Join(lims, "; "))
	resp, err := http.Get("http://" + servers[0].Addr() + "/metrics")
	must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `plumb_cluster_budget_writes_total{budget="crm"}`) {
		t.Errorf("/metrics has no plumb_cluster_budget_writes_total for crm")
	}
}

func (p *partner) callCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls)
}

// postLeadsTo posts a batch to one instance's integration.
func postLeadsTo(addr, integration, key string, ndjson []byte) ([]string, error) {
	return postLeadsPath(func(int) string { return addr }, integration, key, ndjson)
}

func postLeads(pick func(try int) string, key string, ndjson []byte) ([]string, error) {
	return postLeadsPath(pick, "crm", key, ndjson)
}

// postLeadsPath posts a batch with an Idempotency-Key, so sending it again
// after a 503 (NATS electing a leader mid-batch) stores no lead twice.
// Each try goes to the instance pick(try) names.
func postLeadsPath(pick func(try int) string, integration, key string, ndjson []byte) ([]string, error) {
	var lastErr error
	for try := range 40 {
		req, err := http.NewRequest(http.MethodPost, "http://"+pick(try)+"/v1/integrations/"+integration+"/leads", bytes.NewReader(ndjson))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-ndjson")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			lastErr = err
			time.Sleep(250 * time.Millisecond)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			// 503 while NATS elects a new leader: send it again.
			lastErr = fmt.Errorf("status %d: %s", resp.StatusCode, b)
			time.Sleep(250 * time.Millisecond)
			continue
		}
		var out struct {
			Leads []struct {
				ID string `json:"id"`
			} `json:"leads"`
		}
		if err := json.Unmarshal(b, &out); err != nil {
			return nil, err
		}
		ids := make([]string, len(out.Leads))
		for i, l := range out.Leads {
			ids[i] = l.ID
		}
		return ids, nil
	}
	return nil, lastErr
}

func sortedTimes(ts []time.Time) []time.Time {
	s := stamps{ts: ts}
	return s.sorted()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func waitFor(t testing.TB, what string, progress func() (n int, done bool)) {
	t.Helper()
	last, since := -1, time.Now()
	for {
		n, done := progress()
		if done {
			return
		}
		if n != last {
			last, since = n, time.Now()
		}
		if time.Since(since) > stallLimit {
			t.Fatalf("no progress for %s waiting for: %s (stuck at %d)", stallLimit, what, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stallLimit is how long a wait may see no progress at all before the test
// fails. The waits have no total limit: a slow or busy machine makes
// progress slowly, a broken cluster makes none.
const stallLimit = 2 * time.Minute
