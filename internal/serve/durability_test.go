package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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
	childtest.Main(m, map[string]func(args []string) int{"serve": childMain})
}

// childMain serves args[0] on the data dir args[1]. Later arguments tune
// it: ackwait=D sets the queue's AckWait; concurrency=N the leads of the
// integration running at once (its workers); maxstore=N caps the embedded
// server's storage at N bytes; filler makes SIGUSR1 fill that storage (a
// stream of filler messages, until JetStream refuses one: "filled" on
// stdout) and SIGUSR2 give the space back ("freed").
func childMain(args []string) int {
	dir, data := args[0], args[1]
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
	filler := false
	for _, a := range args[2:] {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "ackwait":
			cfg.Queue.AckWait, _ = time.ParseDuration(v)
		case "concurrency":
			cfg.Concurrency, _ = strconv.Atoi(v)
		case "maxstore":
			cfg.Queue.MaxFileStore, _ = strconv.ParseInt(v, 10, 64)
			cfg.Queue.MinFreeDisk = -1
		case "filler":
			filler = true
		case "crashcommit":
			cfg.Queue.CommitHook = stopAtCommit(v == "synced")
		}
	}
	if filler {
		return fillerChild(cfg)
	}
	if err := Run(context.Background(), cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// stopAtCommit is the child's queue commit hook for
// "crashcommit=written|synced": at the first group commit of at least two
// records past the 100th record, at the moment given (written to the
// record log and not synced, or synced and not acknowledged), it says so
// on stdout — "commit POINT FILE OFFSET LENGTH ID..." (FILE "-" when
// synced) — and stops that
// commit for good, so that the test kills the process exactly there. Only
// this test binary sets a CommitHook.
func stopAtCommit(synced bool) func(queue.CommitPoint) {
	var stored atomic.Int64
	return func(p queue.CommitPoint) {
		if p.Synced != synced {
			return
		}
		if stored.Add(int64(len(p.IDs))) <= 100 || len(p.IDs) < 2 {
			return
		}
		point := map[bool]string{false: "written", true: "synced"}[synced]
		file := p.File
		if file == "" { // a synced point names no file: keep the fields in place
			file = "-"
		}
		fmt.Printf("commit %s %s %d %d %s\n", point, file, p.Offset, p.Length, strings.Join(p.IDs, " "))
		select {} // until the kill
	}
}

// fillerChild is Run (without SIGHUP) plus childMain's filler signals.
func fillerChild(cfg Config) int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGUSR2)
	s, err := New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	ctx := context.Background()
	js := s.Queue().JetStream()
	for sig := range sigs {
		switch sig {
		case syscall.SIGUSR1:
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FILLER", Subjects: []string{"filler"}}); err != nil {
				fmt.Println("error", err)
				continue
			}
			chunk := bytes.Repeat([]byte("f"), 16<<10)
			for {
				if _, err := js.Publish(ctx, "filler", chunk); err != nil {
					fmt.Println("filled", err)
					break
				}
			}
		case syscall.SIGUSR2:
			if err := js.DeleteStream(ctx, "FILLER"); err != nil {
				fmt.Println("error", err)
				continue
			}
			fmt.Println("freed")
		default:
			sctx, cancel := context.WithTimeout(ctx, cfg.DrainTimeout)
			err := s.Shutdown(sctx)
			cancel()
			if err != nil {
				fmt.Fprintln(os.Stderr, "child:", err)
				return 1
			}
			return 0
		}
	}
	return 1
}

// child is a `plumb serve` subprocess listening at addr.
type child struct {
	*childtest.Child
	addr string
}

// startChild starts a `plumb serve` subprocess on the integrations in dir
// and the data dir data (tuned by extra, see childMain), and waits for it
// to listen.
func startChild(t *testing.T, dir, data string, extra ...string) *child {
	t.Helper()
	c := childtest.Start(t, childtest.Options{Role: "serve", Args: append([]string{dir, data}, extra...)})
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
	once    sync.Once
}

// open releases the held requests (and lets every later one through); it
// may be called more than once, and from a cleanup, so that a failed test
// does not leave the partner's handlers blocked.
func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

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
// clock involved). extra tunes the child (see childMain).
func startHeld(t *testing.T, extra ...string) held {
	t.Helper()
	h := held{p: newPartner(t), g: newGate(300, childConcurrency), dir: t.TempDir(), data: t.TempDir()}
	h.p.hook = h.g.hook
	writeIntegration(t, h.dir, h.p.URL)
	h.first = startChild(t, h.dir, h.data, extra...)
	h.ids = acceptAll(t, client{t: t, base: "http://" + h.first.addr}, subprocessLead)
	<-h.g.full
	return h
}

// drainAfterRestart starts a new child on dir and data (after a first one
// was stopped), waits until it has drained its queue, runs then against
// it (when not nil), and stops it with SIGTERM, which must end it with
// exit status 0.
func drainAfterRestart(t *testing.T, dir, data string, then func(c client), extra ...string) {
	t.Helper()
	second := startChild(t, dir, data, extra...)
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

// checkResults checks, with the child stopped, that the data dir holds a
// result for every accepted lead, each a success, and nothing queued.
func checkResults(t *testing.T, data string, ids map[string]int) {
	t.Helper()
	ctx := context.Background()
	q, err := queue.Open(ctx, queue.Config{DataDir: data})
	must(t, err)
	defer q.Close()
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

// TestKill9PromptRedelivery: with an ack wait of 10 minutes, the leads in
// flight at a kill -9 still run promptly after the restart: the restarted
// (embedded, so only) instance hands them back at once. Draining within
// drained's bound — far below the ack wait — is the proof.
func TestKill9PromptRedelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	h := startHeld(t, "ackwait=10m")
	t.Cleanup(h.g.open)
	h.first.Kill9(t)
	inFlight := h.g.heldLeads()
	h.g.open()
	start := time.Now()
	drainAfterRestart(t, h.dir, h.data, func(c client) {
		code, b := c.do("GET", "/v1/queue", "", nil)
		if code != 200 || bytes.Contains(b, []byte(`"lost"`)) {
			t.Errorf("queue after a kill -9: %d %s, want nothing lost", code, b)
		}
	}, "ackwait=10m")
	checkResults(t, h.data, h.ids)
	dups := checkRepeats(t, h.p, subprocessLead, inFlight, "lead")
	t.Logf("kill -9 with a 10m ack wait: %d in flight at the kill, all %d done %v after the restart began; %d partner-side repeats",
		len(inFlight), len(h.ids), time.Since(start).Round(time.Millisecond), dups)
}

// TestKill9HundredInFlight: 100 leads inside partner calls (and more
// queued) when `plumb serve` is killed with SIGKILL; with an ack wait of
// 10 minutes the restarted process still runs every one of them — it hands
// back what the killed one held at once — and only those 100 may reach the
// partner twice. The time from the restart to the drained queue is logged
// (BENCHMARKS.md); the test itself waits for counts, not for a clock.
func TestKill9HundredInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	const inFlight, leads = 100, 400
	p := newPartner(t)
	g := newGate(0, inFlight)
	t.Cleanup(g.open)
	p.hook = g.hook
	dir, data := t.TempDir(), t.TempDir()
	writeIntegration(t, dir, p.URL)
	extra := []string{"ackwait=10m", fmt.Sprintf("concurrency=%d", inFlight)}
	first := startChild(t, dir, data, extra...)
	ids := acceptAll(t, client{t: t, base: "http://" + first.addr}, leads)
	<-g.full // every worker is inside a partner call
	first.Kill9(t)
	held := g.heldLeads()
	if len(held) != inFlight {
		t.Fatalf("%d leads in flight at the kill, want %d", len(held), inFlight)
	}
	g.open()
	start := time.Now()
	second := startChild(t, dir, data, extra...)
	c := client{t: t, base: "http://" + second.addr}
	drained(t, c)
	took := time.Since(start)
	for id, n := range ids {
		if st := c.waitDone(id); st.Result == nil || st.Result.Outcome != "success" {
			t.Fatalf("lead %d after the restart: %+v", n, st)
		}
	}
	dups := checkRepeats(t, p, leads, held, "lead")
	if err := second.Stop(t, syscall.SIGTERM, childExit); err != nil {
		t.Fatalf("second child: %v", err)
	}
	t.Logf("kill -9 with %d leads in flight (ack wait 10m): all %d done %v after the restart began (start included); %d partner-side repeats, all among those in flight",
		inFlight, leads, took.Round(time.Millisecond), dups)
}

// queueState is the part of GET /v1/queue the fault tests read.
type queueState struct {
	Depth   int    `json:"depth"`
	Storage string `json:"storage"`
	Held    int    `json:"results_held"`
	Lost    *struct {
		Count   int      `json:"count"`
		Leads   []string `json:"leads"`
		Unnamed int      `json:"unnamed"`
	} `json:"lost"`
}

// TestTruncatedJobsStreamReported: 200 leads accepted, the service
// stopped, the jobs stream's block file truncated; the next start reports
// the leads lost — an ERROR log, GET /v1/queue naming them, a metric — and
// each lost id answers state "lost", not 404.
func TestTruncatedJobsStreamReported(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	const leads = 200
	p := newPartner(t)
	g := newGate(0, childConcurrency) // nothing finishes: every lead stays queued
	t.Cleanup(g.open)
	p.hook = g.hook
	dir, data := t.TempDir(), t.TempDir()
	writeIntegration(t, dir, p.URL)
	first := startChild(t, dir, data)
	ids := acceptAll(t, client{t: t, base: "http://" + first.addr}, leads)
	<-g.full
	must(t, first.Signal(syscall.SIGTERM))
	g.open() // the leads in flight finish through the shutdown
	if err := first.Wait(t, childExit); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	finished := len(p.snapshot())

	block := data + "/nats/jetstream/$G/streams/PLUMB_WORK/msgs/1.blk"
	st, err := os.Stat(block)
	must(t, err)
	must(t, os.Truncate(block, st.Size()/2))

	g2 := newGate(0, childConcurrency) // again nothing finishes: the depth holds still
	t.Cleanup(g2.open)
	p.mu.Lock()
	p.hook = g2.hook
	p.mu.Unlock()
	second := startChild(t, dir, data)
	c := client{t: t, base: "http://" + second.addr}
	code, b := c.do("GET", "/v1/queue", "", nil)
	qs := decode[queueState](t, b)
	if code != 200 || qs.Lost == nil {
		t.Fatalf("queue after the truncation: %d %s, want lost leads reported", code, b)
	}
	// (a truncated block can also lose the record that a finished lead
	// left the stream: it is then held again, not lost)
	if qs.Lost.Count == 0 || qs.Lost.Count+qs.Depth < leads-finished || qs.Lost.Count+qs.Depth > leads {
		t.Fatalf("%d reported lost; %d accepted, %d finished, %d held", qs.Lost.Count, leads, finished, qs.Depth)
	}
	if len(qs.Lost.Leads) != qs.Lost.Count || qs.Lost.Unnamed != 0 {
		t.Errorf("lost leads named: %d of %d", len(qs.Lost.Leads), qs.Lost.Count)
	}
	ran := p.snapshot()
	for _, id := range qs.Lost.Leads {
		n, ok := ids[id]
		if !ok || ran[n] != 0 {
			t.Fatalf("%s reported lost: accepted %v, finished %v", id, ok, ran[n] != 0)
		}
	}
	states := map[string]int{}
	for id := range ids { // no accepted lead is unknown
		code, b := c.do("GET", "/v1/leads/"+id, "", nil)
		if code != 200 {
			t.Fatalf("accepted lead %s: %d %s", id, code, b)
		}
		states[decode[leadStatus](t, b).State]++
	}
	if states["lost"] != qs.Lost.Count {
		t.Errorf("lead states %v, want %d lost", states, qs.Lost.Count)
	}
	if got := value(scrape(t, c), "plumb_queue_lost_leads", nil); got != float64(qs.Lost.Count) {
		t.Errorf("plumb_queue_lost_leads %v, want %d", got, qs.Lost.Count)
	}
	logged := false // at start, before the listening line
	for _, line := range second.Stderr.Lines() {
		logged = logged || strings.Contains(line, `"level":"ERROR"`) && strings.Contains(line, "JOBS LOST") &&
			strings.Contains(line, fmt.Sprintf(`"lost":%d`, qs.Lost.Count))
	}
	if !logged {
		t.Errorf("no ERROR line reports the %d lost leads", qs.Lost.Count)
	}
	g2.open()
	if err := second.Stop(t, syscall.SIGTERM, childExit); err != nil {
		t.Fatalf("second child: %v", err)
	}
	t.Logf("truncated: %d accepted, %d finished before the stop, %d still queued, %d reported lost (each named, each answering state lost)",
		leads, finished, qs.Depth, qs.Lost.Count)
}

// TestStorageFullSubprocess: a `plumb serve` whose queue storage fills up
// (an injected max_file_store, filled through JetStream: the real
// insufficient-resources refusal) answers POST /leads with 503
// storage_unavailable at once and /readyz 503; the leads it holds still
// run and store their results (the records are not in JetStream's store),
// each reaching the partner once; once space returns it takes leads
// again.
func TestStorageFullSubprocess(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	const leads = 40
	p := newPartner(t)
	g := newGate(0, childConcurrency)
	t.Cleanup(g.open)
	p.hook = g.hook
	dir, data := t.TempDir(), t.TempDir()
	writeIntegration(t, dir, p.URL)
	ch := startChild(t, dir, data, "maxstore=4194304", "filler")
	c := client{t: t, base: "http://" + ch.addr}
	ids := acceptAll(t, c, leads)
	<-g.full // every worker is inside a partner call

	must(t, ch.Signal(syscall.SIGUSR1))
	ch.Stdout.Await(t, 60*time.Second, "the store filled", func(line string) bool { return strings.HasPrefix(line, "filled") })
	code, b, hdr := postWithin(t, c, 30*time.Second, ndjson(1000, 500))
	if code != 503 || errorCode(t, b) != CodeStorage || hdr.Get("Retry-After") == "" {
		t.Fatalf("POST /leads on a full store: %d %s (Retry-After %q), want 503 %s", code, b, hdr.Get("Retry-After"), CodeStorage)
	}
	if code, b := c.do("GET", "/readyz", "", nil); code != 503 || !strings.Contains(string(b), "storage") {
		t.Fatalf("/readyz on a full store: %d %s", code, b)
	}

	g.open() // the held partner calls answer; every accepted lead runs
	for id, n := range ids {
		if st := c.waitDone(id); st.Result == nil || st.Result.Outcome != "success" {
			t.Fatalf("lead %d while the store was full: %+v", n, st)
		}
	}
	mf := scrape(t, c)
	if v := value(mf, "plumb_queue_results_held", nil); v != 0 {
		t.Errorf("plumb_queue_results_held %v, want 0: the records are not in the full store", v)
	}
	if v := value(mf, "plumb_queue_storage_ok", nil); v != 0 {
		t.Errorf("plumb_queue_storage_ok %v while full", v)
	}

	must(t, ch.Signal(syscall.SIGUSR2))
	ch.Stdout.Await(t, 60*time.Second, "the space back", func(line string) bool { return line == "freed" })
	drained(t, c)
	for id := range ids {
		if st := c.waitDone(id); st.Result == nil || st.Result.Outcome != "success" {
			t.Fatalf("lead %s: %+v", id, st)
		}
	}
	counts := p.snapshot()
	for n := range leads {
		if counts[n] != 1 {
			t.Errorf("lead %d reached the partner %d times, want once", n, counts[n])
		}
	}
	waitReady(t, c)
	if code, b, _ := postWithin(t, c, 30*time.Second, ndjson(2000, 3)); code != 202 {
		t.Fatalf("POST /leads after recovery: %d %s", code, b)
	}
	if err := ch.Stop(t, syscall.SIGTERM, childExit); err != nil {
		t.Fatalf("child: %v", err)
	}
}

// TestIdempotencyKeyReusedSubprocess: a `plumb serve` refuses an
// Idempotency-Key sent again with other leads (422), stores nothing for
// it, and still answers the first body's repeat as duplicates.
func TestIdempotencyKeyReusedSubprocess(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	p := newPartner(t)
	dir, data := t.TempDir(), t.TempDir()
	writeIntegration(t, dir, p.URL)
	ch := startChild(t, dir, data)
	c := client{t: t, base: "http://" + ch.addr}
	first, second := ndjson(0, 2), ndjson(10, 2)
	code, b := c.do("POST", "/v1/integrations/partner/leads", "application/x-ndjson", first, "Idempotency-Key", "k1")
	if code != 202 || decode[accepted](t, b).Accepted != 2 {
		t.Fatalf("first: %d %s", code, b)
	}
	code, b = c.do("POST", "/v1/integrations/partner/leads", "application/x-ndjson", second, "Idempotency-Key", "k1")
	if code != 422 || errorCode(t, b) != CodeIdemReused {
		t.Fatalf("the key with other leads: %d %s, want 422 %s", code, b, CodeIdemReused)
	}
	code, b = c.do("POST", "/v1/integrations/partner/leads", "application/x-ndjson", first, "Idempotency-Key", "k1")
	if again := decode[accepted](t, b); code != 202 || again.Accepted != 0 || len(again.Leads) != 2 || !again.Leads[0].Duplicate {
		t.Fatalf("the first body again: %d %s", code, b)
	}
	drained(t, c)
	counts := p.snapshot()
	if counts[0] != 1 || counts[1] != 1 || counts[10] != 0 || counts[11] != 0 {
		t.Errorf("partner saw %v, want leads 0 and 1 once and the refused ones never", counts)
	}
	if err := ch.Stop(t, syscall.SIGTERM, childExit); err != nil {
		t.Fatalf("child: %v", err)
	}
}
