package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/queue"
)

// The subprocess tests re-execute the test binary as a `plumb serve`
// process: TestMain runs Run (the same function the CLI calls, signals and
// all) when childEnv is set.
const (
	childEnv       = "PLUMB_SERVE_TEST_CHILD"
	childDataEnv   = "PLUMB_SERVE_TEST_DATA"
	subprocessLead = 1000
	// childConcurrency is the child's per-integration limit and so its
	// number of workers (one integration).
	childConcurrency = 8
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(childMain(dir, os.Getenv(childDataEnv)))
	}
	os.Exit(m.Run())
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

// child is a `plumb serve` subprocess.
type child struct {
	cmd  *exec.Cmd
	addr string
	done chan error // the exit
	log  *bytes.Buffer
	mu   *sync.Mutex
}

func startChild(t *testing.T, dir, data string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir, childDataEnv+"="+data)
	stderr, err := cmd.StderrPipe()
	must(t, err)
	must(t, cmd.Start())
	c := &child{cmd: cmd, done: make(chan error, 1), log: &bytes.Buffer{}, mu: &sync.Mutex{}}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			c.mu.Lock()
			c.log.WriteString(line + "\n")
			c.mu.Unlock()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				addr <- rec.Addr
			}
		}
		c.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			c.mu.Lock()
			t.Logf("child log:\n%s", lastLines(c.log.String(), 40))
			c.mu.Unlock()
		}
	})
	select {
	case c.addr = <-addr:
	case err := <-c.done:
		t.Fatalf("child exited before listening: %v\n%s", err, c.log)
	case <-time.After(60 * time.Second):
		t.Fatal("child not listening after 60s")
	}
	return c
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// wait waits for the child's exit (the deadline only turns a hang into a
// failure).
func (c *child) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-c.done:
		return err
	case <-time.After(120 * time.Second):
		t.Fatal("child did not exit within 120s")
		return nil
	}
}

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
	p := newPartner(t)
	g := newGate(300, childConcurrency)
	p.hook = g.hook
	dir, data := t.TempDir(), t.TempDir()
	writeIntegration(t, dir, p.URL)

	first := startChild(t, dir, data)
	c := client{t: t, base: "http://" + first.addr}
	ids := acceptAll(t, c, subprocessLead)
	<-g.full // every worker is inside a partner call (no clock involved)
	must(t, first.cmd.Process.Signal(syscall.SIGKILL))
	err := first.wait(t)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("first child: %v, want killed", err)
	}
	inFlight := g.heldLeads()
	close(g.release)

	second := startChild(t, dir, data)
	c = client{t: t, base: "http://" + second.addr}
	drained(t, c)
	must(t, second.cmd.Process.Signal(syscall.SIGTERM))
	if err := second.wait(t); err != nil {
		t.Fatalf("second child: %v", err)
	}
	checkResults(t, data, ids)

	counts := p.snapshot()
	dups, missing := 0, 0
	for n := range subprocessLead {
		switch c := counts[n]; {
		case c == 0:
			missing++
		case c > 1:
			dups++
			if !inFlight[n] {
				t.Errorf("lead %d reached the partner %d times but was not in flight at the kill", n, c)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d leads never reached the partner", missing)
	}
	t.Logf("kill -9: %d leads accepted, %d in flight at the kill, 0 lost; partner-side duplicates: %d (all among those in flight)",
		len(ids), len(inFlight), dups)
}

func TestSIGTERMGraceful(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	p := newPartner(t)
	g := newGate(300, childConcurrency)
	p.hook = g.hook
	dir, data := t.TempDir(), t.TempDir()
	writeIntegration(t, dir, p.URL)

	first := startChild(t, dir, data)
	c := client{t: t, base: "http://" + first.addr}
	ids := acceptAll(t, c, subprocessLead)
	<-g.full
	start := time.Now()
	must(t, first.cmd.Process.Signal(syscall.SIGTERM))
	// the partner answers the held calls only after the signal, so those
	// leads are in flight through the shutdown
	close(g.release)
	if err := first.wait(t); err != nil {
		t.Fatalf("SIGTERM: exit %v, want 0", err)
	}
	drain := time.Since(start)
	doneFirst := len(p.snapshot())

	second := startChild(t, dir, data)
	c = client{t: t, base: "http://" + second.addr}
	drained(t, c)
	must(t, second.cmd.Process.Signal(syscall.SIGTERM))
	if err := second.wait(t); err != nil {
		t.Fatalf("second child: %v", err)
	}
	checkResults(t, data, ids)
	counts := p.snapshot()
	dups := 0
	for n := range subprocessLead {
		if counts[n] != 1 {
			dups++
			t.Errorf("lead %d reached the partner %d times, want once", n, counts[n])
		}
	}
	t.Logf("SIGTERM: %d leads accepted, %d run before the stop (%d in flight at the signal, all finished), exit 0 after %v; the rest ran after the restart; 0 lost, %d duplicates",
		len(ids), doneFirst, len(g.heldLeads()), drain.Round(time.Millisecond), dups)
}
