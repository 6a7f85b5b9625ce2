package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/childtest"
	"github.com/plumbhq/plumb/internal/queue"
)

// The subprocess tests re-execute the test binary as a `plumb serve`
// process: TestMain runs Run (the same function the CLI calls, signals and
// all) in a child of role "serve".
const (
	subprocessLead = 1000
	// childConcurrency is the child's per-integration limit and so its
	// number of workers (one integration).
	childConcurrency = 8
)

func TestMain(m *testing.M) {
	childtest.Main(m, map[string]func(args []string) int{
		"serve": func(args []string) int { return childMain(args[0], args[1]) },
	})
}

func childMain(dir, data string) int {
	cfg := Config{
		Dir:          dir,
		Addr:         "127.0.0.1:0",
		DataDir:      data,
		Concurrency:  childConcurrency,
		DrainTimeout: 30 * time.Second,
		Logger:       slog.New(slog.NewJSONHandler(os.Stderr, nil)),
		Queue: queue.Config{
			// bounds the wait for leads in flight at a kill: they are
			// redelivered once AckWait passes without a progress signal
			AckWait:    2 * time.Second,
			MaxDeliver: 5,
		},
	}
	if err := Run(context.Background(), cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// child is a `plumb serve` subprocess listening at addr.
type child struct {
	*childtest.Child
	addr string
}

// startChild starts a `plumb serve` subprocess on the integrations in dir
// and the data dir data, and waits for it to listen.
func startChild(t *testing.T, dir, data string) *child {
	t.Helper()
	c := childtest.Start(t, childtest.Options{Role: "serve", Args: []string{dir, data}})
	var rec struct{ Msg, Addr string }
	c.Stderr.Await(t, 60*time.Second, "the listening log line", func(line string) bool {
		return json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening"
	})
	return &child{Child: c, addr: rec.Addr}
}

// childExit bounds the wait for a child's exit (it only turns a hang into
// a failure).
const childExit = 120 * time.Second

// gate holds the partner's answers once it has seen `after` distinct leads
// and tells when `hold` requests are held: every worker of the child is
// then inside a partner call, so every other lead either has its result
// stored and acknowledged or has not started.
type gate struct {
	mu      sync.Mutex
	after   int
	seen    map[int]bool
	held    map[int]bool
	full    chan struct{} // closed when len(held) == hold
	release chan struct{}
	hold    int
}

func newGate(after, hold int) *gate {
	return &gate{after: after, hold: hold, seen: map[int]bool{}, held: map[int]bool{},
		full: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) hook(n int) {
	g.mu.Lock()
	g.seen[n] = true
	select {
	case <-g.release:
		g.mu.Unlock()
		return
	default:
	}
	if len(g.seen) <= g.after {
		g.mu.Unlock()
		return
	}
	g.held[n] = true
	if len(g.held) == g.hold {
		close(g.full)
	}
	g.mu.Unlock()
	<-g.release
}

func (g *gate) heldLeads() map[int]bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[int]bool{}
	for n := range g.held {
		out[n] = true
	}
	return out
}

// acceptAll posts the leads as one NDJSON body and returns id → n.
func acceptAll(t *testing.T, c client, n int) map[string]int {
	t.Helper()
	var body bytes.Buffer
	for i := range n {
		fmt.Fprintf(&body, "{\"n\": %d, \"email\": \"lead%d@x.example\"}\n", i, i)
	}
	code, b := c.do("POST", "/v1/integrations/partner/leads", "application/x-ndjson", body.Bytes())
	if code != 202 {
		t.Fatalf("accept: %d %s", code, b)
	}
	acc := decode[accepted](t, b)
	if acc.Accepted != n {
		t.Fatalf("accepted %d of %d", acc.Accepted, n)
	}
	ids := map[string]int{}
	for i, l := range acc.Leads {
		ids[l.ID] = i
	}
	return ids
}

// drained waits until the child's queue is empty.
func drained(t *testing.T, c client) {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		code, b := c.do("GET", "/v1/queue", "", nil)
		var st struct{ Depth, Dead int }
		if code == 200 && json.Unmarshal(b, &st) == nil && st.Depth == 0 {
			if st.Dead != 0 {
				t.Fatalf("dead letters: %s", b)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not drained after 120s: %d %s", code, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// held is a first child, on a new data dir, serving the partner's
// integration, that has accepted subprocessLead leads and has every one
// of its workers inside a partner call that the gate holds: every other
// lead then either has its result stored and acknowledged or has not
// started.
type held struct {
	p         *partner
	g         *gate
	dir, data string
	first     *child
	ids       map[string]int // lead id → n
}

// startHeld starts a held child and returns once the gate is full (no
// clock involved).
func startHeld(t *testing.T) held {
	t.Helper()
	h := held{p: newPartner(t), g: newGate(300, childConcurrency), dir: t.TempDir(), data: t.TempDir()}
	h.p.hook = h.g.hook
	writeIntegration(t, h.dir, h.p.URL)
	h.first = startChild(t, h.dir, h.data)
	h.ids = acceptAll(t, client{t: t, base: "http://" + h.first.addr}, subprocessLead)
	<-h.g.full
	return h
}

// drainAfterRestart starts a new child on dir and data (after a first one
// was stopped), waits until it has drained its queue, runs then against
// it (when not nil), and stops it with SIGTERM, which must end it with
// exit status 0.
func drainAfterRestart(t *testing.T, dir, data string, then func(c client)) {
	t.Helper()
	second := startChild(t, dir, data)
	c := client{t: t, base: "http://" + second.addr}
	drained(t, c)
	if then != nil {
		then(c)
	}
	if err := second.Stop(t, syscall.SIGTERM, childExit); err != nil {
		t.Fatalf("second child: %v", err)
	}
}

// checkRepeats checks, after a kill -9 and a restart, that each of the
// leads 0..n-1 (of the kind what: "lead", "event") reached the partner,
// more than once only if it was in flight at the kill; it returns how
// many were repeated.
func checkRepeats(t *testing.T, p *partner, n int, inFlight map[int]bool, what string) (repeats int) {
	t.Helper()
	counts := p.snapshot()
	missing := 0
	for i := range n {
		switch c := counts[i]; {
		case c == 0:
			missing++
		case c > 1:
			repeats++
			if !inFlight[i] {
				t.Errorf("%s %d reached the partner %d times but was not in flight at the kill", what, i, c)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d accepted %ss never reached the partner", missing, what)
	}
	return repeats
}

// checkResults checks, with the child stopped, that the data dir holds
// exactly one result per accepted lead, each a success.
func checkResults(t *testing.T, data string, ids map[string]int) {
	t.Helper()
	ctx := context.Background()
	q, err := queue.Open(ctx, queue.Config{DataDir: data})
	must(t, err)
	defer q.Close()
	kv, err := q.JetStream().KeyValue(ctx, "plumb_results")
	must(t, err)
	keys, err := kv.ListKeys(ctx)
	must(t, err)
	stored := 0
	for range keys.Keys() {
		stored++
	}
	if stored != len(ids) {
		t.Errorf("%d results stored, want %d", stored, len(ids))
	}
	st, err := q.Stats(ctx)
	must(t, err)
	if st.Depth != 0 || st.Dead != 0 {
		t.Errorf("queue after the run: %+v", st)
	}
	lost := 0
	for id, n := range ids {
		b, err := q.GetResult(ctx, id)
		if err != nil {
			lost++
			continue
		}
		var r result
		if err := json.Unmarshal(b, &r); err != nil || r.Outcome != "success" || r.Lead["email"] != fmt.Sprintf("lead%d@x.example", n) {
			t.Errorf("lead %d (%s): %s", n, id, b)
		}
	}
	if lost > 0 {
		t.Errorf("%d leads lost", lost)
	}
}

func TestKill9Durability(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	h := startHeld(t)
	h.first.Kill9(t)
	inFlight := h.g.heldLeads()
	close(h.g.release)

	drainAfterRestart(t, h.dir, h.data, nil)
	checkResults(t, h.data, h.ids)
	dups := checkRepeats(t, h.p, subprocessLead, inFlight, "lead")
	t.Logf("kill -9: %d leads accepted, %d in flight at the kill, 0 lost; partner-side duplicates: %d (all among those in flight)",
		len(h.ids), len(inFlight), dups)
}

func TestSIGTERMGraceful(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	h := startHeld(t)
	start := time.Now()
	must(t, h.first.Signal(syscall.SIGTERM))
	// the partner answers the held calls only after the signal, so those
	// leads are in flight through the shutdown
	close(h.g.release)
	if err := h.first.Wait(t, childExit); err != nil {
		t.Fatalf("SIGTERM: exit %v, want 0", err)
	}
	drain := time.Since(start)
	doneFirst := len(h.p.snapshot())

	drainAfterRestart(t, h.dir, h.data, nil)
	checkResults(t, h.data, h.ids)
	counts := h.p.snapshot()
	dups := 0
	for n := range subprocessLead {
		if counts[n] != 1 {
			dups++
			t.Errorf("lead %d reached the partner %d times, want once", n, counts[n])
		}
	}
	t.Logf("SIGTERM: %d leads accepted, %d run before the stop (%d in flight at the signal, all finished), exit 0 after %v; the rest ran after the restart; 0 lost, %d duplicates",
		len(h.ids), doneFirst, len(h.g.heldLeads()), drain.Round(time.Millisecond), dups)
}
