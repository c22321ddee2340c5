package filestore

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitFlockWaiter returns once a process waits for the flock of the file at
// path: Linux lists a blocked lock in /proc/locks, after "->".
func waitFlockWaiter(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	inode := fmt.Sprintf(":%d ", st.Ino)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		b, err := os.ReadFile("/proc/locks")
		if err != nil {
			t.Skipf("no /proc/locks: %v", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "-> FLOCK") && strings.Contains(line, inode) {
				return
			}
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("no process came to wait for the lock")
		}
	}
}
