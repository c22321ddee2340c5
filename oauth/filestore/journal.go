package filestore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/memconnect/memconnect/internal/tokenresp"
	"github.com/memconnect/memconnect/internal/wire"
	"github.com/memconnect/memconnect/oauth"
)

// The rotation journal "<config>.rotation" closes two windows no file lock
// can:
//
//   - A process killed after the server answered but before the new grant
//     reached the config file. The journal gets the raw answer the moment
//     it arrives, with one write(2) and then an fsync, before anything else
//     is done with it; the next holder of the lock parses it and finishes
//     the rotation.
//   - A lock file deleted or replaced while a holder is rotating, so that
//     a second process locks a new file. The journal is created before the
//     refresh token is spent, naming the lock file its writer holds (device
//     and inode): a holder of another lock file that finds an unfinished
//     journal waits for it to be finished instead of spending the same
//     token. One that holds the same lock file knows the writer is gone.
//
// Creating the journal is also the proof that a rotation can be kept: a
// directory where it cannot be created gets no refresh at all.

// journalHeader is the journal's first line, written before the token is
// spent.
type journalHeader struct {
	Lock string `json:"lock"` // the lock file its writer holds: "<device>:<inode>"
}

// journalEntry, the journal's second line, is one rotation waiting to reach
// the config file.
type journalEntry struct {
	Host string `json:"host"` // the grant's key
	// From is the SHA-256 of the refresh token the rotation spent: the entry
	// applies only while the file still holds that token.
	From string `json:"from"`
	// Received is when the answer arrived (unix nanoseconds); Body and
	// ContentType are the answer as the server sent it.
	Received    int64  `json:"received"`
	Body        string `json:"body"`
	ContentType string `json:"contentType"`
	// What the answer leaves out.
	ClientID      string `json:"clientId"`
	TokenEndpoint string `json:"tokenEndpoint"`
	Scope         string `json:"scope"`
	TokenType     string `json:"tokenType"`
	// The parsed grant, in the journal of earlier versions: one line, no
	// header, no body.
	AccessToken  string `json:"accessToken,omitempty"`
	RefreshToken string `json:"refreshToken,omitempty"`
	ExpiresAt    int64  `json:"expiresAt,omitempty"`
}

// journalCheckEvery spaces out the unlocked checks for a journal.
const journalCheckEvery = time.Second

// journalWait is how long an unfinished journal is taken for a rotation
// in progress: longer than any holder's whole refresh.
const journalWait = 25 * time.Second

func (s *Store) journalPath() string { return s.path + ".rotation" }

func tokenDigest(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}

// openJournal starts the journal of a rotation, naming the lock file the
// caller holds, and proves that the config file's directory takes a new
// file. Nothing is spent when it fails.
func (s *Store) openJournal(lockID string) (*os.File, error) {
	// The lock recovered any journal it found; one that is still here
	// holds a rotation that could not be applied, and must not be lost.
	if data, err := os.ReadFile(s.journalPath()); err == nil {
		if _, e := readJournal(data); e != nil {
			return nil, fmt.Errorf("oauth: %s holds a rotation that could not be applied to %s yet, so no new one was made", s.journalPath(), s.path)
		}
	}
	f, err := os.OpenFile(s.journalPath(), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("oauth: a token refresh for %s could not be kept, so none was made: %s is not writable (%w)", s.path, filepath.Dir(s.journalPath()), unwrapPath(err))
	}
	header, _ := json.Marshal(journalHeader{Lock: lockID})
	if _, err := f.Write(append(header, '\n')); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("oauth: a token refresh for %s could not be kept, so none was made: %s: %w", s.path, s.journalPath(), unwrapPath(err))
	}
	target, err := resolveTarget(s.path)
	if err == nil {
		var tmp *os.File
		if tmp, err = os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".tmp-*"); err == nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("oauth: a token refresh for %s could not be kept, so none was made: %s is not writable (%w)", s.path, filepath.Dir(target), unwrapPath(err))
	}
	return f, nil
}

// unwrapPath returns the cause of a *fs.PathError, which names the path
// already said.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// recordJournal writes the answer to the open journal f: one write(2), so
// that a killed process leaves it in the page cache, then an fsync.
func recordJournal(f *os.File, key string, prev *oauth.Grant, body []byte, contentType string) error {
	data, err := json.Marshal(&journalEntry{
		Host: key, From: tokenDigest(prev.RefreshToken),
		Received: time.Now().UnixNano(), Body: string(body), ContentType: contentType,
		ClientID: prev.ClientID, TokenEndpoint: prev.TokenEndpoint, Scope: prev.Scope, TokenType: prev.TokenType,
	})
	if err != nil {
		return err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		return err
	}
	return f.Sync()
}

// readJournal splits the journal's bytes into its header and its entry;
// either is nil when missing or unreadable.
func readJournal(data []byte) (*journalHeader, *journalEntry) {
	first, rest, _ := bytes.Cut(data, []byte("\n"))
	var h journalHeader
	hp := &h
	if json.Unmarshal(first, &h) != nil {
		hp = nil
	}
	var e journalEntry
	if json.Unmarshal(bytes.TrimSpace(rest), &e) == nil && e.Host != "" {
		return hp, &e
	}
	if json.Unmarshal(first, &e) == nil && e.Host != "" && e.AccessToken != "" {
		return nil, &e // an earlier version's journal
	}
	return hp, nil
}

func (s *Store) clearJournal() { os.Remove(s.journalPath()) }

// errRotationInProgress reports an unfinished journal of another holder.
var errRotationInProgress = errors.New("another holder is rotating")

// recoverJournal applies a rotation a dead process left in the journal, if
// the config file still holds the refresh token that rotation spent, and
// removes the journal. The caller holds the lock file lockID. A config file
// that does not parse keeps both files as they are.
//
// A journal without an answer is a rotation that went no further. When its
// writer held the same lock file as the caller, the writer is gone and the
// journal is removed. When it held another one (the lock file was deleted
// or replaced since), the writer may still be waiting for the server:
// recoverJournal returns errRotationInProgress, and the caller waits, until
// the journal is older than journalWait.
func (s *Store) recoverJournal(lockID string) error {
	fi, err := os.Stat(s.journalPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	data, err := os.ReadFile(s.journalPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	h, e := readJournal(data)
	if e == nil {
		if h != nil && h.Lock != lockID && err == nil && time.Since(fi.ModTime()) < journalWait {
			return errRotationInProgress
		}
		if h == nil && len(data) > 0 {
			s.logger.Warn().Str("path", s.journalPath()).Msg("oauth: unreadable rotation journal removed")
		}
		s.clearJournal()
		return nil
	}
	g, err := e.grant()
	if err != nil {
		s.logger.Warn().Str("path", s.journalPath()).Str("error", err.Error()).Msg("oauth: rotation journal without a grant removed")
		s.clearJournal()
		return nil
	}
	applied := false
	err = s.updateLocked(e.Host, func(root *object) (bool, error) {
		_, block := s.block(root, e.Host)
		disk, _, _, _ := scanBlock(block.compact(), &s.layout)
		if disk == nil || tokenDigest(disk.RefreshToken) != e.From {
			return false, nil // the file moved on; the entry is stale
		}
		s.putGrant(root, e.Host, g)
		applied = true
		return true, nil
	})
	var ce *ConfigError
	if errors.As(err, &ce) {
		return nil
	}
	if err != nil {
		s.logger.Error().Str("grant", s.Describe(e.Host)).Str("error", wire.Redact(err.Error(), g.AccessToken, g.RefreshToken)).
			Msg("oauth: could not apply the rotation journal; will retry")
		return nil
	}
	s.clearJournal()
	if applied {
		s.logger.Info().Str("grant", s.Describe(e.Host)).Msg("oauth: finished a rotation an interrupted process left in the journal")
	}
	return nil
}

// grant is the grant the journalled answer describes.
func (e *journalEntry) grant() (*oauth.Grant, error) {
	base := &oauth.Grant{ClientID: e.ClientID, TokenEndpoint: e.TokenEndpoint, Scope: e.Scope, TokenType: e.TokenType}
	if e.Body == "" && e.AccessToken != "" && e.RefreshToken != "" {
		g := *base
		g.AccessToken, g.RefreshToken, g.Expiry = e.AccessToken, e.RefreshToken, time.Unix(e.ExpiresAt, 0)
		return &g, nil
	}
	received := time.Unix(0, e.Received)
	tok, _, err := tokenresp.Parse([]byte(e.Body), e.ContentType, received)
	if err != nil {
		return nil, err
	}
	return base.Rotated(tok, received), nil
}

// settleJournal finishes a journalled rotation before an unlocked read. The
// common case, no journal, costs one failed stat, made at most once per
// journalCheckEvery: unlocked reads are snapshots in any case, and every
// refresh takes the lock, which always recovers a journal first. A recent
// journal without an answer is a rotation another holder is making right
// now; the reader does not wait for it.
func (s *Store) settleJournal(ctx context.Context) {
	now := time.Now().UnixNano()
	if last := s.journalChecked.Load(); last != 0 && now-last < int64(journalCheckEvery) {
		return
	}
	data, err := os.ReadFile(s.journalPath())
	if err != nil {
		s.journalChecked.Store(now)
		return
	}
	if _, e := readJournal(data); e == nil {
		if fi, err := os.Stat(s.journalPath()); err == nil && time.Since(fi.ModTime()) < journalWait {
			return // a rotation in progress
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second) // a snapshot need not wait long
	defer cancel()
	if unlock, err := s.lock(ctx); err == nil {
		unlock() // lock recovers the journal
	}
}
