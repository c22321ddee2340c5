package filestore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"

	"github.com/memconnect/memconnect/oauth"
)

// Lock implements [oauth.GrantStore]: it takes the flock of "<path>.lock",
// waiting at most until ctx is done (and at most the lock timeout), and
// finishes a rotation left in the journal.
func (s *Store) Lock(ctx context.Context, key string) (oauth.LockedGrant, error) {
	unlock, lockID, err := s.lockID(ctx)
	if err != nil {
		return nil, err
	}
	return &fileLock{s: s, key: key, unlock: unlock, lockID: lockID}, nil
}

func (s *Store) lock(ctx context.Context) (unlock func(), err error) {
	unlock, _, err = s.lockID(ctx)
	return unlock, err
}

// lockID takes the lock and returns the identity of the lock file it holds.
func (s *Store) lockID(ctx context.Context) (unlock func(), lockID string, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.lockTimeout)
	defer cancel()
	lockPath := s.path + ".lock"
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o700); err != nil {
		return nil, "", fmt.Errorf("oauth: lock config: %w", err)
	}
	for {
		fl, err := flockWait(ctx, lockPath)
		if err != nil {
			return nil, "", fmt.Errorf("oauth: lock %s: %w", lockPath, err)
		}
		release := func() {
			fl.Unlock()
			fl.Close()
		}
		// The lock is the file at the path now: one deleted or replaced
		// while this process waited protects nothing, since the next
		// process locks the new file.
		held, herr := fl.Stat()
		now, nerr := os.Stat(lockPath)
		if herr != nil || nerr != nil || !os.SameFile(held, now) {
			release()
			continue
		}
		id := fileID(held)
		for s.recoverJournal(id) == errRotationInProgress {
			t := time.NewTimer(20 * time.Millisecond)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				release()
				return nil, "", fmt.Errorf("oauth: wait for the rotation in %s to finish: %w", s.journalPath(), ctx.Err())
			}
		}
		return release, id, nil
	}
}

// flockWait takes an exclusive flock(2) on path, waiting in the kernel as
// the Python agent does, so that waiters take turns, until ctx is done. A
// fresh Flock per acquisition: flock locks belong to an open file
// description, so this also excludes other stores of this process.
//
// A wait that ctx ends leaves its flock call to finish in the background;
// the lock it then gets is released at once.
func flockWait(ctx context.Context, path string) (*flock.Flock, error) {
	fl := flock.New(path, flock.SetPermissions(0o600))
	if ok, err := fl.TryLock(); err != nil || ok {
		if err != nil {
			fl.Close()
			return nil, err
		}
		return fl, nil
	}
	got := make(chan error, 1)
	go func() { got <- fl.Lock() }()
	select {
	case err := <-got:
		if err != nil {
			fl.Close()
			return nil, err
		}
		return fl, nil
	case <-ctx.Done():
		go func() {
			if <-got == nil {
				fl.Unlock()
			}
			fl.Close()
		}()
		return nil, ctx.Err()
	}
}

// fileLock is the [oauth.LockedGrant] of a [Store].
type fileLock struct {
	s       *Store
	key     string
	unlock  func()
	lockID  string   // the lock file held, as fileID names it
	journal *os.File // open between Prepare and the end of the rotation
}

// Credentials implements [oauth.LockedGrant]. A file read is not
// cancelled: it ends when the read does.
func (l *fileLock) Credentials(ctx context.Context) (oauth.Credentials, error) {
	if err := ctx.Err(); err != nil {
		return oauth.Credentials{}, err
	}
	c, _, err := l.s.read(l.key, true)
	return c, err
}

// Prepare implements [oauth.LockedGrant]: it creates the journal. A done
// ctx fails it before anything is written, so nothing is spent.
func (l *fileLock) Prepare(ctx context.Context, prev *oauth.Grant) (func(body []byte, contentType string) error, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.closeJournal()
	f, err := l.s.openJournal(l.lockID)
	if err != nil {
		return nil, err
	}
	l.journal = f
	return func(body []byte, contentType string) error {
		return recordJournal(f, l.key, prev, body, contentType)
	}, nil
}

// closeJournal closes the journal of a rotation that went no further. One
// without an answer is removed; one holding an answer stays for the next
// holder.
func (l *fileLock) closeJournal() {
	if l.journal == nil {
		return
	}
	if data, err := os.ReadFile(l.journal.Name()); err == nil {
		if _, e := readJournal(data); e == nil {
			os.Remove(l.journal.Name())
		}
	}
	l.journal.Close()
	l.journal = nil
}

var _ oauth.ConfigMerger = (*fileLock)(nil)

// Commit implements [oauth.LockedGrant]. The write is not cancelled by
// ctx: a commit may carry a spent token's rotation.
func (l *fileLock) Commit(ctx context.Context, prev, next *oauth.Grant) error {
	return l.CommitWithConfig(ctx, prev, next, nil)
}

// CommitWithConfig implements [oauth.ConfigMerger]: Commit that also merges
// patch into the file, as [Store.MergeConfig] does, in the same write.
func (l *fileLock) CommitWithConfig(_ context.Context, prev, next *oauth.Grant, patch map[string]any) error {
	s := l.s
	if prev == nil && next != nil && !strings.HasPrefix(next.AccessToken, s.layout.AccessTokenPrefix) {
		return &PrefixError{Prefix: s.layout.AccessTokenPrefix, Setting: s.layout.PrefixSetting}
	}
	if prev != nil && next != nil && !strings.HasPrefix(next.AccessToken, s.layout.AccessTokenPrefix) {
		s.logger.Warn().Str("grant", s.Describe(l.key)).Str("prefix", s.layout.AccessTokenPrefix).
			Msg("oauth: refreshed access token lacks the expected prefix; stored anyway so the rotation is not lost")
	}
	err := s.updateLocked(l.key, func(root *object) (bool, error) {
		if err := l.holds(root, prev); err != nil {
			return false, err
		}
		// The merge never writes a grant member; the grant goes last
		// all the same.
		if err := s.merge(root, l.key, patch); err != nil {
			return false, err
		}
		if next == nil {
			s.removeGrant(root, l.key)
		} else {
			s.putGrant(root, l.key, next)
		}
		return true, nil
	})
	if err == nil && l.journal != nil {
		l.journal.Close()
		l.journal = nil
		s.clearJournal()
	}
	return err
}

// holds returns [oauth.ErrStaleGrant] unless root holds prev's refresh token
// for the key (anything, when prev is nil).
func (l *fileLock) holds(root *object, prev *oauth.Grant) error {
	if prev == nil {
		return nil
	}
	_, block := l.s.block(root, l.key)
	g, _, _, _ := scanBlock(block.compact(), &l.s.layout)
	if g == nil || g.RefreshToken != prev.RefreshToken {
		return oauth.ErrStaleGrant
	}
	return nil
}

// Reject implements [oauth.LockedGrant], where the layout keeps a verdict.
func (l *fileLock) Reject(_ context.Context, prev *oauth.Grant, code string) error {
	s := l.s
	if s.layout.Verdict == "" {
		return nil
	}
	return s.updateLocked(l.key, func(root *object) (bool, error) {
		if err := l.holds(root, prev); err != nil {
			return false, err
		}
		v := newObject()
		v.setValue("refreshTokenSha256", tokenDigest(prev.RefreshToken))
		v.setValue("error", code)
		s.editBlock(root, l.key, func(block *object) { block.setChild(s.layout.Verdict, v) })
		return true, nil
	})
}

func (l *fileLock) Unlock() {
	l.closeJournal()
	l.unlock()
}
