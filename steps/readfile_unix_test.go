//go:build unix

package steps

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readOrHang runs f and fails the test if it has not returned within a
// minute: a read that blocks is a failure with a message.
func readOrHang(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatalf("%s blocked", what)
		return nil
	}
}

// TestReadFileRefusesWhatIsNotARegularFile: a named pipe without a writer
// (as the integration, as a fragment, confined or not) and a directory are
// refused at once as not a regular file, without blocking and without
// reading (mutants: open without O_NONBLOCK hangs; no check once open
// reads the pipe as an empty file).
func TestReadFileRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "main.yaml")
	src := "version: 1\nname: x\ninclude: [fifo.yaml]\nsteps:\n  - name: s\n    request: { url: \"http://x/\" }\n"
	if err := os.WriteFile(main, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		load func() error
		want string
	}{
		{"ReadFile", func() error { _, err := ReadFile(fifo); return err }, "not a regular file"},
		{"ReadFile dir", func() error { _, err := ReadFile(dir); return err }, "not a regular file"},
		{"ReadFileIn", func() error { _, err := ReadFileIn(dir, fifo); return err }, "not a regular file"},
		{"integration", func() error { _, err := load(fifo); return err }, fifo + ": cannot read integration: not a regular file"},
		{"integration confined", func() error { _, err := load(fifo, WithRoot(dir)); return err }, fifo + ": cannot read integration: not a regular file"},
		{"fragment", func() error { _, err := load(main); return err }, main + ":3:11: include: cannot read fifo.yaml: not a regular file"},
		{"fragment confined", func() error { _, err := load(main, WithRoot(dir)); return err }, main + ":3:11: include: cannot read fifo.yaml: not a regular file"},
	} {
		err := readOrHang(t, c.name, c.load)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		if strings.HasPrefix(c.name, "Read") && !errors.Is(err, ErrNotRegular) {
			t.Errorf("%s: %v is not ErrNotRegular", c.name, err)
		}
	}
}

// TestReadFileLimit: a file of MaxFileBytes reads whole; one byte more is
// refused, as the integration and as a fragment, naming the limit
// (mutants: no limit; > written >=).
func TestReadFileLimit(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fits := write("fits.yaml", bytes.Repeat([]byte("#"), MaxFileBytes))
	if b, err := ReadFile(fits); err != nil || len(b) != MaxFileBytes {
		t.Fatalf("a file of MaxFileBytes: %d bytes, %v", len(b), err)
	}
	big := write("big.yaml", append([]byte("version: 1\n"), bytes.Repeat([]byte("#"), MaxFileBytes)...))
	_, err := ReadFile(big)
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Limit != MaxFileBytes {
		t.Fatalf("a file of MaxFileBytes+11: %v", err)
	}
	want := big + ": cannot read integration: larger than 4 MiB, the most plumb reads of such a file"
	if _, err := load(big); err == nil || err.Error() != want {
		t.Errorf("integration: %v\nwant %s", err, want)
	}
	main := write("main.yaml", []byte("version: 1\nname: x\ninclude: [big.yaml]\nsteps:\n  - name: s\n    request: { url: \"http://x/\" }\n"))
	if _, err := load(main); err == nil || !strings.Contains(err.Error(), main+":3:11: include: cannot read big.yaml: larger than 4 MiB") {
		t.Errorf("fragment: %v", err)
	}
	if _, err := ReadFileMax(fits, MaxFileBytes-1); !errors.As(err, &tl) || tl.Limit != MaxFileBytes-1 {
		t.Errorf("ReadFileMax: %v", err)
	}
}
