package filestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect/errkind"
	"github.com/memconnect/memconnect/oauth"
)

// Layout says where a JSON config file keeps its grants: one object per
// key inside a section of the root, such as
//
//	{"hosts": {"<key>": {"apiKey": "<access token>",
//	                     "oauth": {"refreshToken": "...", "expiresAt": 1767225600,
//	                               "clientId": "...", "tokenEndpoint": "https://...",
//	                               "scope": "...", "tokenType": "Bearer",
//	                               "obtainedAt": 1767222000}}}}
//
// for Section "hosts", AccessToken "apiKey" and Fields "oauth". obtainedAt
// (when the tokens were issued) is written by this package only; a grant
// without it, as the Python agent writes one, is read as well. A key's
// object holds a grant when its access token has the AccessTokenPrefix and
// its fields name a refresh token, a token endpoint and a client id;
// otherwise a non-empty access-token member is a plain API key.
type Layout struct {
	// Section is the root member with one object per key.
	Section string
	// AccessToken is the member of a key's object with the access token.
	AccessToken string
	// Fields is the member of a key's object with the rest of the grant.
	Fields string
	// AccessTokenPrefix marks an OAuth access token; "" accepts any.
	AccessTokenPrefix string
	// PrefixSetting names, for a person, the setting that changes
	// AccessTokenPrefix (such as an environment variable), so that a
	// server whose tokens lack the prefix is reported with the remedy.
	PrefixSetting string
	// DefaultScope is the scope of a grant whose fields name none.
	DefaultScope string
	// RootAPIKey makes the root's AccessToken member the API key of every
	// key whose object has none.
	RootAPIKey bool
	// Verdict is the member of a key's object that records a grant the
	// server rejected: {"refreshTokenSha256": "<hex>", "error": "<code>"},
	// a fingerprint of the refresh token and never the token. "" keeps
	// the verdict in the memory of each process only.
	Verdict string
}

// ConfigError reports a config file that exists but cannot be used: it is not
// valid JSON, or its root is not a JSON object. Such a file is never written
// over; its bytes stay exactly as they were.
type ConfigError struct {
	Path string // the file, as given to [New]
	Err  error  // what is wrong with it; never holds file content
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("oauth: config file %s cannot be used: %v; fix or move the file, it was left untouched", e.Path, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// Kind is [errkind.Internal]: the server's own file is at fault.
func (e *ConfigError) Kind() errkind.Kind { return errkind.Internal }

// Message says what to do, for a person, and names no path: a client
// must not learn the server's directory layout; the log has the path.
func (e *ConfigError) Message() string {
	return "The memory provider's config file could not be read, or it is not valid JSON. " +
		"It was left untouched: fix or move it, then try again. The server log names the file."
}

// Store is the [oauth.GrantStore] of one JSON config file, such as Honcho's
// honcho.json, laid out as its [Layout] says.
//
// Its lock is an exclusive flock(2) on the sibling file "<path>.lock", the
// lock the Python agent takes; the data file itself is never locked, since
// writes replace it by rename. Every write is atomic (a temp file in the
// same directory, fsynced, renamed over the file, the directory fsynced)
// and keeps every other key and unknown member with its bytes. A file that
// exists but does not parse is never written over.
//
// A rotation is first written to the journal "<path>.rotation" (one small
// write, the moment it is known) and then to the file; the next holder to
// take the lock finishes a rotation a killed process left in the journal.
//
// An unlocked read of a file that has not changed since the last one is
// answered from memory after a single stat.
//
// A Store is safe for concurrent use by multiple goroutines.
type Store struct {
	path        string
	layout      Layout
	logger      zerolog.Logger
	lockTimeout time.Duration
	// writeFile is writeFileAtomic, replaceable by tests to inject failures.
	writeFile func(path string, data []byte) error

	creds credCache // the last unlocked read of each key
	// journalChecked is when an unlocked read last found no rotation
	// journal (unix nanoseconds; 0: never).
	journalChecked atomic.Int64
}

var _ oauth.GrantStore = (*Store)(nil)

// New returns the store of the config file at path. The file need
// not exist yet; the first write creates it with mode 0600.
func New(path string, layout Layout, opts ...Option) *Store {
	s := &Store{
		path:        path,
		layout:      layout,
		logger:      zerolog.Nop(),
		lockTimeout: 30 * time.Second,
		writeFile:   writeFileAtomic,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Option configures [New].
type Option func(*Store)

// WithLogger sets the logger of the store's warnings (an unreadable
// journal, a finished rotation). Tokens are never logged. The default
// discards.
func WithLogger(l zerolog.Logger) Option { return func(s *Store) { s.logger = l } }

// Describe implements [oauth.GrantStore].
func (s *Store) Describe(key string) string {
	return fmt.Sprintf("%q in %s", key, s.path)
}

// Credentials implements [oauth.GrantStore]. A missing file holds nothing; a
// file that does not parse is a [*ConfigError]. A rotation that an
// interrupted process left in the journal is finished first (under the
// lock), so the answer is never a spent grant.
func (s *Store) Credentials(ctx context.Context, key string) (oauth.Credentials, error) {
	c, _, err := s.Lookup(ctx, key)
	return c, err
}

// Lookup is [Store.Credentials] that also reports whether the file
// exists, so that a caller walking a chain of fallback files spends one
// stat a file.
func (s *Store) Lookup(ctx context.Context, key string) (c oauth.Credentials, exists bool, err error) {
	s.settleJournal(ctx)
	return s.read(key, false)
}

// read reads key's credentials from the file as it is. With strict the
// whole file must be valid JSON, as it must be before a refresh token is
// spent: a rotation is only safe if the file it goes into can be written.
func (s *Store) read(key string, strict bool) (oauth.Credentials, bool, error) {
	fi, err := os.Stat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return oauth.Credentials{}, false, nil
	}
	if err != nil {
		return oauth.Credentials{}, true, fmt.Errorf("oauth: read config: %w", err)
	}
	if !strict {
		if c, ok := s.creds.get(key, fi); ok {
			return c, true, nil
		}
	}
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return oauth.Credentials{}, false, nil
	}
	if err != nil {
		return oauth.Credentials{}, true, fmt.Errorf("oauth: read config: %w", err)
	}
	if strict {
		if _, err := parseObject(data); err != nil {
			return oauth.Credentials{}, true, &ConfigError{Path: s.path, Err: err}
		}
	}
	c, err := scanCredentials(data, key, &s.layout)
	if err != nil {
		return oauth.Credentials{}, true, &ConfigError{Path: s.path, Err: err}
	}
	s.creds.put(key, fi, c)
	return c, true, nil
}

// credCache remembers the credentials last read for each key together with
// the file's identity (device and inode, size, modification time) as it was
// stat'ed before that read. Every writer of the file — this package, the
// Python agent — replaces it by rename, so a new inode marks a new file.
//
// An in-place edit keeps the inode, and file times have coarse granularity,
// so an entry is trusted only for a file that was already a second old when
// it was read (git's "racily clean" rule); a file written just now is read
// again on every call until it has settled.
type credCache struct {
	mu sync.Mutex // guards m
	m  map[string]credEntry
}

type credEntry struct {
	fi    fs.FileInfo
	c     oauth.Credentials
	valid bool // the file was settled when read
}

func (cc *credCache) get(key string, fi fs.FileInfo) (oauth.Credentials, bool) {
	cc.mu.Lock()
	e, ok := cc.m[key]
	cc.mu.Unlock()
	if !ok || !e.valid || !os.SameFile(fi, e.fi) || fi.Size() != e.fi.Size() || !fi.ModTime().Equal(e.fi.ModTime()) {
		return oauth.Credentials{}, false
	}
	return copyCredentials(e.c), true
}

func (cc *credCache) put(key string, fi fs.FileInfo, c oauth.Credentials) {
	e := credEntry{fi: fi, c: copyCredentials(c), valid: fi.ModTime().Before(time.Now().Add(-time.Second))}
	cc.mu.Lock()
	if cc.m == nil {
		cc.m = make(map[string]credEntry)
	}
	cc.m[key] = e
	cc.mu.Unlock()
}

// copyCredentials copies c's grant, so that callers may keep or change what
// they get.
func copyCredentials(c oauth.Credentials) oauth.Credentials {
	if c.Grant != nil {
		g := *c.Grant
		c.Grant = &g
	}
	return c
}

// updateLocked runs fn on the parsed file, which the caller has locked, and
// writes the result atomically when fn reports a change. A file that does
// not parse is left as it is and reported as a [*ConfigError].
//
// The path to key's grant must be unambiguous: a file that names a member
// of it twice is a [*ConfigError], since writing would keep one and lose
// the other.
func (s *Store) updateLocked(key string, fn func(root *object) (changed bool, err error)) error {
	root, _, err := readObject(s.path, func(data []byte) error { return ambiguity(data, &s.layout, key) })
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			ce.Path = s.path
		}
		return err
	}
	changed, err := fn(root)
	if err != nil || !changed {
		return err
	}
	data, err := root.marshal()
	if err != nil {
		return fmt.Errorf("oauth: encode config: %w", err)
	}
	return s.writeFile(s.path, data)
}

// block returns the section object and key's object in root, each new when
// absent.
func (s *Store) block(root *object, key string) (section, block *object) {
	section = root.childOrNew(s.layout.Section)
	return section, section.childOrNew(key)
}

// putGrant stores g in key's object: the access token in the layout's
// AccessToken member, the rest in its Fields object. Every other member,
// there and elsewhere, stays.
func (s *Store) putGrant(root *object, key string, g *oauth.Grant) {
	section, block := s.block(root, key)
	if s.layout.Verdict != "" {
		block.delete(s.layout.Verdict) // a verdict on the grant this one replaces
	}
	fields := block.childOrNew(s.layout.Fields)
	block.setValue(s.layout.AccessToken, g.AccessToken)
	if g.RefreshToken != "" {
		fields.setValue("refreshToken", g.RefreshToken)
	} else {
		fields.delete("refreshToken") // a grant that ends with its access token
	}
	fields.setValue("expiresAt", g.Expiry.Unix())
	if !g.Obtained.IsZero() {
		fields.setValue("obtainedAt", g.Obtained.Unix())
	} else {
		fields.delete("obtainedAt")
	}
	fields.setValue("clientId", g.ClientID)
	fields.setValue("tokenEndpoint", g.TokenEndpoint)
	fields.setValue("scope", g.Scope)
	fields.setValue("tokenType", g.TokenType)
	if g.Resource != "" {
		fields.setValue("resource", g.Resource)
	} else {
		fields.delete("resource")
	}
	block.setChild(s.layout.Fields, fields)
	section.setChild(key, block)
	root.setChild(s.layout.Section, section)
}

// removeGrant removes key's access token and grant fields, keeping every
// other member.
func (s *Store) removeGrant(root *object, key string) {
	s.editBlock(root, key, func(block *object) {
		block.delete(s.layout.AccessToken)
		block.delete(s.layout.Fields)
		if s.layout.Verdict != "" {
			block.delete(s.layout.Verdict)
		}
	})
}

// editBlock runs edit on key's object in root and puts it back, making the
// section and the object when absent.
func (s *Store) editBlock(root *object, key string, edit func(block *object)) {
	section, block := s.block(root, key)
	edit(block)
	section.setChild(key, block)
	root.setChild(s.layout.Section, section)
}

// fileID names a file by device and inode, "" where the system does not
// say.
func fileID(fi fs.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	}
	return ""
}
