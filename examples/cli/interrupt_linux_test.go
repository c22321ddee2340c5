package main

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memconnect/memconnect/internal/testsupport/honchofake"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
)

// ptyCLI is the command run as its own process on a pseudo-terminal that
// is its controlling terminal, so that Ctrl-C typed there reaches it as
// SIGINT, as it does in a person's shell.
type ptyCLI struct {
	term, master *os.File
	chunks       <-chan string
	out          strings.Builder
	exited       chan int
}

// startPTY runs memconnect with args and the environment e on a new
// pseudo-terminal.
func startPTY(t *testing.T, e env, args ...string) *ptyCLI {
	t.Helper()
	term, master, chunks := openPTY(t)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = []string{cliMainEnv + "=1"}
	for k, v := range e {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = term, term, term
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &ptyCLI{term: term, master: master, chunks: chunks, exited: make(chan int, 1)}
	go func() {
		cmd.Wait()
		p.exited <- cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	return p
}

// waitFor reads what the command shows until it contains want.
func (p *ptyCLI) waitFor(t *testing.T, want string) {
	t.Helper()
	waitFor(t, p.chunks, &p.out, want)
}

// typeText types s at the terminal.
func (p *ptyCLI) typeText(t *testing.T, s string) {
	t.Helper()
	if _, err := p.master.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// exit waits for the command to end, reading what it shows meanwhile, and
// returns its exit status once all it showed has been read.
func (p *ptyCLI) exit(t *testing.T) int {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case code := <-p.exited:
			// What the command wrote is ahead of this in the terminal.
			const end = "[the command ended]"
			if _, err := p.term.WriteString(end); err != nil {
				t.Fatal(err)
			}
			p.waitFor(t, end)
			return code
		case c := <-p.chunks:
			p.out.WriteString(c)
		case <-timeout:
			t.Fatalf("the command did not end; it showed:\n%q", p.out.String())
		}
	}
}

// interrupted checks that the command ended with exit 130 and said said.
func (p *ptyCLI) interrupted(t *testing.T, said string) {
	t.Helper()
	if code := p.exit(t); code != exitInterrupted {
		t.Fatalf("exit %d, want %d:\n%q", code, exitInterrupted, p.out.String())
	}
	if !strings.Contains(p.out.String(), "memconnect: "+said) || strings.Contains(p.out.String(), "stdin") {
		t.Errorf("the command said:\n%q\nwant %q", p.out.String(), said)
	}
}

// echoOn reports whether the terminal echoes what is typed.
func (p *ptyCLI) echoOn(t *testing.T) bool {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(p.term.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag&unix.ECHO != 0
}

// fileBytes returns the file at path, nil when there is none.
func fileBytes(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return b
}

// Ctrl-C at any prompt ends the command at once with exit 130, without
// Enter, and changes nothing; the terminal's echo is back on after.
func TestCtrlCAtEveryPrompt(t *testing.T) {
	t.Parallel()
	t.Run("api key", func(t *testing.T) {
		e := newEnv(t)
		path := filepath.Join(e["HOME"], ".hermes", "honcho.json")
		testkit.WriteJSON(t, path, map[string]any{"workspace": "mine"})
		before := fileBytes(t, path)
		p := startPTY(t, e, "login", "--api-key")
		p.waitFor(t, "API key for Honcho (not shown): ")
		p.typeText(t, "hch-v2-half-typed")
		p.typeText(t, "\x03")
		p.interrupted(t, "Interrupted; no API key was stored.")
		if !bytes.Equal(fileBytes(t, path), before) {
			t.Error("the config changed")
		}
		if !p.echoOn(t) {
			t.Error("the terminal's echo was left off")
		}
	})

	t.Run("replace the sign-in", func(t *testing.T) {
		e := newEnv(t)
		path := filepath.Join(e["HOME"], ".hermes", "honcho.json")
		testkit.WriteJSON(t, path, map[string]any{"hosts": map[string]any{"hermes": map[string]any{"apiKey": "hch-v2-kept-0123456789"}}})
		before := fileBytes(t, path)
		p := startPTY(t, e, "login", "--api-key")
		p.waitFor(t, "This profile is already signed in to Honcho with an API key. Replace it? [y/N]: ")
		p.typeText(t, "\x03")
		p.interrupted(t, "Interrupted; nothing was changed.")
		if !bytes.Equal(fileBytes(t, path), before) {
			t.Error("the config changed")
		}
	})

	t.Run("peer name", func(t *testing.T) {
		srv := honchofake.NewServer(honchofake.WithGrantConfig(map[string]any{"peerName": "alice"}))
		defer srv.Close()
		e, args := loginEnv(t, srv)
		path := filepath.Join(e["HOME"], ".hermes", "honcho.json")
		testkit.WriteJSON(t, path, map[string]any{"peerName": "carol"})
		p := startPTY(t, e, append([]string{"login"}, args...)...)
		consentOnPTY(t, srv, p)
		p.waitFor(t, "Peer name [carol]: ")
		p.typeText(t, "rm -rf")
		p.typeText(t, "\x03")
		p.interrupted(t, "Interrupted; you are signed in, and the peer name was not changed.")
		if got := testkit.ReadJSON(t, path)["peerName"]; got != "carol" {
			t.Errorf("peerName = %v, want it unchanged", got)
		}
	})
}

// consentOnPTY approves the sign-in whose link the command shows, and
// follows the redirect to its loopback listener.
func consentOnPTY(t *testing.T, srv *honchofake.Server, p *ptyCLI) {
	t.Helper()
	p.waitFor(t, "callback")
	target, err := srv.Consent(context.Background(), srv.Client(), linkRE.FindString(p.out.String()), true)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Get(target.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// A peer name with a control character, or too long, is refused with the
// reason and asked again.
func TestPeerNameRefused(t *testing.T) {
	t.Parallel()
	srv := honchofake.NewServer(honchofake.WithGrantConfig(map[string]any{"peerName": "alice"}))
	defer srv.Close()
	e, args := loginEnv(t, srv)
	path := filepath.Join(e["HOME"], ".hermes", "honcho.json")
	p := startPTY(t, e, append([]string{"login"}, args...)...)
	consentOnPTY(t, srv, p)
	p.waitFor(t, "Peer name [alice]: ")
	p.typeText(t, "bob\x1b[31m\r")
	p.waitFor(t, "That peer name cannot be used: it holds a control or invisible character (U+001B). Type another.")
	p.typeText(t, strings.Repeat("b", maxPeerName+1)+"\r")
	p.waitFor(t, "That peer name cannot be used: it is longer than 64 characters. Type another.")
	p.typeText(t, "bob\r")
	if code := p.exit(t); code != exitOK {
		t.Fatalf("exit %d:\n%q", code, p.out.String())
	}
	if got := testkit.ReadJSON(t, path)["peerName"]; got != "bob" {
		t.Errorf("peerName = %v, want bob", got)
	}
}

// On a terminal, a login over a sign-in that works asks first: "n" keeps
// it (exit 1), and a key the server refuses is not stored, with the
// server's reason in one sentence.
func TestLoginAsksAndChecksOnPTY(t *testing.T) {
	t.Parallel()
	srv := honchofake.NewServer(honchofake.WithAPIKey("hch-v2-good-0123456789"))
	defer srv.Close()
	e := newEnv(t)
	e["HONCHO_API_KEY_CHECK_URL"] = srv.WhoAmIURL()
	path := filepath.Join(e["HOME"], ".hermes", "honcho.json")

	p := startPTY(t, e, "login", "--api-key")
	p.waitFor(t, "API key for Honcho (not shown): ")
	p.typeText(t, "hch-v2-wrong-0123456789\r")
	if code := p.exit(t); code != exitFailed || !strings.Contains(p.out.String(), "The API key was not stored: Honcho refused the key (HTTP 401)") {
		t.Fatalf("a refused key: exit %d:\n%q", code, p.out.String())
	}
	if fileBytes(t, path) != nil && testkit.HostBlock(testkit.ReadJSON(t, path), "hermes")["apiKey"] != nil {
		t.Fatal("a refused key was stored")
	}

	p = startPTY(t, e, "login", "--api-key")
	p.waitFor(t, "API key for Honcho (not shown): ")
	p.typeText(t, "hch-v2-good-0123456789\r")
	if code := p.exit(t); code != exitOK {
		t.Fatalf("the server's key: exit %d:\n%q", code, p.out.String())
	}
	before := fileBytes(t, path)
	p = startPTY(t, e, "login", "--api-key")
	p.waitFor(t, "Replace it? [y/N]: ")
	p.typeText(t, "n\r")
	if code := p.exit(t); code != exitFailed || !strings.Contains(p.out.String(), "Kept the current sign-in; nothing was changed.") {
		t.Fatalf("answering n: exit %d:\n%q", code, p.out.String())
	}
	if !bytes.Equal(fileBytes(t, path), before) {
		t.Error("the config changed")
	}
}

// On a terminal, status exits 3 when not signed in, and token prints the
// API key of a profile connected with one and exits 0.
func TestExitCodesOnPTY(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := startPTY(t, e, "status")
	if code := p.exit(t); code != exitReauth || !strings.Contains(p.out.String(), "Auth: not connected") {
		t.Errorf("status, not signed in: exit %d:\n%q", code, p.out.String())
	}
	testkit.WriteJSON(t, filepath.Join(e["HOME"], ".hermes", "honcho.json"), map[string]any{"hosts": map[string]any{"hermes": map[string]any{"apiKey": "hch-v2-pty-0123456789"}}})
	p = startPTY(t, e, "token")
	if code := p.exit(t); code != exitOK || !strings.Contains(p.out.String(), "hch-v2-pty-0123456789") {
		t.Errorf("token with an API key: exit %d:\n%q", code, p.out.String())
	}
	p = startPTY(t, e, "status")
	if code := p.exit(t); code != exitOK || !strings.Contains(p.out.String(), "Auth: API key") {
		t.Errorf("status with an API key: exit %d:\n%q", code, p.out.String())
	}
}

// login --paste on a terminal: the person signs in elsewhere and pastes
// back the address the browser ended at, or its code and state; an address
// of another sign-in is refused and nothing is stored; Ctrl-C at the
// prompt ends it at once.
func TestLoginPaste(t *testing.T) {
	t.Parallel()
	paste := func(t *testing.T, answer func(target *url.URL) string) (*ptyCLI, string) {
		t.Helper()
		srv := honchofake.NewServer()
		t.Cleanup(srv.Close)
		e, args := loginEnv(t, srv)
		path := filepath.Join(e["HOME"], ".hermes", "honcho.json")
		p := startPTY(t, e, append([]string{"login", "--paste"}, args...)...)
		p.waitFor(t, "paste the address the browser ended at")
		target, err := srv.Consent(context.Background(), srv.Client(), linkRE.FindString(p.out.String()), true)
		if err != nil {
			t.Fatal(err)
		}
		p.typeText(t, answer(target)+"\r")
		return p, path
	}
	for _, tt := range []struct {
		name   string
		answer func(target *url.URL) string
	}{
		{"the whole address", func(u *url.URL) string { return u.String() }},
		{"the code and the state", func(u *url.URL) string { return u.Query().Get("code") + " " + u.Query().Get("state") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, path := paste(t, tt.answer)
			p.waitFor(t, "Connected to Honcho.")
			if code := p.exit(t); code != exitOK {
				t.Fatalf("exit %d:\n%q", code, p.out.String())
			}
			if hb := testkit.HostBlock(testkit.ReadJSON(t, path), "hermes"); hb["oauth"] == nil {
				t.Errorf("no grant stored: %v", hb)
			}
		})
	}
	t.Run("a wrong state", func(t *testing.T) {
		p, path := paste(t, func(u *url.URL) string { return u.Query().Get("code") + " not-this-sign-ins-state" })
		if code := p.exit(t); code == exitOK || !strings.Contains(p.out.String(), "nothing was stored") {
			t.Fatalf("exit %d:\n%q; want a refusal saying nothing was stored", code, p.out.String())
		}
		if b := fileBytes(t, path); b != nil {
			t.Errorf("a config was written: %s", b)
		}
	})
	t.Run("Ctrl-C", func(t *testing.T) {
		srv := honchofake.NewServer()
		t.Cleanup(srv.Close)
		e, args := loginEnv(t, srv)
		p := startPTY(t, e, append([]string{"login", "--paste"}, args...)...)
		p.waitFor(t, "paste the address the browser ended at")
		p.typeText(t, "http://127.0.0.1:1/cal")
		p.typeText(t, "\x03")
		p.interrupted(t, "Interrupted; nothing was stored.")
		if b := fileBytes(t, filepath.Join(e["HOME"], ".hermes", "honcho.json")); b != nil {
			t.Errorf("a config was written: %s", b)
		}
	})
}
