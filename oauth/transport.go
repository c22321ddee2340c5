package oauth

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/memconnect/memconnect/internal/scopes"
	"github.com/memconnect/memconnect/internal/wire"
	"github.com/memconnect/memconnect/oauth/authserver"
)

// InsufficientScopeError reports a request the resource refused because
// the grant lacks scopes (403 insufficient_scope, RFC 6750 section 3.1):
// a new sign-in that asks for them is needed.
type InsufficientScopeError struct {
	URL    string   // the request's URL, without query
	Scopes []string // the scopes the resource asked for; may be empty
}

func (e *InsufficientScopeError) Error() string {
	if len(e.Scopes) == 0 {
		return fmt.Sprintf("oauth: %s needs a scope the grant lacks; sign in again", e.URL)
	}
	return fmt.Sprintf("oauth: %s needs the scopes %q, which the grant lacks; sign in again", e.URL, strings.Join(e.Scopes, " "))
}

// Bounds of a step-up: what one grant may be asked to add. A server that
// asks for more is not followed (the 403 is returned as it came).
const (
	// MaxNeededScopes is how many scopes a grant may be asked for in all
	// ([Grants.NeedsScopes]).
	MaxNeededScopes = 32
	// MaxScopeLen is the longest scope accepted from a challenge.
	MaxScopeLen = 128
)

// stepUpScopes returns the scopes of an insufficient_scope challenge when
// they are within the bounds: at most [MaxNeededScopes], each a scope-token
// of RFC 6749 section 3.3 of at most [MaxScopeLen] bytes. It reports why
// not otherwise.
func stepUpScopes(scope string) ([]string, error) {
	if len(scope) > MaxNeededScopes*(MaxScopeLen+1) {
		return nil, fmt.Errorf("the challenge's scope is %d bytes long", len(scope))
	}
	list := strings.Fields(scope)
	if len(list) > MaxNeededScopes {
		return nil, fmt.Errorf("the challenge asks for %d scopes, more than %d", len(list), MaxNeededScopes)
	}
	for _, s := range list {
		if len(s) > MaxScopeLen || !scopes.Valid(s) {
			return nil, fmt.Errorf("the challenge's scope %s is not a scope of at most %d characters (RFC 6749 section 3.3)", strconv.Quote(wire.Printable(s, 40)), MaxScopeLen)
		}
	}
	return list, nil
}

// needsScopes records that ts's grant lacks scopes and returns the error.
// What a grant is asked for stays within [MaxNeededScopes]: a challenge that
// would grow it beyond is refused with nil, and recorded nowhere.
func (ts *Source) needsScopes(u *url.URL, add []string) *InsufficientScopeError {
	k := ts.k
	k.mu.Lock()
	merged := scopes.Union(k.needs, add)
	if len(merged) > MaxNeededScopes {
		k.mu.Unlock()
		return nil
	}
	k.needs = merged
	k.mu.Unlock()
	if ss := ts.gs.caps.State; ss != nil {
		ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
		if err := ss.RecordNeeds(ctx, ts.key, merged); err != nil {
			ts.gs.o.Logger.Warn().Str("grant", ts.gs.store.Describe(ts.key)).Str("error", err.Error()).Msg("oauth: the scopes asked for were not recorded for other instances")
		}
		cancel()
	}
	return &InsufficientScopeError{URL: u.Scheme + "://" + u.Host + u.EscapedPath(), Scopes: add}
}

// NeedsScopes returns the scopes a resource asked for with 403
// insufficient_scope ([Transport]) since key's grant was installed, nil
// when none; never more than [MaxNeededScopes].
func (gs *Grants) NeedsScopes(key string) []string {
	k := gs.key(key)
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.needs)
}

// Transport is an [http.RoundTripper] that authorizes each request with a
// bearer token from Source. When the server answers 401 it asks Source to
// [Source.ForceRefresh] the token it sent and retries the request
// once with the new token — only when the body can be replayed (no body, or
// [http.Request.GetBody] is set) and only once, so it never loops.
//
// A 403 whose Bearer challenge says insufficient_scope (RFC 6750 section
// 3.1) is returned as an [*InsufficientScopeError] with the scopes the
// server asks for, which [Grants.NeedsScopes] then reports until a new
// grant is installed: the grant needs a new sign-in with them (step-up).
//
// Transport is safe for concurrent use by multiple goroutines.
type Transport struct {
	Source *Source
	// Base is the underlying transport; nil means [http.DefaultTransport].
	Base http.RoundTripper
}

var _ http.RoundTripper = (*Transport)(nil)

// RoundTrip implements [http.RoundTripper].
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	closeBody := func() {
		if req.Body != nil {
			req.Body.Close()
		}
	}
	tok, err := t.Source.TokenContext(req.Context())
	if err != nil {
		closeBody()
		return nil, err
	}
	first := req.Clone(req.Context())
	tok.SetAuthHeader(first)
	resp, err := t.base().RoundTrip(first)
	if err == nil && resp.StatusCode == http.StatusForbidden {
		if ch, ok := authserver.ParseChallenge(resp.Header.Values("WWW-Authenticate")); ok && ch.Error == "insufficient_scope" {
			if serr := t.stepUp(req.URL, ch.Scope); serr != nil {
				io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
				resp.Body.Close()
				return nil, serr
			}
		}
	}
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	if !replayable {
		return resp, nil
	}
	fresh, ferr := t.Source.ForceRefresh(req.Context(), tok.AccessToken)
	if ferr != nil || fresh.AccessToken == tok.AccessToken {
		return resp, nil
	}
	second := req.Clone(req.Context())
	if req.GetBody != nil {
		body, berr := req.GetBody()
		if berr != nil {
			return resp, nil
		}
		second.Body = body
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	fresh.SetAuthHeader(second)
	return t.base().RoundTrip(second)
}

// stepUp records the scopes of an insufficient_scope challenge for u and
// returns the error to give the caller. A challenge beyond the bounds is
// logged (its scope cut short) and answered nil: the 403 is then returned
// as any other.
func (t *Transport) stepUp(u *url.URL, scope string) error {
	scopes, err := stepUpScopes(scope)
	if err == nil {
		if serr := t.Source.needsScopes(u, scopes); serr != nil {
			return serr
		}
		err = fmt.Errorf("the grant would be asked for more than %d scopes", MaxNeededScopes)
	}
	ts := t.Source
	ts.gs.o.Logger.Warn().Str("grant", ts.gs.store.Describe(ts.key)).Str("url", u.Scheme+"://"+u.Host+u.EscapedPath()).
		Str("scope", wire.Printable(scope, 200)).Str("reason", err.Error()).Msg("oauth: an insufficient_scope challenge beyond the bounds is answered as a plain 403")
	return nil
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}
