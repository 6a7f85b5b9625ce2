package cluster_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/queue/natstest"
	"github.com/plumbhq/plumb/internal/serve"
)

// TestScaleThroughput measures leads/s through 1, 2 and 3 plumb serve
// instances on a 3-node NATS cluster (R3), all on this machine, running
// the blacklist example against each instance's sandbox (no rate limit):
// leads posted as NDJSON (100 a request) by 8 clients, timed until every result is
// stored. The figures are in BENCHMARKS.md. Opt-in (it measures, it does
// not check):
//
//	PLUMB_SCALE_BENCH=3000 go test -run TestScaleThroughput -v ./internal/cluster
func TestScaleThroughput(t *testing.T) {
	n := envInt("PLUMB_SCALE_BENCH", 0)
	if n == 0 {
		t.Skip("set PLUMB_SCALE_BENCH=<leads> to measure")
	}
	dir := t.TempDir()
	for src, dst := range map[string]string{"integration.yaml": "blacklist.yaml", "settings.yaml": "blacklist.settings.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "blacklist", src))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dir, dst), b, 0o600))
	}
	for _, instances := range []int{1, 2, 3} {
		t.Run(strconv.Itoa(instances), func(t *testing.T) {
			c := natstest.StartCluster(t, 3)
			var servers []*serve.Server
			for range instances {
				cfg := serve.Config{Dir: dir, Addr: "127.0.0.1:0", NATS: c.URLs(), Sandbox: true, Concurrency: 32,
					Logger: slog.New(slog.DiscardHandler)}
				s, err := serve.New(cfg)
				must(t, err)
				must(t, s.Start())
				t.Cleanup(func() { _ = s.Shutdown(t.Context()) })
				servers = append(servers, s)
			}
			q := servers[0].Queue()
			ids := make([]string, n)
			const batch = 100
			var next atomic.Int64
			var wg sync.WaitGroup
			cpu0 := cpuTime()
			start := time.Now()
			for range 8 {
				wg.Go(func() {
					for {
						from := int(next.Add(batch)) - batch
						if from >= n {
							return
						}
						var body bytes.Buffer
						for i := from; i < min(from+batch, n); i++ {
							fmt.Fprintf(&body, `{"email": "jane.doe+%d@gmail.example", "phone": "(512) 555-0142", "ip_address": "203.0.113.7"}`+"\n", i)
						}
						s := servers[(from/batch)%len(servers)]
						got, err := postLeadsTo(s.Addr(), "internal-blacklist", "", body.Bytes())
						if err != nil {
							t.Error(err)
							return
						}
						copy(ids[from:], got)
					}
				})
			}
			wg.Wait()
			accepted := time.Since(start)
			waitFor(t, "all results", func() (int, bool) {
				missing := 0
				for i := n - 1; i >= 0; i-- {
					if _, err := q.GetResult(t.Context(), ids[i]); err != nil {
						missing++
					}
				}
				return missing, missing == 0
			})
			total := time.Since(start)
			cpu := cpuTime() - cpu0
			t.Logf("%d instance(s), %d cores: %d leads accepted in %s (%.0f/s), all done in %s: %.0f leads/s; CPU %.1fs (%.2f cores busy, %.0f µs of CPU per lead for everything: NATS nodes, instances, sandboxes, clients)",
				instances, runtime.NumCPU(), n, accepted.Round(time.Millisecond), float64(n)/accepted.Seconds(),
				total.Round(time.Millisecond), float64(n)/total.Seconds(), cpu.Seconds(), cpu.Seconds()/total.Seconds(), float64(cpu.Microseconds())/float64(n))
		})
	}
}

// cpuTime is the CPU time this process used so far (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
