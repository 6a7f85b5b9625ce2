package steps

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// MaxFileBytes bounds each file plumb loads: an integration file, a
// fragment it includes, a settings file, a test file and a test case's
// lead_file.
const MaxFileBytes = 4 << 20

// ErrNotRegular is why ReadFile refuses a directory, a device, a named
// pipe or a socket.
var ErrNotRegular = errors.New("not a regular file")

// TooLargeError is why ReadFile refuses a file larger than its limit.
type TooLargeError struct{ Limit int64 }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("larger than %s, the most plumb reads of such a file", mib(e.Limit))
}

func mib(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// ReadFile reads a file plumb loads (an integration, a fragment, a
// settings or a test file): a regular file of at most MaxFileBytes. It
// never blocks on what is not a regular file: the file is opened without
// blocking (a named pipe without a writer opens at once) and refused,
// before anything is read, when what was opened is a named pipe, a
// device, a socket or a directory; of a larger file no more than the
// limit and a byte is read. The error is an *os.PathError wrapping
// ErrNotRegular, a *TooLargeError or what the system said.
func ReadFile(path string) ([]byte, error) {
	return readFileIn(nil, path, MaxFileBytes)
}

// ReadFileMax is ReadFile with another limit than MaxFileBytes.
func ReadFileMax(path string, limit int64) ([]byte, error) {
	return readFileIn(nil, path, limit)
}

// readFileIn is ReadFile through root (nil: none) with a limit.
func readFileIn(root *os.Root, path string, limit int64) ([]byte, error) {
	open := func(name string) (*os.File, error) {
		return os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	}
	if root != nil {
		open = func(name string) (*os.File, error) {
			return root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		}
	}
	f, err := open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readSmall(f, path, limit)
}

// readSmall reads an open file, refused unless regular and at most limit
// bytes.
func readSmall(f *os.File, path string, limit int64) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &os.PathError{Op: "open", Path: path, Err: ErrNotRegular}
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, &os.PathError{Op: "read", Path: path, Err: unwrapPath(err)}
	}
	if int64(len(b)) > limit {
		return nil, &os.PathError{Op: "read", Path: path, Err: &TooLargeError{Limit: limit}}
	}
	return b, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
