//go:build unix

package filestore

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth/internal/tuning"
)

// childPaused asks for one token with a 300 ms attempt deadline and a 1 s
// budget, and prints it (or the error).
func childPaused(path string) int {
	s := newTestStore(path, withLockTimeout(30*time.Second), tuning.Timings(300*time.Millisecond, 10*time.Millisecond, time.Second))
	tok, err := s.TokenSource("hermes").Token()
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("token=" + tok.AccessToken)
	return 0
}

// TestPausedHolderKeepsItsAnswer: a process whose refresh request reached
// the server is stopped (SIGSTOP, as a laptop's lid closes) while the
// server rotates and answers, and is continued well past the attempt's
// deadline. The answer waiting in its socket is read, not dropped: it
// prints the new token, the file holds it, and the server saw one refresh.
func TestPausedHolderKeepsItsAnswer(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "honcho.json")
	started := make(chan *os.Process, 1)
	stopped := make(chan struct{})
	var once sync.Once
	ep := newFakeTokenEndpoint(t, func(n int, w http.ResponseWriter, r *http.Request) {
		once.Do(func() {
			// Stop the sender before it reads the answer, and answer
			// only once it is stopped.
			testkit.StopProcess(<-started)
			close(stopped)
		})
		rotating(n, w, r)
	})
	testkit.WriteFile(t, path, configWithGrant(ep.URL, "hch-at-old", "hch-rt-old", time.Now().Add(time.Minute)))
	cmd := childCommand(t, "paused", path, "")
	out := &strings.Builder{}
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started <- cmd.Process
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGCONT); _ = cmd.Process.Kill() })
	select {
	case <-stopped:
	case <-time.After(time.Minute):
		t.Fatalf("the child never refreshed: %s", out)
	}
	// The answer is in the child's socket; its deadline passes while it
	// sleeps (three times the attempt's, past the whole budget).
	<-time.After(time.Second)
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	if !strings.Contains(out.String(), "token=hch-at-new1") {
		t.Fatalf("child printed %q; want the rotated token", out)
	}
	c, err := newTestStore(path).Credentials("hermes")
	if err != nil || c.Grant == nil || c.Grant.AccessToken != "hch-at-new1" || c.Grant.RefreshToken != "hch-rt-new1" {
		t.Fatalf("stored: %+v, %v; want the rotation", c.Grant, err)
	}
	if n := ep.calls.Load(); n != 1 {
		t.Errorf("the server saw %d refreshes; want 1", n)
	}
}

// childKilledOnArrival refreshes and is killed (SIGKILL) the moment the
// answer has been read, before anything parses it; lateJournal writes the
// journal as the first version did, once the answer is parsed.
func childKilledOnArrival(path string, lateJournal bool) int {
	s := newTestStore(path, withLockTimeout(30*time.Second), tuning.Crash(lateJournal, func() { _ = syscall.Kill(os.Getpid(), syscall.SIGKILL) }))
	_, err := s.TokenSource("hermes").Token()
	fmt.Println("not killed:", err)
	return 3
}

// TestJournalOnArrival: a process killed the moment the rotated tokens
// arrive, before it parsed or stored them, loses nothing: the journal it
// wrote as the answer arrived gives the next process the rotation, which
// it adopts without spending the old token again. Written only once the
// answer is parsed (as the first version did), the rotation is lost and
// the next process replays the spent token.
func TestJournalOnArrival(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts child processes")
	}
	for _, tt := range []struct {
		mode string
		lost bool // the rotation is lost: the next process spends the old token again
	}{
		{"killedonarrival", false},
		{"killedonarrivallate", true},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			var spent spentLog
			ep := newFakeTokenEndpoint(t, func(n int, w http.ResponseWriter, r *http.Request) {
				spent.add(r)
				rotating(n, w, r)
			})
			path := filepath.Join(t.TempDir(), "honcho.json")
			testkit.WriteFile(t, path, configWithGrant(ep.URL, "hch-at-old", "hch-rt-old", time.Now().Add(-time.Minute)))
			cmd := childCommand(t, tt.mode, path, "")
			out := &strings.Builder{}
			cmd.Stdout = out
			err := cmd.Run()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); err == nil || !ok || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child: %v %s; want it killed on the answer's arrival", err, out)
			}
			tok, err := newTestStore(path).TokenSource("hermes").Token()
			if err != nil {
				t.Fatal(err)
			}
			if got := spent.all(); tt.lost != (len(got) != 1) {
				t.Fatalf("refresh tokens spent: %q; lost %v", got, tt.lost)
			}
			if !tt.lost && tok.AccessToken != "hch-at-new1" {
				t.Errorf("the next process got %q; want the rotation the killed one received", tok.AccessToken)
			}
		})
	}
}
