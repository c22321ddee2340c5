package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// curlDoc is the document TestCurlDocument runs.
const curlDoc = "../examples/curl.md"

// writeCurlDoc, set to 1, makes TestCurlDocument write the answers of its
// run into the document instead of comparing them.
const writeCurlDoc = "MEMCONNECT_WRITE_CURL_MD"

// docCommand is one "$ " command of a console block and the answer the
// document shows for it.
type docCommand struct {
	cmd      string // continuation lines joined with "\n"
	line     int    // 0-based line of the "$ "
	from, to int    // the answer's lines: [from, to)
}

// parseConsole returns the commands of the document's console blocks.
func parseConsole(lines []string) []docCommand {
	var cmds []docCommand
	in := false
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case !in && l == "```console":
			in = true
			continue
		case in && l == "```":
			in = false
			continue
		case !in || !strings.HasPrefix(l, "$ "):
			continue
		}
		c := docCommand{cmd: strings.TrimPrefix(l, "$ "), line: i}
		for strings.HasSuffix(lines[i], `\`) && i+1 < len(lines) {
			i++
			c.cmd += "\n" + lines[i]
		}
		c.from = i + 1
		j := c.from
		for j < len(lines) && lines[j] != "```" && !strings.HasPrefix(lines[j], "$ ") {
			j++
		}
		for j > c.from && lines[j-1] == "" {
			j--
		}
		c.to = j
		cmds = append(cmds, c)
	}
	return cmds
}

// devServer is one examples/server -dev run for the document.
type devServer struct {
	addr, home string
	banner     []string // from "memconnect example server" to the end of the export line
}

// startDevServer runs examples/server -dev on a free port with extra flags
// and reads its banner.
func startDevServer(t *testing.T, extra ...string) devServer {
	t.Helper()
	stdout := runServer(t, []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, append([]string{"-dev", "-addr", "127.0.0.1:0"}, extra...)...)
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var s devServer
	export := false
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("examples/server %v ended; it printed:\n%s", extra, strings.Join(s.banner, "\n"))
			}
			s.banner = append(s.banner, l)
			if a, ok := strings.CutPrefix(l, "listening on http://"); ok {
				s.addr = a
			}
			if h, ok := strings.CutPrefix(l, "Hermes home: "); ok {
				s.home, _, _ = strings.Cut(h, " (")
			}
			export = export || strings.HasPrefix(l, "  export ")
			if export && !strings.HasSuffix(l, `\`) {
				go func() {
					for range lines {
					}
				}()
				return s
			}
		case <-timeout:
			t.Fatalf("no banner from examples/server %v:\n%s", extra, strings.Join(s.banner, "\n"))
		}
	}
}

// shell is one bash process that runs the document's commands in turn, so
// that variables and files carry from one to the next.
type shell struct {
	in  io.Writer
	out chan string
	n   int
}

func startShell(t *testing.T, dir string) *shell {
	t.Helper()
	cmd := exec.Command("bash", "--norc", "--noprofile")
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "LC_ALL=C.UTF-8"}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait(); pw.Close() })
	sh := &shell{in: in, out: make(chan string, 1000)}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			sh.out <- sc.Text()
		}
	}()
	return sh
}

// run runs command and returns what it printed, trailing blank lines cut.
func (sh *shell) run(t *testing.T, command string) []string {
	t.Helper()
	sh.n++
	end := fmt.Sprintf("__end_of_command_%d__", sh.n)
	fmt.Fprintf(sh.in, "%s\nprintf '\\n%s\\n'\n", command, end)
	var got []string
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l := <-sh.out:
			if l == end {
				for len(got) > 0 && got[len(got)-1] == "" {
					got = got[:len(got)-1]
				}
				return got
			}
			got = append(got, l)
		case <-timeout:
			t.Fatalf("%s: no end after 30s; printed so far:\n%s", command, strings.Join(got, "\n"))
		}
	}
}

// volatile are what changes from run to run: masked before answers are
// compared, so that what is compared is their shape.
var volatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`^(Date|Content-Length): .*`), "$1: …"},
	{regexp.MustCompile(`\b[A-Z]{4}-[A-Z]{4}\b`), "CODE-CODE"}, // user codes
	{regexp.MustCompile(`[A-Za-z0-9_-]{20,}`), "…"},            // ids, states, tokens, challenges
	{regexp.MustCompile(`[0-9]+`), "0"},                        // ports, times, counts
}

func shape(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		for _, v := range volatile {
			l = v.re.ReplaceAllString(l, v.with)
		}
		out[i] = l
	}
	return out
}

// TestCurlDocument runs every command of examples/curl.md, in order,
// against examples/server -dev (and the two servers with a session token
// the document starts), with curl, jq and bash, and fails when an answer's
// shape no longer matches the document's: the same lines, status lines,
// headers, JSON keys and page markers, with ids, codes, ports and times
// masked. The banner is compared with the document's. Run with
// MEMCONNECT_WRITE_CURL_MD=1 it writes this run's answers into the
// document instead.
func TestCurlDocument(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: runs the example server")
	}
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (make test installs it): %v", tool, err)
		}
	}
	b, err := os.ReadFile(curlDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Split(string(b), "\n")
	for _, want := range []string{
		"go run ./examples/server -dev -addr 127.0.0.1:8081 -session-token s3cret-session-token",
		"go run ./examples/server -dev -addr 127.0.0.1:8082\n-session-token s3cret-session-token -session-key kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk",
	} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("curl.md no longer starts a server with %q, as this test does", want)
		}
	}
	a := startDevServer(t)
	sessions := startDevServer(t, "-session-token", "s3cret-session-token")
	minting := startDevServer(t, "-session-token", "s3cret-session-token", "-session-key", strings.Repeat("k", 32))

	cmds := parseConsole(doc)
	if len(cmds) < 50 || cmds[0].cmd != "go run ./examples/server -dev" {
		t.Fatalf("curl.md: %d commands, the first %q; want the server's start first", len(cmds), cmds[0].cmd)
	}
	var docHome string
	for _, l := range doc[cmds[0].from:cmds[0].to] {
		if h, ok := strings.CutPrefix(l, "Hermes home: "); ok {
			docHome, _, _ = strings.Cut(h, " (")
		}
	}
	if docHome == "" {
		t.Fatal("curl.md's banner names no Hermes home")
	}
	// The document's addresses and home, and this run's.
	toRun := strings.NewReplacer("127.0.0.1:8080", a.addr, "127.0.0.1:8081", sessions.addr, "127.0.0.1:8082", minting.addr, docHome, a.home)
	var back []string // this run's addresses, as they are and URL-escaped, to the document's
	for doc, s := range map[string]devServer{"8080": a, "8081": sessions, "8082": minting} {
		back = append(back, s.addr, "127.0.0.1:"+doc, url.QueryEscape(s.addr), url.QueryEscape("127.0.0.1:"+doc))
	}
	toDoc := strings.NewReplacer(append(back, a.home, docHome)...)

	sh := startShell(t, t.TempDir())
	answers := make([][]string, len(cmds))
	for i, c := range cmds {
		var got []string
		if i == 0 {
			got = a.banner
		} else {
			got = sh.run(t, toRun.Replace(c.cmd))
		}
		for j := range got {
			got[j] = toDoc.Replace(got[j])
		}
		answers[i] = got
		want := doc[c.from:c.to]
		if os.Getenv(writeCurlDoc) == "" && strings.Join(shape(got), "\n") != strings.Join(shape(want), "\n") {
			t.Errorf("examples/curl.md:%d: $ %s\nthe answer no longer matches the document (%s=1 rewrites it from a run):\n--- document\n%s\n--- now\n%s",
				c.line+1, c.cmd, writeCurlDoc, strings.Join(want, "\n"), strings.Join(got, "\n"))
		}
	}
	if os.Getenv(writeCurlDoc) == "" {
		return
	}
	var out []string
	last := 0
	for i, c := range cmds {
		out = append(out, doc[last:c.from]...)
		out = append(out, answers[i]...)
		last = c.to
	}
	out = append(out, doc[last:]...)
	text := strings.ReplaceAll(strings.Join(out, "\n"), docHome, a.home)
	if err := os.WriteFile(curlDoc, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s from this run", curlDoc)
}
