package oauth

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
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

// needsScopes records that ts's grant lacks scopes and returns the error.
func (ts *Source) needsScopes(u *url.URL, scopes []string) error {
	k := ts.k
	k.mu.Lock()
	for _, s := range scopes {
		if !slices.Contains(k.needs, s) {
			k.needs = append(k.needs, s)
		}
	}
	k.mu.Unlock()
	return &InsufficientScopeError{URL: u.Scheme + "://" + u.Host + u.EscapedPath(), Scopes: scopes}
}

// NeedsScopes returns the scopes a resource asked for with 403
// insufficient_scope ([Transport]) since key's grant was installed, nil
// when none.
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
		if ch, ok := ParseChallenge(resp.Header.Values("WWW-Authenticate")); ok && ch.Error == "insufficient_scope" {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
			resp.Body.Close()
			return nil, t.Source.needsScopes(req.URL, strings.Fields(ch.Scope))
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

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}
