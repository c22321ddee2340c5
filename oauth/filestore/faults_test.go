package filestore

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/internal/tuning"
)

// A 2xx answer is never thrown away: whatever its expires_in, the rotation
// it carries is stored, and the next refresh spends the new refresh token,
// not the old one again.
func TestOddExpiresInKept(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expiresIn string // as the server writes it
		wantIn    time.Duration
	}{
		{`3600.5`, time.Hour},
		{`"3600"`, time.Hour},
		{`"abc"`, time.Hour}, // unreadable: the default lifetime
		{`1800`, 30 * time.Minute},
		{`-30`, -30 * time.Second}, // an already expired token is a rotation too
	}
	for _, tt := range tests {
		t.Run(tt.expiresIn, func(t *testing.T) {
			clock := testkit.NewClock()
			var spent spentLog
			ep := newFakeTokenEndpoint(t, func(n int, w http.ResponseWriter, r *http.Request) {
				spent.add(r)
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"access_token":"hch-at-new%d","refresh_token":"hch-rt-new%d","token_type":"Bearer","expires_in":%s}`, n, n, tt.expiresIn)
			})
			path := filepath.Join(t.TempDir(), "honcho.json")
			testkit.WriteFile(t, path, configWithGrant(ep.URL, "hch-at-old", "hch-rt-old", clock.Now()))
			log := &testkit.SyncBuffer{}
			s := fastStore(path, clock, log)
			tok, err := s.TokenSource("hermes").Token()
			if err != nil || tok.AccessToken != "hch-at-new1" {
				t.Fatalf("Token = %v, %v; want the rotated token", tok, err)
			}
			oa := testkit.HostBlock(testkit.ReadJSON(t, path), "hermes")["oauth"].(map[string]any)
			if oa["refreshToken"] != "hch-rt-new1" || oa["expiresAt"].(json.Number).String() != fmt.Sprint(clock.Now().Add(tt.wantIn).Unix()) {
				t.Fatalf("file holds %v, want hch-rt-new1 expiring in %s", oa, tt.wantIn)
			}
			// A fresh process refreshes again: with the new refresh token.
			clock.Advance(2 * time.Hour)
			if _, err := newTestStoreClock(path, clock).TokenSource("hermes").Token(); err != nil {
				t.Fatal(err)
			}
			if got := spent.all(); len(got) != 2 || got[0] != "hch-rt-old" || got[1] != "hch-rt-new1" {
				t.Errorf("refresh tokens spent = %q, want hch-rt-old then hch-rt-new1", got)
			}
			if strings.HasPrefix(tt.expiresIn, `"`) || strings.Contains(tt.expiresIn, ".") {
				if !strings.Contains(log.String(), "unusual") {
					t.Errorf("no warning for expires_in %s:\n%s", tt.expiresIn, log)
				}
			}
		})
	}
}

// newTestStoreClock is newTestStore on clock.
func newTestStoreClock(path string, clock *testkit.Clock) *testStore {
	return newTestStore(path, oauth.WithClock(clock))
}

// Nothing is spent that cannot be kept: in a directory where neither the
// journal nor the config file can be written, with a lock file that can
// still be locked, no refresh request is made. The current token is
// returned while it is valid; once it is not, the error names the
// directory.
//
// Root ignores directory permissions, so as root the test runs its child
// process as the user nobody; elsewhere it runs as the user it is.
func TestReadOnlyDirectorySpendsNothing(t *testing.T) {
	t.Parallel()
	calls := 0
	var mu sync.Mutex
	ep := newFakeTokenEndpoint(t, func(n int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		rotating(n, w, r)
	})
	for _, tt := range []struct {
		name    string
		expires time.Duration // from now
		wantErr bool
	}{
		{"valid token in the refresh window", time.Minute, false},
		{"expired token", -time.Minute, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := worldReadableTempDir(t)
			path := filepath.Join(dir, "honcho.json")
			testkit.WriteFile(t, path, configWithGrant(ep.URL, "hch-at-old", "hch-rt-old", time.Now().Add(tt.expires)))
			testkit.WriteFile(t, path+".lock", "")
			for _, p := range []string{path, path + ".lock"} {
				if err := os.Chmod(p, 0o666); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(dir, 0o555); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(dir, 0o755) })

			out := runAsUnprivileged(t, "readonly", path)
			var got struct{ Token, Err string }
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("child said %q: %v", out, err)
			}
			if tt.wantErr {
				if got.Err == "" || !strings.Contains(got.Err, dir) || !strings.Contains(got.Err, "not writable") {
					t.Errorf("error = %q, want one naming the directory %s", got.Err, dir)
				}
			} else if got.Token != "hch-at-old" || got.Err != "" {
				t.Errorf("Token = %q, %q; want the current token (fail open)", got.Token, got.Err)
			}
			mu.Lock()
			defer mu.Unlock()
			if calls != 0 {
				t.Errorf("%d refresh requests were made; a refresh token was spent that could not be kept", calls)
			}
			if b, _ := os.ReadFile(path); !strings.Contains(string(b), "hch-rt-old") {
				t.Errorf("the config file changed:\n%s", b)
			}
		})
	}
}

// worldReadableTempDir is a temporary directory that the user nobody can
// reach.
func worldReadableTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	// The test's temporary directory and its parent are 0700.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runAsUnprivileged runs the child mode with path in a child process of a
// user the directory's permissions bind, and returns what it prints.
func runAsUnprivileged(t *testing.T, mode, path string) []byte {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// nobody must be able to run a copy of the test binary. It is
		// written with forks held off: a child forked by a parallel test
		// while the copy is open for writing would make exec fail with
		// "text file busy".
		bin := filepath.Join(worldReadableTempDir(t), "oauth.test")
		data, err := os.ReadFile(exe)
		if err != nil {
			t.Fatal(err)
		}
		syscall.ForkLock.Lock()
		err = os.WriteFile(bin, data, 0o755)
		syscall.ForkLock.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		exe = bin
	}
	cmd := exec.Command(exe, "-test.run=^TestOAuthChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childModeEnv+"="+mode, childPathEnv+"="+path, "HOME=/")
	cmd.Stderr = os.Stderr
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	out, err := cmd.Output()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && len(out) == 0:
		t.Skipf("cannot run a child process as an unprivileged user here: %v", err)
	case err != nil && !errors.As(err, &ee):
		t.Fatalf("running the child: %v", err)
	}
	return out
}

// childReadOnly asks for a token from the store at path and prints the
// outcome as JSON.
func childReadOnly(path string) int {
	s := newTestStore(path, withLockTimeout(5*time.Second), tuning.Timings(2*time.Second, 10*time.Millisecond, 5*time.Second))
	tok, err := s.TokenSource("hermes").Token()
	var out struct{ Token, Err string }
	if tok != nil {
		out.Token = tok.AccessToken
	}
	if err != nil {
		out.Err = err.Error()
	}
	json.NewEncoder(os.Stdout).Encode(out)
	return 0
}

// The lock is the lock file at the path. One process holds the lock and is
// inside a refresh when the lock file is deleted; a second process then
// locks a new file at the path. It must not spend the refresh token the
// first is spending: it waits for the first's rotation and adopts it.
func TestLockFileDeletedDuringRefresh(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	arrived := make(chan struct{}, 4)
	var spent spentLog
	ep := newFakeTokenEndpoint(t, func(n int, w http.ResponseWriter, r *http.Request) {
		spent.add(r)
		arrived <- struct{}{}
		if n == 1 {
			<-release // the first refresh is slow: the lock file goes meanwhile
		}
		rotating(n, w, r)
	})
	// A failing test ends the slow refresh before the server closes
	// (cleanups run last first), so that it fails instead of hanging.
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock)
	clock := testkit.NewClock()
	path := filepath.Join(t.TempDir(), "honcho.json")
	testkit.WriteFile(t, path, configWithGrant(ep.URL, "hch-at-old", "hch-rt-old", clock.Now()))

	first := make(chan error, 1)
	go func() {
		_, err := fastStore(path, clock, nil).TokenSource("hermes").Token()
		first <- err
	}()
	<-arrived // the first holder's request is at the server
	if err := os.Remove(path + ".lock"); err != nil {
		t.Fatal(err)
	}
	// The second process, as another process would be: its own store.
	second := make(chan error, 1)
	go func() {
		tok, err := fastStore(path, clock, nil).TokenSource("hermes").Token()
		if err == nil && tok.AccessToken != "hch-at-new1" {
			err = fmt.Errorf("second got %q, want the first's rotation hch-at-new1", tok.AccessToken)
		}
		second <- err
	}()
	select {
	case <-arrived:
		t.Fatal("the second process spent a refresh token while the first was rotating")
	case err := <-second:
		t.Fatalf("the second process returned before the first's rotation: %v", err)
	case <-time.After(300 * time.Millisecond): // it is waiting, as it should
	}
	unblock()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if got := spent.all(); len(got) != 1 {
		t.Errorf("refresh tokens spent: %q; want hch-rt-old once", got)
	}
}

// A lock file replaced while a process waited for it: the waiter wakes on a
// file no one else will lock again, sees that it is not the one at the
// path, and takes the lock of the new file instead of proceeding.
func TestLockFileReplacedWhileWaiting(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "honcho.json")
	testkit.WriteFile(t, path, `{}`)
	holder := newTestStore(path)
	unlock, err := holder.file.lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan func(), 1)
	go func() {
		u, err := newTestStore(path).file.lock(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- u
	}()
	waitFlockWaiter(t, path+".lock") // it blocks on the old file
	// Replace the lock file, and have a third party hold the new one.
	os.Remove(path + ".lock")
	third, err := newTestStore(path).file.lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	unlock() // the waiter wakes on the old, unlinked file
	select {
	case u := <-got:
		u()
		t.Fatal("the waiter took a lock on a file that is no longer the lock file, while another process holds the new one")
	case <-time.After(200 * time.Millisecond):
	}
	third()
	select {
	case u := <-got:
		u()
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter never took the new lock file")
	}
}

// A grant the server rejected is reported by every process, not only by
// the one that saw the rejection, and no other process calls the server
// for it again. A new sign-in clears it.
func TestReauthSeenByAnotherProcess(t *testing.T) {
	t.Parallel()
	calls := 0
	var mu sync.Mutex
	ep := newFakeTokenEndpoint(t, func(n int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant")
	})
	clock := testkit.NewClock()
	path := filepath.Join(t.TempDir(), "honcho.json")
	testkit.WriteFile(t, path, configWithGrant(ep.URL, "hch-at-old", "hch-rt-old", clock.Now()))
	if _, err := fastStore(path, clock, nil).TokenSource("hermes").Token(); !errors.Is(err, oauth.ErrReauthRequired) {
		t.Fatalf("first process: %v, want ErrReauthRequired", err)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), "hch-rt-old\"") && strings.Count(string(data), "hch-rt-old") != 1 {
		t.Errorf("the verdict holds the refresh token:\n%s", data)
	}
	other := fastStore(path, clock, nil)
	c, err := other.Credentials("hermes")
	if err != nil || c.Grant == nil || c.Rejected != "invalid_grant" {
		t.Fatalf("another process reads %+v, %v; want the grant marked rejected", c, err)
	}
	if _, err := other.TokenSource("hermes").Token(); !errors.Is(err, oauth.ErrReauthRequired) {
		t.Fatalf("another process: %v, want ErrReauthRequired", err)
	}
	mu.Lock()
	if calls != 1 {
		t.Errorf("%d calls to the token endpoint; the second process must not call it", calls)
	}
	mu.Unlock()
	assertUntouched(t, testkit.ReadJSON(t, path))

	// A new sign-in replaces the grant and the verdict.
	if _, err := other.installGrant(context.Background(), "hermes", tokenWith("hch-at-fresh", "hch-rt-fresh"), installOptions{ClientID: "c", TokenEndpoint: ep.URL}); err != nil {
		t.Fatal(err)
	}
	if c, _ := fastStore(path, clock, nil).Credentials("hermes"); c.Rejected != "" {
		t.Errorf("the verdict outlived a new sign-in: %+v", c)
	}
}

// Under sustained contention from a process that waits in a blocking
// flock, as the Python agent does, this package gets its turns: it waits in
// the kernel too, instead of polling and losing every race.
func TestFairLockWaiting(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a python3 process")
	}
	py := python3(t)
	path := filepath.Join(t.TempDir(), "honcho.json")
	testkit.WriteFile(t, path, `{}`)
	stop := path + ".stop"
	// The peer takes the lock in a blocking flock, holds it a little, lets
	// go and asks again at once, until told to stop: the gap in which a
	// poller could take it is a few microseconds.
	cmd := exec.Command(py, "-c", `
import fcntl, os, sys, time
path, stop = sys.argv[1], sys.argv[2]
n = 0
fh = open(path + ".lock", "a+b")
while not os.path.exists(stop):
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
    n += 1
    if n == 1:
        print("ready", flush=True)
    time.sleep(0.005)
    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
print(n)
`, path, stop)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	peer := bufio.NewReader(stdout)
	if line, err := peer.ReadString('\n'); line != "ready\n" {
		t.Fatalf("the peer did not start: %q %v", line, err)
	}
	s := newTestStore(path, withLockTimeout(2*time.Second))
	failures := 0
	for range 20 {
		unlock, err := s.file.lock(context.Background())
		if err != nil {
			failures++
			continue
		}
		time.Sleep(time.Millisecond)
		unlock()
	}
	os.WriteFile(stop, nil, 0o600)
	rest, _ := io.ReadAll(peer)
	cmd.Wait()
	if failures != 0 {
		t.Errorf("%d of 20 lock attempts ran out of their 2 s while the peer took the lock %s times", failures, strings.TrimSpace(string(rest)))
	}
}

// tokenWith is a token response of a sign-in.
func tokenWith(access, refresh string) *oauth2.Token {
	return &oauth2.Token{AccessToken: access, RefreshToken: refresh, ExpiresIn: 3600}
}

// When the locks cannot be had in time, a token that is still valid is
// returned (fail open); one that is not is an error.
func TestLockTimeoutFailsOpen(t *testing.T) {
	t.Parallel()
	ep := newFakeTokenEndpoint(t, rotating)
	for _, tt := range []struct {
		name    string
		expires time.Duration
		wantErr bool
	}{
		{"valid token in the refresh window", time.Minute, false},
		{"expired token", -time.Minute, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := testkit.NewClock()
			path := filepath.Join(t.TempDir(), "honcho.json")
			testkit.WriteFile(t, path, configWithGrant(ep.URL, "hch-at-old", "hch-rt-old", clock.Now().Add(tt.expires)))
			unlock, err := newTestStore(path).file.lock(context.Background()) // another process holds the lock
			if err != nil {
				t.Fatal(err)
			}
			defer unlock()
			tok, err := fastStore(path, clock, nil, withLockTimeout(100*time.Millisecond)).TokenSource("hermes").Token()
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "lock") {
					t.Fatalf("Token = %v, %v; want an error about the lock", tok, err)
				}
				return
			}
			if err != nil || tok.AccessToken != "hch-at-old" {
				t.Fatalf("Token = %v, %v; want the current token", tok, err)
			}
		})
	}
}

// spentLog records the refresh tokens a token endpoint was sent.
type spentLog struct {
	mu     sync.Mutex // guards tokens
	tokens []string
}

func (l *spentLog) add(r *http.Request) {
	r.ParseForm()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tokens = append(l.tokens, r.PostForm.Get("refresh_token"))
}

func (l *spentLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.tokens...)
}

// A read that is not a refresh does not wait for another holder's rotation
// in progress: a status answers at once while the lock is held for a slow
// refresh.
func TestReadDoesNotWaitForARotation(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	ep := newFakeTokenEndpoint(t, func(n int, w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		rotating(n, w, r)
	})
	path := filepath.Join(t.TempDir(), "honcho.json")
	testkit.WriteFile(t, path, configWithGrant(ep.URL, "hch-at-old", "hch-rt-old", clock.Now()))
	done := make(chan error, 1)
	go func() {
		_, err := fastStore(path, clock, nil).TokenSource("hermes").Token()
		done <- err
	}()
	<-arrived // the refresh is at the server; its journal is open
	got := make(chan error, 1)
	go func() {
		_, err := newTestStore(path).Credentials("hermes")
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(500 * time.Millisecond):
		t.Error("an unlocked read waited for another holder's refresh")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
