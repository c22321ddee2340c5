package filestore

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"math/rand/v2"

	"github.com/memconnect/memconnect/internal/testsupport/honchofake"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
)

var crashKills = flag.Int("crash.kills", 0, "run TestCrashHarness with this many SIGKILLs of each kind (make crash)")

// crashTally counts what the kills of one kind of child left behind.
type crashTally struct {
	kills       int
	unparsable  int // the config file did not parse
	lostKeys    int // another key of the file was gone or changed
	revoked     int // the server saw a replay and revoked the grant
	inFlight    int // kills while a refresh was at the server
	afterAnswer int // kills with no refresh at the server: the child had its answer
	lostInRound int // rotations lost to a kill in flight (no client can help it)
	lostAfter   int // rotations lost to a kill after the answer: the window the journal must close
}

// add counts o's kills in t.
func (t *crashTally) add(o crashTally) {
	t.kills += o.kills
	t.unparsable += o.unparsable
	t.lostKeys += o.lostKeys
	t.revoked += o.revoked
	t.inFlight += o.inFlight
	t.afterAnswer += o.afterAnswer
	t.lostInRound += o.lostInRound
	t.lostAfter += o.lostAfter
}

// TestCrashHarness SIGKILLs a child that rotates in a tight loop at random
// moments, -crash.kills times for each of two children: one that records
// the server's answer in the journal the moment it arrives (this package),
// and one that records it only once it is parsed (the first version). For
// each kill it checks the file parses, keeps every key, and holds a grant
// the server accepts or one just one rotation behind; it counts the kills
// that fell while a refresh was at the server, and those after the answer
// that still lost the rotation.
//
// It is slow and not part of the default suite: make crash runs it.
func TestCrashHarness(t *testing.T) {
	t.Parallel()
	if *crashKills == 0 {
		t.Skip("run with -crash.kills=N (make crash)")
	}
	for _, mode := range []string{"crash", "crashlate"} {
		tally := crashRun(t, mode, *crashKills)
		t.Logf("%-9s kills %d: unparsable %d, lost keys %d, revoked %d; in flight %d (rotation lost %d), after the answer %d (rotation lost %d = %.1f%%)",
			mode, tally.kills, tally.unparsable, tally.lostKeys, tally.revoked, tally.inFlight, tally.lostInRound,
			tally.afterAnswer, tally.lostAfter, 100*float64(tally.lostAfter)/float64(max(tally.afterAnswer, 1)))
		if tally.unparsable+tally.lostKeys+tally.revoked != 0 {
			t.Errorf("%s: %+v", mode, tally)
		}
	}
}

func crashRun(t *testing.T, mode string, kills int) crashTally {
	srv := honchofake.NewServer()
	defer srv.Close()
	var mu sync.Mutex
	successor := map[string]string{}
	var inFlight atomic.Int32
	// Each child talks to its own recording proxy; closing it after the
	// kill waits for a refresh the dead child left at the server, so the
	// checks see the server's final word.
	newProxy := func() *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inFlight.Add(1)
			defer inFlight.Add(-1)
			r.ParseForm()
			resp, err := http.PostForm(srv.TokenURL(), r.PostForm)
			if err != nil {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if tok := refreshTokenOf(body); tok != "" {
				mu.Lock()
				successor[r.PostForm.Get("refresh_token")] = tok
				mu.Unlock()
			}
			w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
			w.WriteHeader(resp.StatusCode)
			w.Write(body)
		}))
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "honcho.json")
	grant := srv.IssueGrant("write")
	testkit.WriteFile(t, path, configWithGrant(srv.TokenURL(), grant.AccessToken, grant.RefreshToken, time.Now().Add(-time.Second)))
	var tally crashTally
	for i := range kills {
		proxy := newProxy()
		pointAt(t, path, proxy.URL)
		cmd := childCommand(t, mode, path, "")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("kill %d: child did not start: %q %v", i, line, err)
		}
		<-time.After(time.Duration(rand.IntN(20_000)) * time.Microsecond)
		atServer := inFlight.Load() > 0
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		proxy.Close()
		tally.kills++
		if atServer {
			tally.inFlight++
		} else {
			tally.afterAnswer++
		}

		data, err := os.ReadFile(path)
		if err != nil || !json.Valid(data) {
			tally.unparsable++
			t.Fatalf("kill %d: the config file does not parse: %v", i, err)
		}
		if !t.Run(fmt.Sprintf("%s-%d-keys", mode, i), func(t *testing.T) { assertUntouched(t, testkit.ReadJSON(t, path)) }) {
			tally.lostKeys++
		}
		c, err := newTestStore(path).Credentials("hermes") // the next process finishes a journalled rotation
		if err != nil || c.Grant == nil {
			t.Fatalf("kill %d: no grant in the file: %v", i, err)
		}
		if st := srv.Stats(); st.Replays != 0 || st.RevokedGrants != 0 {
			tally.revoked++
			t.Fatalf("kill %d: replays %d, revoked %d", i, st.Replays, st.RevokedGrants)
		}
		if srv.Active(c.Grant.RefreshToken) {
			continue
		}
		mu.Lock()
		next, ok := successor[c.Grant.RefreshToken]
		mu.Unlock()
		if !ok || !srv.Active(next) {
			t.Fatalf("kill %d: the file holds a refresh token the server does not accept, and it is not one rotation behind", i)
		}
		if atServer {
			tally.lostInRound++
		} else {
			tally.lostAfter++
		}
		// Sign in again, as a person would have to.
		if _, err := newTestStore(path).installGrant(t.Context(), "hermes", srv.IssueGrant("write"),
			installOptions{ClientID: "hermes-agent", TokenEndpoint: srv.TokenURL(), TokensOnly: true}); err != nil {
			t.Fatal(err)
		}
	}
	return tally
}

// pointAt makes the grant in the file at path refresh at tokenURL.
func pointAt(t *testing.T, path, tokenURL string) {
	t.Helper()
	lg, err := newTestStore(path).file.Lock(t.Context(), "hermes")
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Unlock()
	c, err := lg.Credentials(t.Context())
	if err != nil || c.Grant == nil {
		t.Fatalf("no grant: %v", err)
	}
	g := *c.Grant
	g.TokenEndpoint = tokenURL
	if err := lg.Commit(t.Context(), c.Grant, &g); err != nil {
		t.Fatal(err)
	}
}

// refreshTokenOf is the refresh_token of a token response body, or "".
func refreshTokenOf(body []byte) string {
	var tok struct {
		RefreshToken string `json:"refresh_token"`
	}
	if json.Unmarshal(body, &tok) != nil {
		return ""
	}
	return tok.RefreshToken
}
