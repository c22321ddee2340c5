package oauth

import (
	"io"
	"net/http"
)

// Transport is an [http.RoundTripper] that authorizes each request with a
// bearer token from Source. When the server answers 401 it asks Source to
// [Source.ForceRefresh] the token it sent and retries the request
// once with the new token — only when the body can be replayed (no body, or
// [http.Request.GetBody] is set) and only once, so it never loops.
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
