package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

// The multi-process test re-executes the test binary; TestMain hands a
// process with childEnv set to runChild instead of running tests. The other
// variables tell the child where the grant lives and where Hydra is.
const (
	childEnv         = "MEMCONNECT_E2E_CHILD"
	childHomeEnv     = "MEMCONNECT_E2E_HERMES_HOME"
	childAuthURLEnv  = "MEMCONNECT_E2E_AUTH_URL"
	childTokenURLEnv = "MEMCONNECT_E2E_TOKEN_URL"
	childIssuerEnv   = "MEMCONNECT_E2E_ISSUER"
)

// Shape of the concurrency test.
const (
	childProcesses   = 4
	childGoroutines  = 8
	childCalls       = 50 // Token calls per goroutine
	forcedExpiries   = 3
	childRoundBudget = 60 * time.Second
)

// childReport is what a child prints on stdout when it is done.
type childReport struct {
	Rotations int      `json:"rotations"` // refreshes this process made (OnTokenChange)
	Tokens    []string `json:"tokens"`    // distinct access tokens its goroutines got
	Errors    []string `json:"errors"`
}

// runChild is the body of a child process; mode "token-source" is the only
// one. It returns the process's exit status.
func runChild(mode string) int {
	if mode == "lease-holder" {
		return runLeaseHolder()
	}
	if mode != "token-source" {
		fmt.Fprintf(os.Stderr, "e2e child: unknown mode %q\n", mode)
		return 2
	}
	rep := childTokenSource(os.Getenv(childHomeEnv), &Hydra{
		AuthURL:  os.Getenv(childAuthURLEnv),
		TokenURL: os.Getenv(childTokenURLEnv),
		Issuer:   os.Getenv(childIssuerEnv),
	}, os.Stdin, os.Stdout)
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		return 1
	}
	return 0
}

// childTokenSource builds the Honcho provider's token source for the
// default profile in home, as a program using the library would, says
// "ready", waits for a line on start, and then lets childGoroutines
// goroutines ask it for a token childCalls times each.
func childTokenSource(home string, h *Hydra, start io.Reader, out io.Writer) childReport {
	var rep childReport
	var rotations atomic.Int64
	conn, err := newConnector(h, home, nil)
	if err != nil {
		rep.Errors = append(rep.Errors, err.Error())
		return rep
	}

	fmt.Fprintln(out, "ready")
	if _, err := bufio.NewReader(start).ReadString('\n'); err != nil {
		rep.Errors = append(rep.Errors, "waiting for the start line: "+err.Error())
		return rep
	}

	var mu sync.Mutex // guards rep.Tokens and rep.Errors
	var wg sync.WaitGroup
	for range childGoroutines {
		wg.Go(func() {
			ts, err := conn.TokenSource(provider.DefaultProfile, honcho.Name, oauth.OnTokenChange(func(*oauth2.Token) { rotations.Add(1) }))
			if err != nil {
				mu.Lock()
				rep.Errors = append(rep.Errors, err.Error())
				mu.Unlock()
				return
			}
			for range childCalls {
				tok, err := ts.Token()
				mu.Lock()
				if err != nil {
					rep.Errors = append(rep.Errors, err.Error())
				} else if !slices.Contains(rep.Tokens, tok.AccessToken) {
					rep.Tokens = append(rep.Tokens, tok.AccessToken)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	rep.Rotations = int(rotations.Load())
	return rep
}

// TestConcurrentRefreshAcrossProcesses: 4 processes × 8 goroutines of the
// Honcho token source share one honcho.json, across 3 forced expiries of the
// access token. Each expiry must cost exactly one refresh at Hydra, which
// rotates and revokes on replay: every goroutine of every process must end
// with the one new token, and the grant must survive (a replayed refresh
// token would have made Hydra revoke all of it).
func TestConcurrentRefreshAcrossProcesses(t *testing.T) {
	h := StartHydra(t)
	h.CreatePublicClient(t, e2eClientID, loopbackRedirect)
	home := hermesHome(t)
	path := configPath(home)
	prev := connectWithConnector(t, newSignInConnector(t, h, home), home)
	var spent []string // refresh tokens superseded so far

	for round := 1; round <= forcedExpiries; round++ {
		forceExpiry(t, path, honcho.DefaultHost)
		reports := runChildren(t, h, home, round-1)
		now := readGrant(t, path, honcho.DefaultHost)

		rotations := 0
		for i, r := range reports {
			rotations += r.Rotations
			if len(r.Errors) > 0 {
				t.Errorf("round %d child %d: token errors: %q", round, i, r.Errors)
			}
			if len(r.Tokens) != 1 || r.Tokens[0] != now.AccessToken {
				t.Errorf("round %d child %d: got %d distinct tokens (%v), want only the stored %s",
					round, i, len(r.Tokens), redactAll(r.Tokens), redact(now.AccessToken))
			}
		}
		t.Logf("round %d: rotations per child %v", round, rotationsOf(reports))
		if rotations != 1 {
			t.Errorf("round %d: the children made %d refreshes, want exactly 1", round, rotations)
		}
		if now.RefreshToken == prev.RefreshToken || now.AccessToken == prev.AccessToken {
			t.Fatalf("round %d: the stored grant did not rotate", round)
		}
		if time.Until(time.Unix(now.ExpiresAt, 0)) < 30*time.Minute {
			t.Errorf("round %d: stored expiresAt %v is not fresh", round, time.Unix(now.ExpiresAt, 0))
		}
		assertActive(t, h, fmt.Sprintf("round %d superseded refresh token", round), prev.RefreshToken, false)
		assertActive(t, h, fmt.Sprintf("round %d access token", round), now.AccessToken, true)
		spent = append(spent, prev.RefreshToken)
		prev = now
		if t.Failed() {
			t.FailNow()
		}
	}

	// Hydra still accepts the grant: one more refresh, in this process, works
	// and its tokens are live. After a reuse this would be invalid_grant.
	forceExpiry(t, path, honcho.DefaultHost)
	conn, err := newConnector(h, filepath.Dir(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := conn.TokenSource(provider.DefaultProfile, honcho.Name)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	tok, err := ts.TokenContext(ctx)
	if err != nil {
		t.Fatalf("final refresh: %v", err)
	}
	final := readGrant(t, path, honcho.DefaultHost)
	if tok.AccessToken != final.AccessToken || final.RefreshToken == prev.RefreshToken {
		t.Fatalf("final refresh did not rotate the stored grant")
	}
	assertActive(t, h, "final access token", final.AccessToken, true)
	assertActive(t, h, "final refresh token", final.RefreshToken, true)
	for i, rt := range append(spent, prev.RefreshToken) {
		assertActive(t, h, fmt.Sprintf("refresh token %d", i+1), rt, false)
	}
}

// runChildren runs one round: childProcesses children start, say ready,
// and are released together, child first first; it returns their reports.
func runChildren(t *testing.T, h *Hydra, home string, first int) []childReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), childRoundBudget)
	defer cancel()
	type child struct {
		cmd    *exec.Cmd
		stdin  io.WriteCloser
		stdout *bufio.Reader
	}
	var children []child
	defer func() {
		for _, c := range children {
			c.stdin.Close()
			_ = c.cmd.Wait() // the context kills a straggler
		}
	}()
	for range childProcesses {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(),
			childEnv+"=token-source",
			childHomeEnv+"="+home,
			childAuthURLEnv+"="+h.AuthURL,
			childTokenURLEnv+"="+h.TokenURL,
			childIssuerEnv+"="+h.Issuer,
		)
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		children = append(children, child{cmd, stdin, bufio.NewReader(stdout)})
	}
	for i, c := range children {
		if line, err := c.stdout.ReadString('\n'); err != nil || line != "ready\n" {
			t.Fatalf("child %d: read %q, %v; want ready", i, line, err)
		}
	}
	for i := range children {
		io.WriteString(children[(first+i)%len(children)].stdin, "go\n")
	}
	reports := make([]childReport, len(children))
	for i, c := range children {
		if err := json.NewDecoder(c.stdout).Decode(&reports[i]); err != nil {
			t.Fatalf("child %d: report: %v", i, err)
		}
	}
	for i, c := range children {
		c.stdin.Close()
		if err := c.cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v", i, err)
		}
	}
	children = nil
	return reports
}

func redactAll(toks []string) []string {
	out := make([]string, len(toks))
	for i, tok := range toks {
		out[i] = redact(tok)
	}
	return out
}

func rotationsOf(reports []childReport) []int {
	var n []int
	for _, r := range reports {
		n = append(n, r.Rotations)
	}
	return n
}
