package filestore

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memconnect/memconnect/clock"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/internal/tuning"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/internal/testsupport/honchofake"
)

// The multi-process tests re-execute the test binary as child processes that
// run TestOAuthChildProcess with these variables set.
const (
	childModeEnv = "MEMCONNECT_OAUTH_CHILD"
	childPathEnv = "MEMCONNECT_OAUTH_CHILD_PATH"
	childStopEnv = "MEMCONNECT_OAUTH_CHILD_STOP"
	// childEpochEnv, when set, is a time in Unix nanoseconds from which the
	// child's clock runs childSpeed times faster than real time: children
	// given the same epoch agree on the time, and tokens come due sooner.
	childEpochEnv = "MEMCONNECT_OAUTH_CHILD_EPOCH"
	childSpeed    = 8
)

// TestOAuthChildProcess is not a test of its own: it is the body of the child
// processes started by TestMultiProcessRotation and TestCrashSafety.
func TestOAuthChildProcess(t *testing.T) {
	mode := os.Getenv(childModeEnv)
	if mode == "" {
		t.Skip("runs only as a child process of the multi-process tests")
	}
	path, stop := os.Getenv(childPathEnv), os.Getenv(childStopEnv)
	switch mode {
	case "rotate":
		os.Exit(childRotate(path, stop))
	case "crash":
		os.Exit(childCrash(path, false))
	case "crashlate":
		os.Exit(childCrash(path, true))
	case "readonly":
		os.Exit(childReadOnly(path))
	case "paused":
		os.Exit(childPaused(path))
	case "killedonarrival", "killedonarrivallate":
		os.Exit(childKilledOnArrival(path, mode == "killedonarrivallate"))
	}
	os.Exit(2)
}

// childRotate runs 8 goroutines that ask for a token every few milliseconds
// until the stop file appears, and prints how many rotations it made.
func childRotate(path, stop string) int {
	var rotations atomic.Int64
	s := newTestStore(path, withLockTimeout(30*time.Second), oauth.WithClock(childClock()))
	var wg sync.WaitGroup
	var failed atomic.Bool
	for range 8 {
		wg.Go(func() {
			ts := s.TokenSource("hermes", oauth.OnTokenChange(func(*oauth2.Token) { rotations.Add(1) }))
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			for range tick.C {
				if _, err := os.Stat(stop); err == nil {
					return
				}
				if _, err := ts.Token(); err != nil {
					fmt.Fprintln(os.Stderr, "child token error:", err)
					failed.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	fmt.Printf("rotations=%d\n", rotations.Load())
	if failed.Load() {
		return 1
	}
	return 0
}

// childCrash rotates as fast as it can, forcing a refresh of the token it
// holds, and says "ready" once it holds a token, as it starts rotating.
// With lateJournal it records each answer only once parsed, as the first
// version did.
func childCrash(path string, lateJournal bool) int {
	s := newTestStore(path, tuning.Crash(lateJournal, nil))
	ts := s.TokenSource("hermes")
	tok, err := ts.Token()
	if err == nil {
		fmt.Println("ready")
	}
	for err == nil {
		tok, err = ts.ForceRefresh(context.Background(), tok.AccessToken)
	}
	fmt.Fprintln(os.Stderr, "child token error:", err)
	return 1
}

// childClock is the clock childEpochEnv asks for, or nil (the system's).
func childClock() clock.Clock {
	ns, err := strconv.ParseInt(os.Getenv(childEpochEnv), 10, 64)
	if err != nil {
		return nil
	}
	epoch := time.Unix(0, ns)
	return clock.Func(func() time.Time { return epoch.Add(childSpeed * time.Since(epoch)) })
}

func childCommand(t *testing.T, mode, path, stop string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOAuthChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childModeEnv+"="+mode, childPathEnv+"="+path, childStopEnv+"="+stop)
	cmd.Stderr = os.Stderr
	return cmd
}

// TestMultiProcessRotation: 4 processes x 8 goroutines share one honcho.json
// against a server with reuse detection, through at least 5 rotations. No
// refresh token is ever replayed, every refresh the server saw was a rotation
// a child made and stored, and the rest of the file is unchanged.
func TestMultiProcessRotation(t *testing.T) {
	t.Parallel() // child processes: mostly waiting, so it overlaps well
	if testing.Short() {
		t.Skip("starts child processes")
	}
	// Due every 1.5 s (half the lifetime) of the children's clock, which
	// runs childSpeed times faster than real time.
	srv := honchofake.NewServer(honchofake.WithAccessTokenTTL(3 * time.Second))
	defer srv.Close()
	grant := srv.IssueGrant("write")
	dir := t.TempDir()
	path := filepath.Join(dir, "honcho.json")
	testkit.WriteFile(t, path, configWithGrant(srv.TokenURL(), grant.AccessToken, grant.RefreshToken, time.Now().Add(-time.Second)))
	stop := filepath.Join(dir, "stop")
	epoch := strconv.FormatInt(time.Now().UnixNano(), 10) // one fast clock for all children

	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for range 4 {
		cmd := childCommand(t, "rotate", path, stop)
		cmd.Env = append(cmd.Env, childEpochEnv+"="+epoch)
		out := &strings.Builder{}
		cmd.Stdout = out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	for range tick.C {
		if srv.Stats().Refreshes >= 5 || time.Now().After(deadline) {
			break
		}
	}
	tick.Stop()
	testkit.WriteFile(t, stop, "")
	total := 0
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("child %d: %v", i, err)
		}
		n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(outs[i].String()), "rotations="))
		if err != nil {
			t.Fatalf("child %d printed %q", i, outs[i].String())
		}
		total += n
	}
	st := srv.Stats()
	t.Logf("server: %+v; rotations reported by children: %d", st, total)
	if st.Refreshes < 5 {
		t.Fatalf("only %d rotations happened", st.Refreshes)
	}
	if st.Replays != 0 || st.RevokedGrants != 0 {
		t.Fatalf("replays = %d, revoked grants = %d; want 0", st.Replays, st.RevokedGrants)
	}
	if total != st.Refreshes {
		t.Fatalf("children made %d rotations, server saw %d refreshes", total, st.Refreshes)
	}
	v := testkit.ReadJSON(t, path)
	h := testkit.HostBlock(v, "hermes")
	oa, _ := h["oauth"].(map[string]any)
	if !srv.Active(h["apiKey"].(string)) || !srv.Active(oa["refreshToken"].(string)) {
		t.Errorf("the stored grant is not the server's current one")
	}
	assertUntouched(t, v)
}

// assertUntouched checks the sentinel root key and the second host block of
// configWithGrant.
func assertUntouched(t *testing.T, v map[string]any) {
	t.Helper()
	if v["apiKey"] != "root-key-1234" || v["workspace"] != "hermes" {
		t.Errorf("root keys changed: %v", v)
	}
	keep, _ := v["sentinel"].(map[string]any)["keep"].([]any)
	if len(keep) != 5 || fmt.Sprint(keep[2]) != "12345678901234567890" || keep[4] != "<&>" {
		t.Errorf("sentinel changed: %v", v["sentinel"])
	}
	other := testkit.HostBlock(v, "other")
	if other["apiKey"] != "other-key-5678" || other["custom"] != true || len(other) != 2 {
		t.Errorf("second host changed: %v", other)
	}
	h := testkit.HostBlock(v, "hermes")
	if h["peerName"] != "alice" {
		t.Errorf("host key lost: %v", h)
	}
	if oa, _ := h["oauth"].(map[string]any); oa["extra"] != "kept" {
		t.Errorf("unknown oauth key lost: %v", oa)
	}
}

// TestCrashSafety SIGKILLs a child that rotates in a loop at 50 random
// moments (crashRun). After each kill the file parses, keeps every other
// key and holds a grant the server accepts, and no refresh token was ever
// replayed.
//
// One window no client can close: the refresh request has left the process
// and the server rotates, but the process dies before the answer arrives.
// A kill there leaves the file one rotation behind the server; crashRun
// tells that case apart exactly (a recording proxy knows which refresh
// token replaced which), counts it, and signs in again as a person would.
func TestCrashSafety(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts child processes")
	}
	// Two lanes of 25 kills, each on its own file and server, so that the
	// kills overlap with each other's child starting. The lanes are
	// subtests run at once from goroutines rather than parallel subtests,
	// which would wait for every other parallel test of the package.
	var mu sync.Mutex
	var tally crashTally
	var wg sync.WaitGroup
	for lane := range 2 {
		wg.Go(func() {
			t.Run(fmt.Sprintf("lane%d", lane), func(t *testing.T) {
				got := crashRun(t, "crash", 25)
				mu.Lock()
				defer mu.Unlock()
				tally.add(got)
			})
		})
	}
	wg.Wait()
	t.Logf("%+v", tally)
	if tally.afterAnswer == 0 || tally.inFlight == tally.kills {
		t.Errorf("every kill fell inside a round trip; the kills are not at random moments")
	}
}
