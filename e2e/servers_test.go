package e2e

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/mcp"
)

// startMCPRouter is startRouter for one MCP-style provider, name, of the
// server at serverURL; it returns the base URL and the router's Connector.
func startMCPRouter(t *testing.T, name, display, serverURL string) (string, *provider.Connector) {
	t.Helper()
	p, err := mcp.New(name, display, serverURL)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := provider.NewRegistry(p)
	if err != nil {
		t.Fatal(err)
	}
	base, router := startRouter(t, reg)
	return base, router.Connector()
}

// startRouter serves a router of reg, over a fresh Hermes home, mounted at
// /api/memory on a loopback port with that mount as its callback base URL,
// stopped with the test; it returns the base URL and the router.
func startRouter(t *testing.T, reg *provider.Registry) (string, *memconnect.Router) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String() + "/api/memory"
	router, err := memconnect.New(memconnect.Config{Registry: reg, Profiles: provider.HermesProfiles{Root: hermesHome(t)}, CallbackBaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { router.Close() })
	mux := chi.NewRouter()
	mux.Mount("/api/memory", router)
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return base, router
}

// loginProcess is the CLI's login running as a process, in a fresh home.
type loginProcess struct {
	cmd    *exec.Cmd
	r      *bufio.Reader
	out    strings.Builder
	stderr strings.Builder
}

// startLoginProcess runs the CLI's login with args, stopped within a minute.
func startLoginProcess(t *testing.T, args ...string) *loginProcess {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	l := &loginProcess{cmd: exec.CommandContext(ctx, cliBinary(t), append([]string{"login"}, args...)...)}
	l.cmd.Env = []string{"HOME=" + t.TempDir(), "HERMES_HOME=" + hermesHome(t), "PATH=" + os.Getenv("PATH")}
	l.cmd.Stderr = &l.stderr
	stdout, err := l.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	l.r = bufio.NewReader(stdout)
	return l
}

// link returns the first line the login prints that starts with prefix:
// the sign-in link.
func (l *loginProcess) link(t *testing.T, prefix string) string {
	t.Helper()
	for {
		line, err := l.r.ReadString('\n')
		l.out.WriteString(line)
		if strings.HasPrefix(strings.TrimSpace(line), prefix) {
			return strings.TrimSpace(line)
		}
		if err != nil {
			t.Fatalf("login printed no link: %v\n%s\n%s", err, l.out.String(), l.stderr.String())
		}
	}
}

// finish follows the browser's redirect to back, waits for the login to
// end and checks that it said want.
func (l *loginProcess) finish(t *testing.T, back, want string) {
	t.Helper()
	resp, err := http.Get(back)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	rest, _ := io.ReadAll(l.r)
	l.out.Write(rest)
	if err := l.cmd.Wait(); err != nil || !strings.Contains(l.out.String(), want) {
		t.Fatalf("login: %v\nstdout:\n%s\nstderr:\n%s", err, l.out.String(), l.stderr.String())
	}
}
