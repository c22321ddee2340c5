package oauth_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/storetest"
)

// memStore is a store in memory that implements the whole contract: a
// [oauth.GrantStore] and every optional capability (see
// [oauth.Capabilities]), its locks a [oauth.SpendAbandoner],
// [oauth.FinalCommitter] and [oauth.ConfigMerger]. It shows a store
// author what each method must do; it is shared by the goroutines of one
// process only.
type memStore struct {
	mu       sync.Mutex
	locks    map[string]chan struct{} // a key's lock: held while it has a value
	rows     map[string]*memRow
	clients  map[string][]byte // by issuer and redirect URIs
	refusals map[string]bool   // issuers that refused a client metadata document
	watchers map[string][]chan struct{}

	finalCommits int           // CommitAndUnlock calls, for the tests
	used         chan struct{} // when not nil, told of each RecordUse
}

// memRow is what the store holds for one key.
type memRow struct {
	grant    *oauth.Grant
	rejected string // the verdict on grant's refresh token; "" for none
	apiKey   string
	config   map[string]any // the config document ConfigMerger merges into
	shared   oauth.SharedState
	// journal is the answer a holder recorded for the spend of the
	// refresh token journalFrom; the next lock commits it.
	journal     []byte
	journalFrom string
	claimOwner  string
	claimUntil  time.Time
	spendFrom   string   // a spend in flight, recorded by Prepare,
	spendBy     *memLock // by this holder
}

var (
	_ oauth.KeyStore        = (*memStore)(nil)
	_ oauth.StateStore      = (*memStore)(nil)
	_ oauth.DueClaimer      = (*memStore)(nil)
	_ oauth.UseLister       = (*memStore)(nil)
	_ oauth.GrantLister     = (*memStore)(nil)
	_ oauth.ConnectionPager = (*memStore)(nil)
	_ oauth.GrantWatcher    = (*memStore)(nil)
	_ oauth.ClientStore     = (*memStore)(nil)
	_ oauth.SpendAbandoner  = (*memLock)(nil)
	_ oauth.FinalCommitter  = (*memLock)(nil)
	_ oauth.ConfigMerger    = (*memLock)(nil)
)

func newMemStore() *memStore {
	return &memStore{
		locks:    make(map[string]chan struct{}),
		rows:     make(map[string]*memRow),
		clients:  make(map[string][]byte),
		refusals: make(map[string]bool),
		watchers: make(map[string][]chan struct{}),
	}
}

// row returns key's row, made when there is none; s.mu is held.
func (s *memStore) row(key string) *memRow {
	r, ok := s.rows[key]
	if !ok {
		r = &memRow{}
		s.rows[key] = r
	}
	return r
}

// credentials is what r holds, as a copy; s.mu is held.
func (r *memRow) credentials() oauth.Credentials {
	c := oauth.Credentials{APIKey: r.apiKey, Shared: &oauth.SharedState{}}
	if r.apiKey != "" {
		c.APIKeySource = "store"
	}
	if r.grant != nil {
		g := *r.grant
		c.Grant = &g
		c.Rejected = r.rejected
	}
	*c.Shared = r.shared
	c.Shared.NeedsScopes = slices.Clone(r.shared.NeedsScopes)
	return c
}

// changed tells key's watchers; s.mu is held.
func (s *memStore) changed(key string) {
	for _, ch := range s.watchers[key] {
		select {
		case ch <- struct{}{}:
		default: // one pending notice is enough
		}
	}
}

func (s *memStore) Describe(key string) string { return fmt.Sprintf("%q in memory", key) }

func (s *memStore) Credentials(ctx context.Context, key string) (oauth.Credentials, error) {
	if err := ctx.Err(); err != nil {
		return oauth.Credentials{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.rows[key]; ok {
		return r.credentials(), nil
	}
	return oauth.Credentials{}, nil
}

// Lock waits for key's lock until ctx is done, then commits an answer a
// holder recorded and did not commit.
func (s *memStore) Lock(ctx context.Context, key string) (oauth.LockedGrant, error) {
	s.mu.Lock()
	ch, ok := s.locks[key]
	if !ok {
		ch = make(chan struct{}, 1)
		s.locks[key] = ch
	}
	s.mu.Unlock()
	select {
	case ch <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("memstore: lock %s: %w", s.Describe(key), ctx.Err())
	}
	l := &memLock{s: s, key: key, held: ch}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.row(key); r.journal != nil {
		if r.grant != nil && r.grant.RefreshToken == r.journalFrom {
			var t struct {
				AccessToken  string `json:"access_token"`
				RefreshToken string `json:"refresh_token"`
				ExpiresIn    int64  `json:"expires_in"`
				TokenType    string `json:"token_type"`
			}
			if err := json.Unmarshal(r.journal, &t); err == nil && t.AccessToken != "" {
				tok := &oauth2.Token{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: t.TokenType, ExpiresIn: t.ExpiresIn}
				r.grant, r.rejected = r.grant.Rotated(tok, time.Now()), ""
				s.changed(key)
			}
		}
		r.journal, r.journalFrom = nil, ""
	}
	return l, nil
}

// memLock is the [oauth.LockedGrant] of a memStore.
type memLock struct {
	s        *memStore
	key      string
	held     chan struct{}
	released bool
}

func (l *memLock) Credentials(ctx context.Context) (oauth.Credentials, error) {
	return l.s.Credentials(ctx, l.key)
}

// Prepare records the spend of prev's refresh token; it refuses one
// another holder began and did not end.
func (l *memLock) Prepare(ctx context.Context, prev *oauth.Grant) (func(body []byte, contentType string) error, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.row(l.key)
	if r.spendFrom == prev.RefreshToken && r.spendBy != l {
		return nil, fmt.Errorf("%w: %s", oauth.ErrRotationInFlight, s.Describe(l.key))
	}
	r.spendFrom, r.spendBy = prev.RefreshToken, l
	return func(body []byte, _ string) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		r.journal, r.journalFrom = slices.Clone(body), prev.RefreshToken
		return nil
	}, nil
}

// Abandon withdraws the record of a spend that did not happen.
func (l *memLock) Abandon(_ context.Context, prev *oauth.Grant) error {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if r := l.s.row(l.key); r.spendFrom == prev.RefreshToken && r.journal == nil {
		r.spendFrom, r.spendBy = "", nil
	}
	return nil
}

// Commit is a compare-and-swap on prev's refresh token. Like a database
// driver, it honours ctx: package oauth passes one without the caller's
// cancellation after a spend.
func (l *memLock) Commit(ctx context.Context, prev, next *oauth.Grant) error {
	return l.CommitWithConfig(ctx, prev, next, nil)
}

func (l *memLock) CommitWithConfig(ctx context.Context, prev, next *oauth.Grant, patch map[string]any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.row(l.key)
	if prev != nil && (r.grant == nil || r.grant.RefreshToken != prev.RefreshToken) {
		return fmt.Errorf("%w: %s", oauth.ErrStaleGrant, s.Describe(l.key))
	}
	if next == nil {
		r.grant = nil
	} else {
		g := *next
		r.grant, r.apiKey = &g, ""
		if prev != nil {
			r.shared.Health.LastRefresh = time.Now()
		}
	}
	if patch != nil {
		if r.config == nil {
			r.config = make(map[string]any)
		}
		maps.Copy(r.config, patch)
	}
	r.rejected, r.journal, r.journalFrom, r.spendFrom, r.spendBy = "", nil, "", "", nil
	r.claimOwner, r.claimUntil = "", time.Time{}
	s.changed(l.key)
	return nil
}

func (l *memLock) CommitAndUnlock(ctx context.Context, prev, next *oauth.Grant) error {
	if err := l.Commit(ctx, prev, next); err != nil {
		return err
	}
	l.s.mu.Lock()
	l.s.finalCommits++
	l.s.mu.Unlock()
	l.Unlock()
	return nil
}

func (l *memLock) Reject(ctx context.Context, prev *oauth.Grant, code string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if r := l.s.row(l.key); r.grant != nil && r.grant.RefreshToken == prev.RefreshToken {
		r.rejected = code
		l.s.changed(l.key)
	}
	return nil
}

// Unlock releases the lock. A spend without a recorded answer ends with
// it: in one process, a holder that unlocks is not at the server.
func (l *memLock) Unlock() {
	if l.released {
		return
	}
	l.released = true
	l.s.mu.Lock()
	if r := l.s.row(l.key); r.spendBy == l && r.journal == nil {
		r.spendFrom, r.spendBy = "", nil
	}
	l.s.mu.Unlock()
	<-l.held
}

// underLock runs fn on key's row under its lock.
func (s *memStore) underLock(ctx context.Context, key string, fn func(r *memRow)) error {
	lg, err := s.Lock(ctx, key)
	if err != nil {
		return err
	}
	defer lg.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s.row(key))
	s.changed(key)
	return nil
}

func (s *memStore) SetAPIKey(ctx context.Context, key, apiKey string) (*oauth.Grant, error) {
	if err := oauth.CheckAPIKey(apiKey); err != nil {
		return nil, err
	}
	var replaced *oauth.Grant
	err := s.underLock(ctx, key, func(r *memRow) {
		replaced, r.grant, r.rejected, r.apiKey = r.grant, nil, "", apiKey
	})
	return replaced, err
}

func (s *memStore) RemoveAPIKey(ctx context.Context, key string) (bool, error) {
	removed := false
	err := s.underLock(ctx, key, func(r *memRow) {
		removed, r.apiKey = r.apiKey != "", ""
	})
	return removed, err
}

// record changes key's shared state.
func (s *memStore) record(key string, fn func(sh *oauth.SharedState)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.row(key).shared)
	return nil
}

func (s *memStore) RecordHealth(_ context.Context, key string, h oauth.Health) error {
	return s.record(key, func(sh *oauth.SharedState) { sh.Health = h })
}

func (s *memStore) RecordNeeds(_ context.Context, key string, scopes []string) error {
	return s.record(key, func(sh *oauth.SharedState) { sh.NeedsScopes = slices.Clone(scopes) })
}

func (s *memStore) RecordUse(_ context.Context, key string, at time.Time) error {
	err := s.record(key, func(sh *oauth.SharedState) { sh.LastUsed = at.Truncate(time.Minute) })
	if s.used != nil {
		s.used <- struct{}{}
	}
	return err
}

func (s *memStore) UsedSince(_ context.Context, since time.Time) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k, r := range s.rows {
		if !r.shared.LastUsed.IsZero() && !r.shared.LastUsed.Before(since.Truncate(time.Minute)) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

func (s *memStore) ClaimDue(_ context.Context, owner string, obtainedBefore, expiresBefore time.Time, hold time.Duration, limit int) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	var due []string
	for k, r := range s.rows {
		g := r.grant
		if g == nil || g.RefreshToken == "" || r.rejected != "" || now.Before(r.claimUntil) {
			continue
		}
		if g.ObtainedOrEstimate().Before(obtainedBefore) || !expiresBefore.IsZero() && g.Expiry.Before(expiresBefore) {
			due = append(due, k)
		}
	}
	slices.SortFunc(due, func(a, b string) int {
		return s.rows[a].grant.ObtainedOrEstimate().Compare(s.rows[b].grant.ObtainedOrEstimate())
	})
	due = due[:min(limit, len(due))]
	for _, k := range due {
		s.rows[k].claimOwner, s.rows[k].claimUntil = owner, now.Add(hold)
	}
	return due, nil
}

// withCredentials returns the keys holding a grant or an API key, in the order
// of a listing (profile, then provider); s.mu is held.
func (s *memStore) withCredentials() []connid.ID {
	var ids []connid.ID
	for k, r := range s.rows {
		if id, err := connid.Parse(k); err == nil && (r.grant != nil || r.apiKey != "") {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, connid.Compare)
	return ids
}

func (s *memStore) GrantKeys(_ context.Context, after string, limit int) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k, r := range s.rows {
		if r.grant != nil && k > after {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys[:min(limit, len(keys))], nil
}

func (s *memStore) ConnectionPage(_ context.Context, profile, provider, after string, limit int, each func(key string, c oauth.Credentials)) error {
	var from connid.ID
	if after != "" {
		var err error
		if from, err = connid.ParseCursor(after); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.withCredentials() {
		if limit == 0 {
			break
		}
		if after != "" && connid.Compare(id, from) <= 0 || cmp.Or(profile, id.Profile) != id.Profile || cmp.Or(provider, id.Provider) != id.Provider {
			continue
		}
		each(id.String(), s.rows[id.String()].credentials())
		limit--
	}
	return nil
}

func (s *memStore) Watch(_ context.Context, key string) (<-chan struct{}, func(), error) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.watchers[key] = append(s.watchers[key], ch)
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.watchers[key] = slices.DeleteFunc(s.watchers[key], func(c chan struct{}) bool { return c == ch })
	}, nil
}

func (s *memStore) Client(_ context.Context, issuer, redirectURIs string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.clients[issuer+" "+redirectURIs]), nil
}

func (s *memStore) SaveClient(_ context.Context, issuer, redirectURIs string, reg []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[issuer+" "+redirectURIs] = slices.Clone(reg)
	return nil
}

func (s *memStore) ForgetClient(_ context.Context, issuer, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, reg := range s.clients {
		var c struct {
			ClientID string `json:"client_id"`
		}
		if strings.HasPrefix(k, issuer+" ") && json.Unmarshal(reg, &c) == nil && c.ClientID == clientID {
			delete(s.clients, k)
		}
	}
	return nil
}

func (s *memStore) DocumentRefused(_ context.Context, issuer string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refusals[issuer], nil
}

func (s *memStore) RefuseDocument(_ context.Context, issuer string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refusals[issuer] = true
	return nil
}

func TestMemStoreContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) oauth.GrantStore { return newMemStore() })
}
