//go:build !linux

package queue

import "errors"

func mountTmpfs(string, int) error { return errors.New("tmpfs mounts are Linux only") }

func unmount(string) error { return nil }
