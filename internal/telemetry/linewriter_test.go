package telemetry

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// writes records each write it is given.
type writes struct {
	mu   sync.Mutex
	list []string
	err  error
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, string(p))
	return len(p), w.err
}

func (w *writes) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.list...)
}

// Lines wait the linger, then go out together in one write; a line logged
// in an empty writer starts a new linger.
func TestLineWriterLingers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var w writes
		l := NewLineWriter(&w, DefaultLinger)
		l.Write([]byte("a\n"))
		time.Sleep(DefaultLinger / 2)
		l.Write([]byte("b\n"))
		time.Sleep(DefaultLinger/2 - time.Nanosecond)
		synctest.Wait()
		if got := w.get(); len(got) != 0 {
			t.Fatalf("written before the linger: %q", got)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if got := w.get(); len(got) != 1 || got[0] != "a\nb\n" {
			t.Fatalf("after the linger: %q, want one write of both lines", got)
		}
		l.Write([]byte("c\n"))
		time.Sleep(DefaultLinger)
		synctest.Wait()
		if got := w.get(); len(got) != 2 || got[1] != "c\n" {
			t.Fatalf("a line after a flush: %q", got)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// 64 KiB held are written at once; Close writes what is held and then
// lets every write straight through; a linger of 0 holds nothing; the
// writer's error comes back from the write that flushes.
func TestLineWriterBoundsAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var w writes
		l := NewLineWriter(&w, time.Hour)
		line := []byte(strings.Repeat("x", 1023) + "\n")
		for range maxHeld/len(line) - 1 {
			l.Write(line)
		}
		if got := w.get(); len(got) != 0 {
			t.Fatalf("%d writes below the bound", len(got))
		}
		l.Write(line)
		if got := w.get(); len(got) != 1 || len(got[0]) != maxHeld {
			t.Fatalf("at the bound: %d writes", len(got))
		}
		l.Write([]byte("held\n"))
		if err := l.Close(); err != nil || w.get()[1] != "held\n" {
			t.Fatalf("Close: %v, writes %d", err, len(w.get()))
		}
		l.Write([]byte("after\n"))
		if got := w.get(); len(got) != 3 || got[2] != "after\n" {
			t.Fatal("a write after Close was held")
		}
		var direct writes
		NewLineWriter(&direct, 0).Write([]byte("now\n"))
		if len(direct.get()) != 1 {
			t.Fatal("a linger of 0 held a line")
		}
		failing := &writes{err: errors.New("disk full")}
		f := NewLineWriter(failing, time.Hour)
		f.Write([]byte("x\n"))
		if err := f.Flush(); err == nil {
			t.Fatal("Flush hid the writer's error")
		}
	})
}

// A logger on a LineWriter writes a warning at once, after the lines held
// before it; info lines wait.
func TestLoggerFlushesWarnings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var w writes
		lw := NewLineWriter(&w, time.Hour)
		log, err := NewLogger(lw, FormatJSON, -4)
		if err != nil {
			t.Fatal(err)
		}
		log = log.With("k", "v").WithGroup("g")
		log.InfoContext(WithLead(context.Background(), "l1"), "first")
		log.Debug("second")
		if len(w.get()) != 0 {
			t.Fatal("an info line was written at once")
		}
		log.Warn("third")
		got := w.get()
		if len(got) != 1 || bytes.Count([]byte(got[0]), []byte("\n")) != 3 ||
			!(strings.Index(got[0], "first") < strings.Index(got[0], "second") && strings.Index(got[0], "second") < strings.Index(got[0], "third")) {
			t.Fatalf("after a warning: %q, want the three lines in order in one write", got)
		}
		log.Error("fourth")
		if got := w.get(); len(got) != 2 {
			t.Fatalf("an error line was held: %q", got)
		}
	})
}
