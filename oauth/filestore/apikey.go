package filestore

import (
	"context"
	"fmt"
	"strings"

	"github.com/memconnect/memconnect/oauth"
)

var _ oauth.KeyStore = (*Store)(nil)

// SetAPIKey implements [oauth.KeyStore]. A key that [oauth.CheckAPIKey]
// refuses, or that starts with the layout's access-token prefix (the file
// would read it back as an OAuth access token), is an
// [*oauth.InvalidAPIKeyError].
func (s *Store) SetAPIKey(ctx context.Context, key, apiKey string) (*oauth.Grant, error) {
	if err := oauth.CheckAPIKey(apiKey); err != nil {
		return nil, err
	}
	if p := s.layout.AccessTokenPrefix; p != "" && strings.HasPrefix(apiKey, p) {
		return nil, &oauth.InvalidAPIKeyError{Reason: fmt.Sprintf("the key starts with %q, the prefix of an OAuth access token, not of an API key", p)}
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var replaced *oauth.Grant
	err = s.updateLocked(key, func(root *object) (bool, error) {
		_, block := s.block(root, key)
		replaced, _, _, _ = scanBlock(block.compact(), &s.layout)
		s.removeGrant(root, key)
		s.editBlock(root, key, func(b *object) { b.setValue(s.layout.AccessToken, apiKey) })
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return replaced, nil
}

// RemoveAPIKey implements [oauth.KeyStore].
func (s *Store) RemoveAPIKey(ctx context.Context, key string) (bool, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return false, err
	}
	defer unlock()
	removed := false
	err = s.updateLocked(key, func(root *object) (bool, error) {
		_, block := s.block(root, key)
		if g, apiKey, _, _ := scanBlock(block.compact(), &s.layout); g != nil || apiKey == "" {
			return false, nil // a grant, or no key of its own
		}
		s.editBlock(root, key, func(b *object) { b.delete(s.layout.AccessToken) })
		removed = true
		return true, nil
	})
	return removed, err
}
