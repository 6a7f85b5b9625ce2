//go:build !unix

package store

import (
	"os"
	"time"
)

// lockShared does nothing where flock is not available: bbolt's own lock,
// taken right after the check, keeps processes apart.
func lockShared(*os.File, time.Duration) bool { return true }
