package serve

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The serve load figures (BENCHMARKS.md): the blacklist example against the
// in-process sandbox, as `plumb bench --sandbox` runs it, through the HTTP
// API on loopback with 32 concurrent clients. The queue keeps its
// production default: every write fsynced.
//
//	go test -run '^$' -bench Serve -benchtime 5000x ./internal/serve

const benchClients = 32

func benchServer(b *testing.B, sync time.Duration) (*Server, client) {
	dir := b.TempDir()
	for src, dst := range map[string]string{"integration.yaml": "blacklist.yaml", "settings.yaml": "blacklist.settings.yaml"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "examples", "blacklist", src))
		must(b, err)
		must(b, os.WriteFile(filepath.Join(dir, dst), data, 0o600))
	}
	cfg := Config{Dir: dir, Addr: "127.0.0.1:0", DataDir: b.TempDir(), Sandbox: true, Concurrency: 32,
		Logger: slog.New(slog.DiscardHandler)}
	cfg.Queue.SyncInterval = sync
	s, err := New(cfg)
	must(b, err)
	must(b, s.Start())
	b.Cleanup(func() { s.Shutdown(b.Context()) })
	http.DefaultTransport.(*http.Transport).MaxIdleConnsPerHost = benchClients
	return s, client{t: b, base: "http://" + s.Addr()}
}

func benchLead(i int) []byte {
	return fmt.Appendf(nil, `{"email": "jane.doe+%d@gmail.example", "phone": "(512) 555-0142", "ip_address": "203.0.113.7"}`, i)
}

// hammer sends n requests from benchClients goroutines and returns each
// request's latency, sorted.
func hammer(b *testing.B, n int, send func(i int)) []time.Duration {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range benchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				send(i)
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	return lat
}

func pct(lat []time.Duration, p float64) float64 {
	return float64(lat[int(float64(len(lat)-1)*p)]) / float64(time.Millisecond)
}

func BenchmarkServeRun(b *testing.B) {
	_, c := benchServer(b, 0)
	b.ResetTimer()
	start := time.Now()
	lat := hammer(b, b.N, func(i int) {
		if code, body := c.do("POST", "/v1/integrations/internal-blacklist/run", "application/json", benchLead(i)); code != 200 {
			b.Fatalf("run: %d %s", code, body)
		}
	})
	el := time.Since(start)
	b.ReportMetric(float64(b.N)/el.Seconds(), "runs/s")
	b.ReportMetric(pct(lat, .5), "p50_ms")
	b.ReportMetric(pct(lat, .99), "p99_ms")
}

// fsync names the queue's SyncInterval: always (the default) or 1s.
var fsyncModes = []struct {
	name string
	d    time.Duration
}{{"fsync=always", 0}, {"fsync=1s", time.Second}}

func BenchmarkServeLeads(b *testing.B) {
	for _, m := range fsyncModes {
		b.Run(m.name, func(b *testing.B) { benchLeads(b, m.d) })
	}
}

func benchLeads(b *testing.B, sync time.Duration) {
	_, c := benchServer(b, sync)
	b.ResetTimer()
	start := time.Now()
	lat := hammer(b, b.N, func(i int) {
		if code, body := c.do("POST", "/v1/integrations/internal-blacklist/leads", "application/json", benchLead(i)); code != 202 {
			b.Fatalf("accept: %d %s", code, body)
		}
	})
	accepted := time.Since(start)
	drainedBench(b, c)
	completed := time.Since(start)
	b.ReportMetric(float64(b.N)/accepted.Seconds(), "accepted/s")
	b.ReportMetric(float64(b.N)/completed.Seconds(), "completed/s")
	b.ReportMetric(pct(lat, .5), "accept_p50_ms")
	b.ReportMetric(pct(lat, .99), "accept_p99_ms")
}

func BenchmarkServeLeadsNDJSON(b *testing.B) {
	for _, m := range fsyncModes {
		b.Run(m.name, func(b *testing.B) { benchNDJSON(b, m.d) })
	}
}

func benchNDJSON(b *testing.B, sync time.Duration) {
	_, c := benchServer(b, sync)
	const per = 100
	bodies := (b.N + per - 1) / per
	b.ResetTimer()
	start := time.Now()
	hammer(b, bodies, func(i int) {
		var body bytes.Buffer
		for j := i * per; j < min(b.N, (i+1)*per); j++ {
			body.Write(benchLead(j))
			body.WriteByte('\n')
		}
		if code, resp := c.do("POST", "/v1/integrations/internal-blacklist/leads", "application/x-ndjson", body.Bytes()); code != 202 {
			b.Fatalf("accept: %d %s", code, resp)
		}
	})
	accepted := time.Since(start)
	drainedBench(b, c)
	completed := time.Since(start)
	b.ReportMetric(float64(b.N)/accepted.Seconds(), "accepted/s")
	b.ReportMetric(float64(b.N)/completed.Seconds(), "completed/s")
}

func drainedBench(b *testing.B, c client) {
	for {
		code, body := c.do("GET", "/v1/queue", "", nil)
		if code == 200 && bytes.Contains(body, []byte(`"depth":0,`)) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
