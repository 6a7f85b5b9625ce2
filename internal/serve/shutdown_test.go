package serve

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/plumbhq/plumb/internal/queue"
)

// Shutdown sends the partial batches at once: three queued leads waiting
// in a batch of 100 with an hour's wait get their results stored before
// Shutdown returns, well inside the drain timeout.
func TestShutdownFlushesBatches(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile(filepath.Join("..", "..", "examples", "batch-validate", "integration.yaml"))
	must(t, err)
	yaml := strings.Replace(strings.Replace(string(src), "size: 5 ", "size: 100 ", 1), "wait: 2s ", "wait: 1h ", 1)
	if !strings.Contains(yaml, "wait: 1h") || !strings.Contains(yaml, "size: 100") {
		t.Fatal("batch-validate changed: adapt the test")
	}
	dir, data := t.TempDir(), t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "batch.yaml"), []byte(yaml), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "batch.settings.yaml"), []byte("api_key: demo-key\n"), 0o600))
	s, err := New(Config{Dir: dir, Addr: "127.0.0.1:0", DataDir: data, Sandbox: true, DrainTimeout: 50 * time.Second,
		Logger: slog.New(slog.DiscardHandler), Queue: queue.Config{SyncInterval: time.Second}})
	must(t, err)
	must(t, s.Start())
	c := client{t: t, base: "http://" + s.Addr()}
	body := `{"id": "L-1", "email": "a@gmail.example"}` + "\n" + `{"id": "L-2", "email": "b@gmail.example"}` + "\n" + `{"id": "L-3", "email": "c@gmail.example"}` + "\n"
	code, b := c.do("POST", "/v1/integrations/batch-validate/leads", "application/x-ndjson", []byte(body))
	if code != 202 {
		t.Fatalf("accept: %d %s", code, b)
	}
	ids := decode[accepted](t, b).Leads
	// wait until the three are running (waiting in the batch)
	deadline := time.Now().Add(30 * time.Second)
	for testutil.ToFloat64(s.metrics.running.WithLabelValues("batch-validate")) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("leads not running after 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	must(t, s.Shutdown(context.Background()))
	took := time.Since(start)

	q, err := queue.Open(context.Background(), queue.Config{DataDir: data})
	must(t, err)
	defer q.Close()
	for _, l := range ids {
		raw, err := q.GetResult(context.Background(), l.ID)
		if err != nil {
			t.Fatalf("lead %s: no result after shutdown: %v", l.ID, err)
		}
		var r result
		must(t, json.Unmarshal(raw, &r))
		if r.Outcome != "success" {
			t.Errorf("lead %s: %s", l.ID, raw)
		}
	}
	t.Logf("shutdown with 3 leads in a partial batch took %v (drain timeout 50s, batch wait 1h)", took.Round(time.Millisecond))
}
