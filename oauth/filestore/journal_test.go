package filestore

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth"
)

func TestJournalRecovery(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	exp := clock.Now().Add(time.Hour)
	rotated := &oauth.Grant{AccessToken: "hch-at-next", RefreshToken: "hch-rt-next", Expiry: exp.Truncate(time.Second),
		ClientID: "hermes-agent", TokenEndpoint: "https://t/token", Scope: "write", TokenType: "Bearer"}
	credentials := func(s *testStore) (string, error) {
		c, err := s.Credentials("hermes")
		if c.Grant == nil {
			return "", err
		}
		return c.Grant.AccessToken, err
	}
	token := func(s *testStore) (string, error) {
		tok, err := s.TokenSource("hermes").Token()
		if tok == nil {
			return "", err
		}
		return tok.AccessToken, err
	}
	tests := []struct {
		name    string
		from    string // the refresh token the journalled rotation spent
		journal string // raw journal content; empty means write a real entry
		read    func(s *testStore) (string, error)
		wantAT  string
		wantRT  string
	}{
		{"applied by Credentials", "hch-rt-old", "", credentials, "hch-at-next", "hch-rt-next"},
		{"applied before a token is served", "hch-rt-old", "", token, "hch-at-next", "hch-rt-next"},
		{"stale entry dropped", "hch-rt-something-else", "", credentials, "hch-at-old", "hch-rt-old"},
		{"unreadable entry dropped", "", `{"host":`, credentials, "hch-at-old", "hch-rt-old"},
		{"earlier version's journal applied", "", `{"host":"hermes","from":"` + tokenDigest("hch-rt-old") + `","accessToken":"hch-at-next","refreshToken":"hch-rt-next","expiresAt":` +
			strconv.FormatInt(exp.Unix(), 10) + `,"clientId":"hermes-agent","tokenEndpoint":"https://t/token","scope":"write","tokenType":"Bearer"}`, token, "hch-at-next", "hch-rt-next"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "honcho.json")
			testkit.WriteFile(t, path, configWithGrant("https://t/token", "hch-at-old", "hch-rt-old", exp))
			s := fastStore(path, clock, nil)
			if tt.journal != "" {
				testkit.WriteFile(t, s.file.journalPath(), tt.journal)
				// Unfinished and older than any rotation: left by a
				// process killed mid-write.
				old := time.Now().Add(-time.Minute)
				if err := os.Chtimes(s.file.journalPath(), old, old); err != nil {
					t.Fatal(err)
				}
			} else {
				writeTestJournal(t, s.file, "hermes", tt.from, rotated, clock.Now())
			}
			at, err := tt.read(s)
			if err != nil {
				t.Fatal(err)
			}
			if at != tt.wantAT {
				t.Fatalf("access token = %q, want %q", at, tt.wantAT)
			}
			if _, err := os.Stat(s.file.journalPath()); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("journal not removed: %v", err)
			}
			v := testkit.ReadJSON(t, path)
			assertUntouched(t, v)
			if got := testkit.HostBlock(v, "hermes")["oauth"].(map[string]any)["refreshToken"]; got != tt.wantRT {
				t.Errorf("file holds %v, want %s", got, tt.wantRT)
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v", fi.Mode().Perm())
			}
		})
	}
}

// TestJournalKeptForCorruptConfig: a journal is never applied to a config
// file that does not parse; both stay as they are.
func TestJournalKeptForCorruptConfig(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "honcho.json")
	testkit.WriteFile(t, path, "{not json")
	s := newTestStore(path)
	writeTestJournal(t, s.file, "hermes", "hch-rt-old", &oauth.Grant{AccessToken: "hch-at-n", RefreshToken: "hch-rt-n", Expiry: time.Now().Add(time.Hour)}, time.Now())
	if _, err := s.Credentials("hermes"); err == nil {
		t.Fatal("a corrupt file read without error")
	}
	if b, _ := os.ReadFile(path); string(b) != "{not json" {
		t.Errorf("config changed: %q", b)
	}
	if _, err := os.Stat(s.file.journalPath()); err != nil {
		t.Errorf("journal removed although it could not be applied: %v", err)
	}
}

// writeTestJournal leaves the journal a process killed after the server's
// answer leaves: the answer that rotated the refresh token from to g's,
// received at received.
func writeTestJournal(t *testing.T, s *Store, key, from string, g *oauth.Grant, received time.Time) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"access_token": g.AccessToken, "refresh_token": g.RefreshToken,
		"expires_in": int64(g.Expiry.Sub(received) / time.Second), "token_type": g.TokenType, "scope": g.Scope})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(journalEntry{Host: key, From: tokenDigest(from), Received: received.UnixNano(), Body: string(body),
		ContentType: "application/json", ClientID: g.ClientID, TokenEndpoint: g.TokenEndpoint, Scope: g.Scope, TokenType: g.TokenType})
	if err != nil {
		t.Fatal(err)
	}
	testkit.WriteFile(t, s.journalPath(), `{"lock":"a lock file of the dead process"}`+"\n"+string(data)+"\n")
}
