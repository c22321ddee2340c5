//go:build unix

package testkit

import (
	"os"
	"syscall"
)

// StopProcess stops p (SIGSTOP) and returns once it is stopped: a stop
// takes effect when a thread of p takes the signal, not when kill
// returns, so a test that must answer only a stopped process waits here.
func StopProcess(p *os.Process) {
	_ = p.Signal(syscall.SIGSTOP)
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(p.Pid, &ws, syscall.WUNTRACED, nil); err != syscall.EINTR {
			return
		}
	}
}
