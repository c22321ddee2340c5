//go:build !linux

package filestore

import (
	"testing"
	"time"
)

// waitFlockWaiter gives a process time to wait for the flock of the file
// at path; only Linux says when one does.
func waitFlockWaiter(t *testing.T, path string) {
	t.Helper()
	time.Sleep(50 * time.Millisecond)
}
