//go:build unix

package pgstore_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/pgstore"
)

// childEnv carries the child's database URL; its presence makes
// TestStoppedProcessChild the child.
const childEnv = "PGSTORE_TEST_CHILD_DB"

// TestStoppedProcessChild is the child of TestStoppedProcessNeverReplays:
// one token through a store with a one-second lease, printed.
func TestStoppedProcessChild(t *testing.T) {
	url := os.Getenv(childEnv)
	if url == "" {
		t.Skip("the child of TestStoppedProcessNeverReplays")
	}
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	st, err := pgstore.New(context.Background(), pool, pgstore.Config{Keys: []pgstore.Key{fixture.PostgresKey("k1")},
		SpillDir: os.Getenv("PGSTORE_TEST_CHILD_SPILL"), Owner: "child", LeaseTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ts := oauth.NewGrants(st).TokenSource("k")
	tok, err := ts.Token()
	if err == nil {
		err = ts.Sync(context.Background())
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("token=" + tok.AccessToken)
}

// TestStoppedProcessNeverReplays: a process is stopped (SIGSTOP) while its
// refresh request is at the server, past its lease. Another holder does
// not spend the token again; the stopped process, continued, commits its
// answer and prints it, and the server saw one refresh and no replay.
func TestStoppedProcessNeverReplays(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	raw := fixture.PostgresURL(t, false)
	pool, err := pgxpool.New(t.Context(), raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	srv := newStrictServer(t)
	installPlain(t, oauth.NewGrants(newStore(t, pool, pgstore.Config{Owner: "installer"})), srv, "k", "at-0", "rt-0", time.Now().Add(time.Minute))

	cmd := exec.Command(os.Args[0], "-test.run=^TestStoppedProcessChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+raw, "PGSTORE_TEST_CHILD_SPILL="+t.TempDir())
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	stopped := make(chan struct{})
	started := make(chan *os.Process, 1)
	var once sync.Once
	srv.mu.Lock()
	srv.onRefresh = func() {
		once.Do(func() {
			// The request is here; stop its sender before it reads the
			// answer, and answer only once it is stopped, or a busy
			// machine lets it read the answer first.
			testkit.StopProcess(<-started)
			close(stopped)
		})
	}
	srv.mu.Unlock()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started <- cmd.Process
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
	})
	select {
	case <-stopped:
	case <-time.After(time.Minute):
		t.Fatalf("the child never refreshed: %s", out)
	}
	waitLeaseOver(t, pool, "k") // the child's
	b := oauth.NewGrants(newStore(t, pool, pgstore.Config{Owner: "b", LeaseTTL: time.Second, SpendWait: 200 * time.Millisecond}))
	if tok, err := b.TokenSource("k").Token(); err != nil || tok.AccessToken != "at-0" {
		t.Fatalf("B while the child is stopped: %v, %v; want the current token", tok, err)
	}
	if issued, replays := srv.stats(); issued != 1 || replays != 0 {
		t.Fatalf("server: %d refreshes, %d replays while the child was stopped; want 1 and 0", issued, replays)
	}

	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	if !strings.Contains(out.String(), "token=at-1") {
		t.Fatalf("child printed %q; want its rotation", out)
	}
	c := oauth.NewGrants(newStore(t, pool, pgstore.Config{Owner: "c"}))
	if tok, err := c.TokenSource("k").Token(); err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("after the child: %v, %v; want its rotation, stored", tok, err)
	}
	if issued, replays := srv.stats(); issued != 1 || replays != 0 {
		t.Errorf("server: %d refreshes, %d replays; want 1 and 0", issued, replays)
	}
}
