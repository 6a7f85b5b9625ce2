//go:build unix

package auth

import (
	"io/fs"
	"os"
	"syscall"
)

// ownedByMe reports whether the current user owns fi, and its owner.
func ownedByMe(fi fs.FileInfo) (uid int, mine bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return -1, true
	}
	return int(st.Uid), int(st.Uid) == os.Getuid()
}
