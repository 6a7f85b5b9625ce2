//go:build unix

package store

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// lockShared takes a shared flock on f (released when f is closed),
// waiting at most timeout for an exclusive holder such as another plumb
// run with the same cache file.
func lockShared(f *os.File, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if err == nil {
			return true
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			// locking not supported here (some network file systems):
			// bbolt's own lock is what keeps processes apart
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond) // as bbolt polls its own lock
	}
}
