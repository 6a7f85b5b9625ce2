package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/plumbhq/plumb/internal/sandbox"
)

const sandboxDoc = `
Serve the examples' fake partner API (package internal/sandbox) in the
foreground until interrupted, for poking at it with curl. plumb run --sandbox
starts the same API in-process on a free loopback port instead.`

func sandboxCmd(ctx context.Context, s *stdio, args []string) int {
	fs := newFlagSet(s, "sandbox", "[--addr HOST:PORT]", sandboxDoc)
	addr := fs.String("addr", "127.0.0.1:8080", "`address` to listen on")
	pos, err := parseArgs(s, fs, args)
	if err != nil {
		return exitForParse(err)
	}
	if len(pos) > 0 {
		s.errorf("sandbox: unexpected argument %q", pos[0])
		return ExitUsage
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		s.errorf("sandbox: %v", err)
		return ExitUsage
	}
	srv := newSandboxServer()
	fmt.Fprintf(s.stderr, "plumb sandbox listening on http://%s (Ctrl-C to stop)\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		s.errorf("sandbox: %v", err)
		return ExitLeadError
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.errorf("sandbox: %v", err)
	}
	return ExitOK
}

func newSandboxServer() *http.Server {
	return &http.Server{Handler: sandbox.Handler(), ReadHeaderTimeout: 10 * time.Second}
}

// startSandbox serves the sandbox on a free loopback port and returns its
// base URL and a function that stops it.
func startSandbox() (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("starting the sandbox: %w", err)
	}
	srv := newSandboxServer()
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}
