package queue

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// embedded is the in-process nats-server of a queue without URLs. It can
// be restarted in place: a file store that hit a write error (a full disk)
// refuses every later write, answering none of them, until it is opened
// again. The client reaches the server through InProcessConn, so after a
// restart it reconnects to the new one by itself.
type embedded struct {
	opts    *server.Options
	log     *slog.Logger
	timeout time.Duration
	// onWriteErr is called when the server reports that a store failed to
	// write (its message); the queue then treats its storage as broken.
	onWriteErr func(msg string)

	mu  sync.Mutex
	srv *server.Server // nil while stopped
}

// start starts the server and waits until it takes connections.
func (e *embedded) start() error {
	srv, err := server.NewServer(e.opts.Clone())
	if err != nil {
		return fmt.Errorf("queue: embedded nats-server: %w", err)
	}
	srv.SetLoggerV2(serverLogger{l: e.log, onWriteErr: e.onWriteErr}, false, false, false)
	srv.Start()
	e.mu.Lock()
	e.srv = srv
	e.mu.Unlock()
	if !srv.ReadyForConnections(e.timeout) {
		return fmt.Errorf("queue: embedded nats-server not ready after %s", e.timeout)
	}
	return nil
}

// InProcessConn implements nats.InProcessConnProvider.
func (e *embedded) InProcessConn() (net.Conn, error) {
	srv := e.server()
	if srv == nil {
		return nil, errors.New("queue: embedded nats-server is restarting")
	}
	return srv.InProcessConn()
}

func (e *embedded) server() *server.Server {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.srv
}

// stop shuts the server down and waits until its stores are closed.
func (e *embedded) stop() {
	e.mu.Lock()
	srv := e.srv
	e.srv = nil
	e.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// restart stops the server and starts it again on the same store.
func (e *embedded) restart() error {
	e.stop()
	return e.start()
}

// storeUsage reports the bytes JetStream stores and the most it may (the
// server's max_file_store); ok is false while the server is down.
func (e *embedded) storeUsage() (used, limit int64, ok bool) {
	srv := e.server()
	if srv == nil {
		return 0, 0, false
	}
	cfg := srv.JetStreamConfig()
	if cfg == nil {
		return 0, 0, false
	}
	return int64(srv.GlobalAccount().JetStreamUsage().Store), cfg.MaxStore, true
}

// serverLogger adapts slog to nats-server's Logger. Debug and trace are
// off (SetLoggerV2 flags), so Debugf/Tracef are rarely called. A store's
// write error is only ever reported in the server's log (the write itself
// goes unanswered), so errors are also passed to onWriteErr.
type serverLogger struct {
	l          *slog.Logger
	onWriteErr func(msg string)
}

func (s serverLogger) Noticef(format string, v ...any) { s.l.Info(fmt.Sprintf(format, v...)) }
func (s serverLogger) Warnf(format string, v ...any)   { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s serverLogger) Fatalf(format string, v ...any)  { s.Errorf(format, v...) }
func (s serverLogger) Debugf(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s serverLogger) Tracef(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }

func (s serverLogger) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	s.l.Error(msg)
	if s.onWriteErr != nil && isWriteFailure(msg) {
		s.onWriteErr(msg)
	}
}

// isWriteFailure reports whether a nats-server error message says a store
// could not write ("Critical write error", "critical write error", "no
// space left on device", "JetStream out of resources").
func isWriteFailure(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "critical write error") || strings.Contains(m, "no space left") ||
		strings.Contains(m, "out of resources") || strings.Contains(m, "failed to store a msg")
}
