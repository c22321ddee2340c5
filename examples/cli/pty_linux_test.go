package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/provider/honcho/honchotest"
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
	srv := honchotest.NewServer(honchotest.WithGrantConfig(map[string]any{"peerName": "alice"}))
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

	c := &cli{stderr: term, stderrTTY: isTerminal(term)}
	stop := c.countdown(context.Background(), time.Now().Add(4*time.Minute+30*time.Second)) // its first line, at once, says 4:30
	var onTerm strings.Builder
	waitFor(t, termOut, &onTerm, "\rWaiting for approval (Ctrl-C to cancel)... code expires in 4:")
	stop()
}

// On a terminal login --api-key asks for the key and does not echo it.
func TestPseudoTerminalAPIKey(t *testing.T) {
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
