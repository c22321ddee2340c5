package pgstore

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// spill keeps, on the local machine, a token endpoint's answer that the
// database could not take (it went away while the answer was in flight),
// sealed with the store's key, until a holder of the grant's lease commits
// it: this process on a later call, or the next process that leases the
// grant on this machine.
//
// One file a rotation: "<key digest>-<from digest>.spill", mode 0600,
// written atomically (a temp file, fsync, rename, fsync of the directory).
type spill struct {
	dir  string
	seal *sealer
}

// spilled is one answer kept in a spill file.
type spilled struct {
	Key         string    `json:"key"`
	From        string    `json:"from"` // the refresh digest the answer rotates from
	Body        string    `json:"body"`
	ContentType string    `json:"content_type"`
	Received    time.Time `json:"received"`

	path string
}

func shortDigest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:12])
}

func (sp *spill) prefix(key string) string { return shortDigest(key) + "-" }

func (sp *spill) path(key, from string) string {
	return filepath.Join(sp.dir, sp.prefix(key)+shortDigest(from)+".spill")
}

// check proves that the directory takes a new file, so that an answer can
// be kept when the database cannot take it. Nothing is spent when it fails.
func (sp *spill) check() error {
	if err := os.MkdirAll(sp.dir, 0o700); err != nil {
		return fmt.Errorf("pgstore: a token refresh could not be kept locally, so none was made: %w", err)
	}
	f, err := os.CreateTemp(sp.dir, ".check-*")
	if err != nil {
		return fmt.Errorf("pgstore: a token refresh could not be kept locally, so none was made: %w", err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// put keeps an answer durably.
func (sp *spill) put(e spilled) error {
	plain, err := json.Marshal(e)
	if err != nil {
		return err
	}
	sealed := sp.seal.seal(string(plain), aad("spill", e.Key, "answer"))
	target := sp.path(e.Key, e.From)
	f, err := os.CreateTemp(sp.dir, ".spill-*")
	if err != nil {
		return fmt.Errorf("pgstore: keep the answer: %w", err)
	}
	defer os.Remove(f.Name()) // after the rename, a no-op
	if _, err = f.Write(sealed); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), target)
	}
	if err != nil {
		return fmt.Errorf("pgstore: keep the answer: %w", err)
	}
	if d, err := os.Open(sp.dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// list returns the answers kept for key. A file that does not open (sealed
// with a key this store lacks) is left alone, unlisted.
func (sp *spill) list(key string) ([]spilled, error) {
	entries, err := os.ReadDir(sp.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: read %s: %w", sp.dir, err)
	}
	prefix := sp.prefix(key)
	var out []spilled
	for _, de := range entries {
		name := de.Name()
		if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, ".spill") {
			continue
		}
		path := filepath.Join(sp.dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		e, ok := sp.open(key, data)
		if !ok {
			continue
		}
		e.path = path
		out = append(out, e)
	}
	return out, nil
}

// open opens a spill file of key: sealed for key, and naming it.
func (sp *spill) open(key string, data []byte) (spilled, bool) {
	plain, err := sp.seal.open(data, aad("spill", key, "answer"))
	if err != nil {
		return spilled{}, false
	}
	var e spilled
	if json.Unmarshal([]byte(plain), &e) != nil || e.Key != key || e.From == "" {
		return spilled{}, false
	}
	return e, true
}

// forget deletes the file of key's answer that rotates from the refresh
// digest from, if there is one: its rotation is committed.
func (sp *spill) forget(key, from string) {
	os.Remove(sp.path(key, from))
}

// remove deletes the file of one kept answer.
func (sp *spill) remove(e spilled) {
	if e.path != "" {
		os.Remove(e.path)
	}
}
