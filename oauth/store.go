package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofrs/flock"
	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
)

// Store reads and writes OAuth grants in one honcho.json-style config file.
//
// Every write — a rotation, an installed grant, a removed grant — happens
// under an exclusive flock(2) on "<path>.lock" (the lock the Python agent
// takes; the data file itself is never locked, since writes replace it by
// rename) and is atomic: other hosts and unknown keys survive with their
// bytes. A file that exists but does not parse is never written over.
//
// A Store is safe for concurrent use by multiple goroutines. Share one Store
// per config path within a process: its token sources then also share the
// in-process refresh lock, the token cache and the dead-grant state.
type Store struct {
	path        string
	lockPath    string
	prefix      string
	lockTimeout time.Duration
	logger      zerolog.Logger
	now         func() time.Time
	client      *http.Client

	// Refresh timing (DESIGN.md "Refresh protocol" 3 and 5); fields so that
	// tests in this package can shorten them.
	attemptTimeout time.Duration
	retryDelay     time.Duration
	budget         time.Duration
	cooldown       time.Duration
	// writeFile is writeFileAtomic, replaceable by tests to inject failures.
	writeFile func(path string, data []byte) error

	mu    sync.Mutex // guards hosts
	hosts map[string]*hostState

	creds credCache // the last lax read of each host
	// journalChecked is when an unlocked read last found no rotation
	// journal (unix nanoseconds; 0: never).
	journalChecked atomic.Int64
}

// StoreOption configures a [Store].
type StoreOption func(*Store)

// WithAccessTokenPrefix sets the prefix that marks an OAuth access token in a
// host block's apiKey. The default is [DefaultAccessTokenPrefix]; an empty
// prefix accepts any access token (for standards servers such as Ory Hydra,
// whose tokens start with "ory_at_").
func WithAccessTokenPrefix(p string) StoreOption { return func(s *Store) { s.prefix = p } }

// WithLockTimeout bounds how long an operation waits for the locks. The
// default, 30 s, outlasts a sibling's whole refresh budget.
func WithLockTimeout(d time.Duration) StoreOption {
	return func(s *Store) {
		if d > 0 {
			s.lockTimeout = d
		}
	}
}

// WithLogger sets the logger. Tokens are never logged. The default discards.
func WithLogger(l zerolog.Logger) StoreOption { return func(s *Store) { s.logger = l } }

// WithClock sets the clock used for every expiry decision. The default is
// [time.Now].
func WithClock(now func() time.Time) StoreOption {
	return func(s *Store) {
		if now != nil {
			s.now = now
		}
	}
}

// WithHTTPClient sets the client for refresh exchanges. The default is
// [http.DefaultClient]; each attempt has its own deadline either way.
func WithHTTPClient(c *http.Client) StoreOption {
	return func(s *Store) {
		if c != nil {
			s.client = c
		}
	}
}

// NewStore returns a Store for the config file at path. The file need not
// exist yet; it is created (mode 0600) by the first write.
func NewStore(path string, opts ...StoreOption) *Store {
	s := &Store{
		path:           path,
		lockPath:       path + ".lock",
		prefix:         DefaultAccessTokenPrefix,
		lockTimeout:    30 * time.Second,
		logger:         zerolog.Nop(),
		now:            time.Now,
		client:         http.DefaultClient,
		attemptTimeout: 15 * time.Second,
		retryDelay:     2 * time.Second,
		budget:         20 * time.Second,
		cooldown:       30 * time.Second,
		writeFile:      writeFileAtomic,
		hosts:          make(map[string]*hostState),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Path returns the config file's path as given to [NewStore].
func (s *Store) Path() string { return s.path }

// hostState is the in-process state of one (path, host) grant.
type hostState struct {
	// sem is the in-process refresh lock: a channel so that waiting for it
	// honours a context.
	sem chan struct{}
	// cache is the hot path: read without a lock.
	cache atomic.Pointer[cacheEntry]

	mu       sync.Mutex // guards the fields below
	dead     *deadGrant // non-nil: the server rejected this grant
	coolTill time.Time  // no refresh attempt before this instant
	unsaved  *Grant     // a rotation that could not be written yet
	// unsavedFrom is the refresh token unsaved replaced; while the file
	// still holds it, unsaved is the grant to use.
	unsavedFrom string
}

// cacheEntry is an access token and the instant it must be refreshed.
type cacheEntry struct {
	tok       *oauth2.Token
	refreshAt time.Time
}

// deadGrant remembers a grant the server rejected, and the file as it was,
// so no network call is made until the file changes.
type deadGrant struct {
	refreshToken string
	file         fs.FileInfo
	code         string
}

func (s *Store) host(host string) *hostState {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.hosts[host]
	if !ok {
		h = &hostState{sem: make(chan struct{}, 1)}
		s.hosts[host] = h
	}
	return h
}

// Credentials returns what the file holds for host: an OAuth grant, or a
// plain API key (host block first, then the root). A missing file yields the
// zero Credentials and no error; a file that does not parse yields a
// [*ConfigError].
//
// A rotation that an interrupted process left in the journal is finished
// first (under the file lock), so the answer is never a spent grant.
func (s *Store) Credentials(host string) (Credentials, error) {
	c, _, err := s.Lookup(host)
	return c, err
}

// Lookup is [Store.Credentials] that also reports whether the file exists,
// so that a caller walking a chain of fallback files spends one stat a file.
func (s *Store) Lookup(host string) (c Credentials, exists bool, err error) {
	s.settleJournal()
	return s.credentials(host, false)
}

// credentials reads host's credentials from the file as it is. With strict
// the whole file must be valid JSON, as it must be before a refresh token is
// spent: a rotation is only safe if the file it goes into can be written.
//
// A lax read of a file that has not changed since the last one is answered
// from memory after a single stat; see [credCache].
func (s *Store) credentials(host string, strict bool) (Credentials, bool, error) {
	fi, err := os.Stat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return Credentials{}, false, nil
	}
	if err != nil {
		return Credentials{}, true, fmt.Errorf("oauth: read config: %w", err)
	}
	if !strict {
		if c, ok := s.creds.get(host, fi); ok {
			return c, true, nil
		}
	}
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return Credentials{}, false, nil
	}
	if err != nil {
		return Credentials{}, true, fmt.Errorf("oauth: read config: %w", err)
	}
	if strict {
		if _, err := parseObject(data); err != nil {
			return Credentials{}, true, &ConfigError{Path: s.path, Err: err}
		}
	}
	c, err := scanCredentials(data, host, s.prefix)
	if err != nil {
		return Credentials{}, true, &ConfigError{Path: s.path, Err: err}
	}
	s.creds.put(host, fi, c)
	return c, true, nil
}

// credCache remembers the credentials last read for each host together with
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
	c     Credentials
	valid bool // the file was settled when read
}

func (cc *credCache) get(host string, fi fs.FileInfo) (Credentials, bool) {
	cc.mu.Lock()
	e, ok := cc.m[host]
	cc.mu.Unlock()
	if !ok || !e.valid || !os.SameFile(fi, e.fi) || fi.Size() != e.fi.Size() || !fi.ModTime().Equal(e.fi.ModTime()) {
		return Credentials{}, false
	}
	c := e.c
	if c.Grant != nil {
		g := *c.Grant // callers may keep or change what they get
		c.Grant = &g
	}
	return c, true
}

func (cc *credCache) put(host string, fi fs.FileInfo, c Credentials) {
	e := credEntry{fi: fi, c: c, valid: fi.ModTime().Before(time.Now().Add(-time.Second))}
	if c.Grant != nil {
		g := *c.Grant
		e.c.Grant = &g
	}
	cc.mu.Lock()
	if cc.m == nil {
		cc.m = make(map[string]credEntry)
	}
	cc.m[host] = e
	cc.mu.Unlock()
}

// grant reads host's grant from the file, or returns [ErrNoGrant].
func (s *Store) grant(host string, strict bool) (*Grant, error) {
	c, _, err := s.credentials(host, strict)
	if err != nil {
		return nil, err
	}
	if c.Grant == nil {
		return nil, fmt.Errorf("%w (host %q in %s)", ErrNoGrant, host, s.path)
	}
	return c.Grant, nil
}

// ReauthRequired reports whether a refresh in this process found host's
// grant rejected by the server (and the file has not changed since).
func (s *Store) ReauthRequired(host string) bool {
	h := s.host(host)
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dead != nil
}

// lock takes the in-process lock of h (when h is not nil) and then the file
// lock, waiting at most the lock timeout. The returned func releases both.
func (s *Store) lock(ctx context.Context, h *hostState) (unlock func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, s.lockTimeout)
	defer cancel()
	if h != nil {
		select {
		case h.sem <- struct{}{}:
		case <-ctx.Done():
			return nil, fmt.Errorf("oauth: wait for the refresh lock of %s: %w", s.path, ctx.Err())
		}
	}
	release := func() {
		if h != nil {
			<-h.sem
		}
	}
	if err := os.MkdirAll(filepath.Dir(s.lockPath), 0o700); err != nil {
		release()
		return nil, fmt.Errorf("oauth: lock config: %w", err)
	}
	// A fresh Flock per acquisition: flock(2) locks belong to an open file
	// description, so this also excludes other Stores in this process.
	fl := flock.New(s.lockPath, flock.SetPermissions(0o600))
	ok, err := fl.TryLockContext(ctx, 10*time.Millisecond)
	if err != nil || !ok {
		fl.Close()
		release()
		if err == nil {
			err = errors.New("lock not acquired")
		}
		return nil, fmt.Errorf("oauth: lock %s: %w", s.lockPath, err)
	}
	s.recoverJournal()
	return func() {
		fl.Unlock()
		fl.Close()
		release()
	}, nil
}

// update runs fn on the parsed file under the file lock and writes the result
// atomically when fn reports a change. A file that does not parse is left as
// it is and reported as a [*ConfigError].
func (s *Store) update(ctx context.Context, fn func(root *object) (changed bool, err error)) error {
	unlock, err := s.lock(ctx, nil)
	if err != nil {
		return err
	}
	defer unlock()
	return s.updateLocked(fn)
}

// updateLocked is update for a caller that holds the file lock.
func (s *Store) updateLocked(fn func(root *object) (bool, error)) error {
	root, _, err := readObject(s.path)
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

// hostObject returns the hosts object and host's block, creating both.
func hostObject(root *object, host string) (hosts, block *object) {
	hosts = root.child("hosts")
	if hosts == nil {
		hosts = newObject()
	}
	block = hosts.child(host)
	if block == nil {
		block = newObject()
	}
	return hosts, block
}

// putHost stores block as host's block in root.
func putHost(root, hosts, block *object, host string) {
	hosts.setChild(host, block)
	root.setChild("hosts", hosts)
}

// writeGrant stores g in host's block: the access token as apiKey, the rest
// in the oauth sub-block. Every other key, in the block and elsewhere, stays.
func writeGrant(root *object, host string, g *Grant) {
	hosts, block := hostObject(root, host)
	block.setValue("apiKey", g.AccessToken)
	ob := block.child("oauth")
	if ob == nil {
		ob = newObject()
	}
	g.oauthFields(ob)
	block.setChild("oauth", ob)
	putHost(root, hosts, block, host)
}

// InstallOptions says how [Store.InstallGrant] stores a fresh grant.
type InstallOptions struct {
	ClientID      string // the OAuth client the grant was issued to
	TokenEndpoint string // where refreshes go
	// TokensOnly stores the tokens and skips merging the server's "config"
	// object into the file (the CLI asks its own questions instead).
	TokensOnly bool
}

// Installed is the result of [Store.InstallGrant].
type Installed struct {
	Grant *Grant
	// PeerName is the "peerName" of the server's config object, if any: the
	// name the person gave at consent. It is reported even when TokensOnly
	// kept the config out of the file.
	PeerName string
}

// InstallGrant stores a grant fresh from a token response (an authorization
// code or device grant) as host's grant. Unless opts.TokensOnly is set, the
// response's "config" object is deep-merged into the file's root first; that
// merge never writes an "apiKey" or "oauth" key anywhere and never touches
// another host's block. Other hosts and unknown keys survive.
func (s *Store) InstallGrant(ctx context.Context, host string, tok *oauth2.Token, opts InstallOptions) (*Installed, error) {
	if tok == nil || tok.AccessToken == "" {
		return nil, errors.New("oauth: token response has no access token")
	}
	if !strings.HasPrefix(tok.AccessToken, s.prefix) {
		return nil, fmt.Errorf("oauth: the access token does not start with the expected prefix %q; configure the access-token prefix for this server", s.prefix)
	}
	if tok.RefreshToken == "" {
		return nil, errors.New("oauth: the authorization server issued no refresh token, so the sign-in cannot be kept fresh (Ory Hydra issues one only for the offline_access scope)")
	}
	if opts.ClientID == "" || opts.TokenEndpoint == "" {
		return nil, errors.New("oauth: install grant: client id and token endpoint are required")
	}
	g := grantFromToken(tok, s.now(), &Grant{ClientID: opts.ClientID, TokenEndpoint: opts.TokenEndpoint, Scope: "write", TokenType: "Bearer"})
	cfg, _ := tok.Extra("config").(map[string]any)
	res := &Installed{Grant: g}
	if pn, ok := cfg["peerName"].(string); ok {
		res.PeerName = pn
	}
	err := s.update(ctx, func(root *object) (bool, error) {
		if cfg != nil && !opts.TokensOnly {
			if err := mergeConfig(root, cfg, host); err != nil {
				return false, err
			}
		}
		writeGrant(root, host, g)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	s.adopted(s.host(host), g)
	s.logger.Info().Str("path", s.path).Str("host", host).Time("expires_at", g.Expiry).Msg("oauth: grant installed")
	return res, nil
}

// MergeConfig deep-merges patch into the file's root under the file lock, with
// the same rules as the config merge of [Store.InstallGrant]: "apiKey" and
// "oauth" keys are dropped at every level, and under "hosts" only host's
// block may change.
func (s *Store) MergeConfig(ctx context.Context, host string, patch map[string]any) error {
	return s.update(ctx, func(root *object) (bool, error) {
		return true, mergeConfig(root, patch, host)
	})
}

// RemoveGrant removes host's grant — its apiKey and oauth keys — and keeps
// every other key of the block and the file. It returns the removed grant, so
// the caller can revoke it, or an error wrapping [ErrNoGrant] when host holds
// no grant (a plain API key is left alone).
func (s *Store) RemoveGrant(ctx context.Context, host string) (*Grant, error) {
	var removed *Grant
	err := s.update(ctx, func(root *object) (bool, error) {
		hosts, block := hostObject(root, host)
		g, _ := scanHostBlock(block.compact(), s.prefix)
		if g == nil {
			return false, fmt.Errorf("%w (host %q in %s)", ErrNoGrant, host, s.path)
		}
		block.delete("apiKey")
		block.delete("oauth")
		putHost(root, hosts, block, host)
		removed = g
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	h := s.host(host)
	h.cache.Store(nil)
	h.mu.Lock()
	h.dead, h.unsaved, h.unsavedFrom, h.coolTill = nil, nil, "", time.Time{}
	h.mu.Unlock()
	s.logger.Info().Str("path", s.path).Str("host", host).Msg("oauth: grant removed")
	return removed, nil
}

// adopted makes g the grant this process serves for h: it fills the cache and
// clears the dead, cooldown and unsaved state.
//
// While a rotation waits to be written the cache stays empty, so every call
// takes the slow path and tries the write again.
func (s *Store) adopted(h *hostState, g *Grant) *oauth2.Token {
	tok := g.Token()
	h.mu.Lock()
	h.dead, h.coolTill = nil, time.Time{}
	pending := h.unsaved != nil
	h.mu.Unlock()
	if pending {
		h.cache.Store(nil)
	} else {
		h.cache.Store(&cacheEntry{tok: tok, refreshAt: g.Expiry.Add(-RefreshSkew)})
	}
	return tok
}

// grantFromToken builds the grant a token response describes; base supplies
// what the response leaves out.
func grantFromToken(tok *oauth2.Token, now time.Time, base *Grant) *Grant {
	g := *base
	g.AccessToken = tok.AccessToken
	if tok.RefreshToken != "" {
		g.RefreshToken = tok.RefreshToken
	}
	switch {
	case tok.ExpiresIn > 0:
		g.Expiry = now.Add(time.Duration(tok.ExpiresIn) * time.Second)
	case !tok.Expiry.IsZero():
		g.Expiry = tok.Expiry
	default:
		g.Expiry = now.Add(defaultExpiresIn)
	}
	g.Expiry = g.Expiry.Truncate(time.Second)
	if sc, ok := tok.Extra("scope").(string); ok && sc != "" {
		g.Scope = sc
	}
	if tok.TokenType != "" {
		g.TokenType = tok.TokenType
	}
	return &g
}

// mergeConfig deep-merges patch into root. "apiKey" and "oauth" are dropped at
// every level; under "hosts" only host's block is merged.
func mergeConfig(root *object, patch map[string]any, host string) error {
	for _, k := range slices.Sorted(maps.Keys(patch)) {
		v := patch[k]
		if k == "apiKey" || k == "oauth" {
			continue
		}
		if k == "hosts" {
			hp, ok := v.(map[string]any)
			if !ok {
				continue // a non-object "hosts" would wipe every host block
			}
			bp, ok := hp[host].(map[string]any)
			if !ok {
				continue
			}
			hosts, block := hostObject(root, host)
			if err := mergeInto(block, bp); err != nil {
				return err
			}
			putHost(root, hosts, block, host)
			continue
		}
		if err := mergeKey(root, k, v); err != nil {
			return err
		}
	}
	return nil
}

// mergeInto deep-merges patch into o, dropping apiKey and oauth keys.
func mergeInto(o *object, patch map[string]any) error {
	for _, k := range slices.Sorted(maps.Keys(patch)) {
		v := patch[k]
		if k == "apiKey" || k == "oauth" {
			continue
		}
		if err := mergeKey(o, k, v); err != nil {
			return err
		}
	}
	return nil
}

func mergeKey(o *object, k string, v any) error {
	if sub, ok := v.(map[string]any); ok {
		if c := o.child(k); c != nil {
			if err := mergeInto(c, sub); err != nil {
				return err
			}
			o.setChild(k, c)
			return nil
		}
		c := newObject()
		if err := mergeInto(c, sub); err != nil {
			return err
		}
		o.setChild(k, c)
		return nil
	}
	raw, err := marshalValue(v)
	if err != nil {
		return fmt.Errorf("oauth: merge config key %q: %w", k, err)
	}
	o.set(k, json.RawMessage(raw))
	return nil
}
