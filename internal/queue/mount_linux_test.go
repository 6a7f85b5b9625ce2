//go:build linux

package queue

import (
	"strconv"
	"syscall"
)

// mountTmpfs mounts a tmpfs of size bytes at dir (root only).
func mountTmpfs(dir string, size int) error {
	return syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.Itoa(size))
}

func unmount(dir string) error { return syscall.Unmount(dir, 0) }
