package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/childtest"
	"github.com/plumbhq/plumb/internal/serve"
)

// The scale-out test runs one of its plumb instances as a child process
// (this test binary re-executed: TestMain runs serve.Run, as the CLI
// does, in a child of role "serve"), so it can be killed with SIGKILL.
func TestMain(m *testing.M) {
	childtest.Main(m, map[string]func(args []string) int{
		"serve": func(args []string) int { return childMain(args[0], args[1:]) },
	})
}

// instanceConfig is the configuration of every instance of the scale-out
// test, in process or not.
func instanceConfig(dir string, nats []string) serve.Config {
	cfg := serve.Config{Dir: dir, Addr: "127.0.0.1:0", NATS: nats, Concurrency: 16, DrainTimeout: 5 * time.Second}
	cfg.Queue.AckWait = 3 * time.Second
	cfg.Queue.RetryDelay = 50 * time.Millisecond
	cfg.Queue.MaxRetryDelay = 500 * time.Millisecond
	cfg.Queue.MaxDeliver = 10
	return cfg
}

func childMain(dir string, nats []string) int {
	cfg := instanceConfig(dir, nats)
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := serve.Run(context.Background(), cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// child is a plumb serve process listening at addr.
type child struct {
	*childtest.Child
	addr string
}

// startChild starts a plumb serve process on the integrations in dir and
// the NATS servers nats, and waits for it to listen.
func startChild(t *testing.T, dir string, nats []string) *child {
	t.Helper()
	c := childtest.Start(t, childtest.Options{Role: "serve", Args: append([]string{dir}, nats...)})
	var rec struct{ Msg, Addr string }
	c.Stderr.Await(t, 60*time.Second, "the listening log line", func(line string) bool {
		return json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening"
	})
	return &child{Child: c, addr: rec.Addr}
}
