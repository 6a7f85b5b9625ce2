//go:build !linux

package recordlog

import "os"

// fdatasync flushes f to the disk (fsync where there is no fdatasync).
func fdatasync(f *os.File) error { return f.Sync() }
