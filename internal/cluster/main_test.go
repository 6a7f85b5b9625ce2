package cluster_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/serve"
)

// The scale-out test runs one of its plumb instances as a child process
// (this test binary re-executed: TestMain runs serve.Run, as the CLI
// does), so it can be killed with SIGKILL.
const (
	childDirEnv  = "PLUMB_CLUSTER_TEST_CHILD"
	childNATSEnv = "PLUMB_CLUSTER_TEST_NATS"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		os.Exit(childMain(dir, strings.Split(os.Getenv(childNATSEnv), ",")))
	}
	os.Exit(m.Run())
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

// child is a plumb serve process.
type child struct {
	cmd  *exec.Cmd
	addr string
	done chan error
	mu   sync.Mutex
	log  strings.Builder
}

func startChild(t *testing.T, dir string, nats []string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir, childNATSEnv+"="+strings.Join(nats, ","))
	stderr, err := cmd.StderrPipe()
	must(t, err)
	must(t, cmd.Start())
	c := &child{cmd: cmd, done: make(chan error, 1)}
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
			_ = cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			c.mu.Lock()
			t.Logf("child log:\n%s", c.log.String())
			c.mu.Unlock()
		}
	})
	select {
	case c.addr = <-addr:
	case err := <-c.done:
		t.Fatalf("child exited before listening: %v\n%s", err, c.log.String())
	case <-time.After(60 * time.Second):
		t.Fatal("child not listening after 60s")
	}
	return c
}

// kill9 kills the child with SIGKILL and waits for it to be gone.
func (c *child) kill9(t *testing.T) {
	t.Helper()
	must(t, c.cmd.Process.Kill())
	<-c.done
}
