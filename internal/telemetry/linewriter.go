package telemetry

import (
	"io"
	"sync"
	"time"
)

// DefaultLinger is how long plumb serve's log lines wait to be written
// together (LineWriter).
const DefaultLinger = 50 * time.Millisecond

// maxHeld bounds the bytes a LineWriter holds: reaching it writes them.
const maxHeld = 64 << 10

// LineWriter holds the log lines written to it for up to its linger, then
// writes them to the writer beneath in one write: a busy service's log
// costs one write a linger instead of one a line. It writes at once when it
// holds 64 KiB, on Flush — a logger made by NewLogger on a LineWriter
// flushes after each line at warn or above, so a warning or an error is
// never held, nor anything logged before it — and on Close, after which
// every write goes straight through. Lines held when the process dies
// unannounced (kill -9, a crash) are lost: at most a linger's worth of
// lines below warn.
type LineWriter struct {
	mu     sync.Mutex
	w      io.Writer
	linger time.Duration
	held   []byte
	timer  *time.Timer // armed while lines are held
	armed  bool
	closed bool
}

// NewLineWriter returns a LineWriter on w; a linger of 0 or less holds
// nothing (every write goes straight to w).
func NewLineWriter(w io.Writer, linger time.Duration) *LineWriter {
	l := &LineWriter{w: w, linger: linger}
	l.timer = time.AfterFunc(time.Hour, func() { _ = l.Flush() })
	l.timer.Stop()
	return l
}

// Write holds p (one or more whole lines) to be written within the
// linger. Errors of the writer beneath come back from the write that
// flushes.
func (l *LineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.linger <= 0 {
		return l.w.Write(p)
	}
	l.held = append(l.held, p...)
	if len(l.held) >= maxHeld {
		return len(p), l.flushLocked()
	}
	if !l.armed {
		l.armed = true
		l.timer.Reset(l.linger)
	}
	return len(p), nil
}

// Flush writes the lines held.
func (l *LineWriter) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.flushLocked()
}

// Close writes the lines held; later writes go straight through.
func (l *LineWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return l.flushLocked()
}

func (l *LineWriter) flushLocked() error {
	if l.armed {
		l.timer.Stop()
		l.armed = false
	}
	if len(l.held) == 0 {
		return nil
	}
	_, err := l.w.Write(l.held)
	l.held = l.held[:0]
	return err
}
