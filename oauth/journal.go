package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"time"
)

// The rotation journal narrows the one window no lock can close: the server
// has rotated the refresh token, and the process dies before the new grant
// reaches the config file. The atomic write of the config file needs an
// fsync, which can take milliseconds; the journal is a single small write
// made the moment the token response is parsed, so a process killed during
// the fsync still leaves the rotation behind. The next process to take the
// file lock finishes the write.
//
// The journal is "<config>.rotation", mode 0600, beside the config file. It
// is not fsynced: it guards against a killed process, not a lost machine,
// where the atomic write's fsync is what counts.

// journalEntry is one rotation waiting to reach the config file.
type journalEntry struct {
	Host string `json:"host"` // the grant's key
	// From is the SHA-256 of the refresh token the rotation spent: the entry
	// applies only while the file still holds that token.
	From          string `json:"from"`
	AccessToken   string `json:"accessToken"`
	RefreshToken  string `json:"refreshToken"`
	ExpiresAt     int64  `json:"expiresAt"`
	ClientID      string `json:"clientId"`
	TokenEndpoint string `json:"tokenEndpoint"`
	Scope         string `json:"scope"`
	TokenType     string `json:"tokenType"`
}

// journalCheckEvery spaces out the unlocked checks for a journal.
const journalCheckEvery = time.Second

func (s *FileStore) journalPath() string { return s.path + ".rotation" }

func tokenDigest(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}

// writeJournal records that key's grant moved from the refresh token from to
// g. The caller holds the file lock.
func (s *FileStore) writeJournal(key, from string, g *Grant) error {
	data, err := json.Marshal(journalEntry{
		Host: key, From: tokenDigest(from),
		AccessToken: g.AccessToken, RefreshToken: g.RefreshToken, ExpiresAt: g.Expiry.Unix(),
		ClientID: g.ClientID, TokenEndpoint: g.TokenEndpoint, Scope: g.Scope, TokenType: g.TokenType,
	})
	if err != nil {
		return err
	}
	return os.WriteFile(s.journalPath(), data, 0o600)
}

func (s *FileStore) clearJournal() { os.Remove(s.journalPath()) }

// recoverJournal applies a rotation a dead process left in the journal, if
// the config file still holds the refresh token that rotation spent, and
// removes the journal. The caller holds the file lock. A config file that
// does not parse keeps both files as they are.
func (s *FileStore) recoverJournal() {
	data, err := os.ReadFile(s.journalPath())
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var e journalEntry
	if err != nil || json.Unmarshal(data, &e) != nil || e.Host == "" || e.AccessToken == "" || e.RefreshToken == "" {
		s.logger.Warn().Str("path", s.journalPath()).Msg("oauth: unreadable rotation journal removed")
		s.clearJournal()
		return
	}
	g := &Grant{
		AccessToken: e.AccessToken, RefreshToken: e.RefreshToken, Expiry: time.Unix(e.ExpiresAt, 0),
		ClientID: e.ClientID, TokenEndpoint: e.TokenEndpoint, Scope: e.Scope, TokenType: e.TokenType,
	}
	applied := false
	err = s.updateLocked(func(root *object) (bool, error) {
		_, block := s.block(root, e.Host)
		disk, _ := scanBlock(block.compact(), &s.layout)
		if disk == nil || tokenDigest(disk.RefreshToken) != e.From {
			return false, nil // the file moved on; the entry is stale
		}
		s.putGrant(root, e.Host, g)
		applied = true
		return true, nil
	})
	var ce *ConfigError
	if errors.As(err, &ce) {
		return
	}
	if err != nil {
		s.logger.Error().Str("grant", s.Describe(e.Host)).Str("error", redact(err.Error(), g)).
			Msg("oauth: could not apply the rotation journal; will retry")
		return
	}
	s.clearJournal()
	if applied {
		s.logger.Info().Str("grant", s.Describe(e.Host)).Msg("oauth: finished a rotation an interrupted process left in the journal")
	}
}

// settleJournal finishes a journalled rotation before an unlocked read. The
// common case, no journal, costs one failed stat, made at most once per
// journalCheckEvery: unlocked reads are snapshots in any case, and every
// refresh takes the lock, which always recovers a journal first.
func (s *FileStore) settleJournal(ctx context.Context) {
	now := time.Now().UnixNano()
	if last := s.journalChecked.Load(); last != 0 && now-last < int64(journalCheckEvery) {
		return
	}
	if _, err := os.Lstat(s.journalPath()); err != nil {
		s.journalChecked.Store(now)
		return
	}
	if unlock, err := s.lock(ctx); err == nil {
		unlock() // lock recovers the journal
	}
}
