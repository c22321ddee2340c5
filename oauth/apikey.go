package oauth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// ErrNoKeyStore is returned by [Grants.SetAPIKey] and [Grants.RemoveAPIKey]
// when the store cannot hold API keys.
var ErrNoKeyStore = errors.New("oauth: this store keeps OAuth grants only, not API keys")

// InvalidAPIKeyError reports an API key that cannot be stored. Reason is
// for a person and never holds the key.
type InvalidAPIKeyError struct {
	Reason string
}

func (e *InvalidAPIKeyError) Error() string { return "oauth: invalid API key: " + e.Reason }

// maxAPIKeyLen bounds an API key.
const maxAPIKeyLen = 4096

// CheckAPIKey reports what makes s unusable as an API key: empty, longer
// than 4096 bytes, or holding white space or control characters (a key
// pasted with its line break or a second word). The error never holds the
// key; it is an [*InvalidAPIKeyError].
func CheckAPIKey(s string) error {
	switch {
	case s == "":
		return &InvalidAPIKeyError{"the key is empty"}
	case len(s) > maxAPIKeyLen:
		return &InvalidAPIKeyError{fmt.Sprintf("the key is longer than %d bytes", maxAPIKeyLen)}
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar }) >= 0:
		return &InvalidAPIKeyError{"the key holds white space or control characters; paste the key alone"}
	}
	return nil
}

// SetAPIKey stores apiKey as key's credentials in place of its grant (see
// [KeyStore]) and forgets what this process knew of the grant: its cached
// access token and its dead or cooling-down state. It returns the grant it
// replaced, nil for none, so that the caller can revoke it. It fails with
// [ErrNoKeyStore] when the store cannot hold API keys.
func (gs *Grants) SetAPIKey(ctx context.Context, key, apiKey string) (*Grant, error) {
	ks := gs.caps.Keys
	if ks == nil {
		return nil, ErrNoKeyStore
	}
	var replaced *Grant
	err := gs.forgetting(ctx, key, func() (err error) {
		replaced, err = ks.SetAPIKey(ctx, key, apiKey)
		return err
	})
	if err != nil {
		return nil, err
	}
	gs.o.Logger.Info().Str("grant", gs.store.Describe(key)).Bool("replaced_grant", replaced != nil).Msg("oauth: API key stored")
	return replaced, nil
}

// RemoveAPIKey removes key's own API key (see [KeyStore]) and reports
// whether there was one. It fails with [ErrNoKeyStore] when the store
// cannot hold API keys.
func (gs *Grants) RemoveAPIKey(ctx context.Context, key string) (bool, error) {
	ks := gs.caps.Keys
	if ks == nil {
		return false, ErrNoKeyStore
	}
	var removed bool
	err := gs.forgetting(ctx, key, func() (err error) {
		removed, err = ks.RemoveAPIKey(ctx, key)
		return err
	})
	if err == nil && removed {
		gs.o.Logger.Info().Str("grant", gs.store.Describe(key)).Msg("oauth: API key removed")
	}
	return removed, err
}

// forgetting runs write under key's in-process refresh lock, so that no
// refresh of this process is in flight, and then clears what the process
// knew of key's grant.
func (gs *Grants) forgetting(ctx context.Context, key string, write func() error) error {
	k := gs.key(key)
	wctx, cancel := context.WithTimeout(ctx, gs.o.LockTimeout)
	defer cancel()
	select {
	case k.sem <- struct{}{}:
	case <-wctx.Done():
		return fmt.Errorf("oauth: wait for the refresh lock of %s: %w", gs.store.Describe(key), wctx.Err())
	}
	defer func() { <-k.sem }()
	if err := write(); err != nil {
		return err
	}
	k.forget()
	return nil
}
