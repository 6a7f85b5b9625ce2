//go:build !unix

package queue

import "errors"

// diskSpace is not known here: the free-space check is skipped (JetStream's
// own limit still applies).
func diskSpace(string) (free, size uint64, err error) {
	return 0, 0, errors.New("queue: free disk space is not known on this platform")
}
