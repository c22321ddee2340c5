package filestore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth"
)

// pythonPeer is a stand-in for the Python agent's side of the protocol, as
// in its plugins/memory/honcho/oauth.py: an exclusive fcntl.flock on
// "<config>.lock" around read-modify-write, and a write by temp file and
// os.replace with json.dumps(indent=2). Commands come on stdin, one a line.
const pythonPeer = `
import fcntl, json, os, sys, time
path = sys.argv[1]
lock = open(path + ".lock", "a+b")
def say(s):
    print(s, flush=True)
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "try":        # take the lock without waiting
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            say("locked")
        except BlockingIOError:
            say("busy")
    elif cmd[0] == "lock":
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        say("locked")
    elif cmd[0] == "unlock":
        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
        say("unlocked")
    elif cmd[0] == "rotate":   # what _persist_credential does, under the lock
        raw = json.load(open(path))
        block = raw.setdefault("hosts", {}).setdefault("hermes", {})
        block["apiKey"] = cmd[1]
        block["oauth"]["refreshToken"] = cmd[2]
        block["oauth"]["expiresAt"] = int(time.time()) + 3600
        tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(raw, indent=2) + "\n")
        os.replace(tmp, path)
        say("rotated")
    elif cmd[0] == "read":     # what OAuthCredential.from_host_block reads
        block = json.load(open(path))["hosts"]["hermes"]
        say(block["apiKey"] + " " + block["oauth"]["refreshToken"] + " " + str(type(block["oauth"]["expiresAt"]).__name__))
`

// python3 returns the path of the python3 interpreter on PATH, skipping t
// when there is none. A python3 on PATH may be a version manager's shim
// (pyenv's starts some thirty processes each time); the interpreter it
// resolves to is asked for once and started directly.
func python3(t *testing.T) string {
	t.Helper()
	path, err := resolvePython3()
	if errors.Is(err, exec.ErrNotFound) {
		t.Skip("no python3 on this machine to play the Python agent")
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

var resolvePython3 = sync.OnceValues(func() (string, error) {
	onPath, err := exec.LookPath("python3")
	if err != nil {
		return "", err
	}
	out, err := exec.Command(onPath, "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		return "", fmt.Errorf("asking %s for its interpreter: %w", onPath, err)
	}
	if exe := strings.TrimSpace(string(out)); exe != "" {
		return exe, nil
	}
	return onPath, nil
})

// python runs the peer for the config at path. It skips the test when
// python3 is not installed.
type python struct {
	t   *testing.T
	in  io.WriteCloser
	out *bufio.Reader
}

func startPython(t *testing.T, path string) *python {
	t.Helper()
	cmd := exec.Command(python3(t), "-c", pythonPeer, path)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		cmd.Wait()
	})
	return &python{t: t, in: in, out: bufio.NewReader(out)}
}

// do sends a command and returns the peer's answer.
func (p *python) do(cmd string) string {
	p.t.Helper()
	if _, err := io.WriteString(p.in, cmd+"\n"); err != nil {
		p.t.Fatal(err)
	}
	line, err := p.out.ReadString('\n')
	if err != nil {
		p.t.Fatalf("python peer: %q: %v", cmd, err)
	}
	return strings.TrimSpace(line)
}

// TestPythonAgentLockInterop: the Go store and the Python agent exclude each
// other with the same flock on <config>.lock, and each reads what the other
// wrote. A rotation the Python agent made while holding the lock is adopted
// by a Go token source that waited for it, with no refresh of its own.
func TestPythonAgentLockInterop(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	ep := newFakeTokenEndpoint(t, rotating)
	path := filepath.Join(t.TempDir(), "honcho.json")
	testkit.WriteFile(t, path, configWithGrant(ep.URL, "hch-at-old", "hch-rt-old", clock.Now().Add(time.Minute)))
	py := startPython(t, path)

	// Go holds the lock: Python cannot take it.
	s := fastStore(path, clock, nil)
	unlock, err := s.file.lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := py.do("try"); got != "busy" {
		t.Fatalf("python took the lock Go holds: %s", got)
	}
	unlock()
	if got := py.do("try"); got != "locked" {
		t.Fatalf("python could not take the free lock: %s", got)
	}

	// Python holds the lock: Go's lock wait ends at its deadline.
	waiter := newTestStore(path, withLockTimeout(100*time.Millisecond))
	if err := waiter.file.MergeConfig(context.Background(), "hermes", map[string]any{"x": 1}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Go wrote while Python held the lock: %v", err)
	}

	// A Go token source needing a refresh waits for Python's rotation and
	// adopts it.
	type result struct {
		access string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		tok, err := s.TokenSource("hermes").Token()
		if err != nil {
			done <- result{err: err}
			return
		}
		done <- result{access: tok.AccessToken}
	}()
	if got := py.do("rotate hch-at-python hch-rt-python"); got != "rotated" {
		t.Fatal(got)
	}
	py.do("unlock")
	r := <-done
	if r.err != nil || r.access != "hch-at-python" {
		t.Fatalf("Go token = %q, %v; want the Python agent's rotation", r.access, r.err)
	}
	if n := ep.calls.Load(); n != 0 {
		t.Fatalf("Go spent the superseded refresh token: %d token requests", n)
	}

	// Python reads what Go writes, with expiresAt as an integer. (Python
	// stamped its expiry with the real clock; this store's runs two hours
	// ahead, so it refreshes.)
	s2 := newTestStore(path, oauth.WithClock(testkit.ClockAt(time.Now().Add(2*time.Hour))))
	tok, err := s2.TokenSource("hermes").Token()
	if err != nil {
		t.Fatal(err)
	}
	if got := py.do("read"); got != tok.AccessToken+" hch-rt-new1 int" {
		t.Fatalf("python read %q after Go's rotation", got)
	}
	assertUntouched(t, testkit.ReadJSON(t, path))
}
