package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/memconnect/memconnect/errkind"
	"github.com/memconnect/memconnect/internal/outbound"
	"github.com/memconnect/memconnect/internal/wire"
)

// ErrNoRevocationEndpoint is returned by [Revoke] when the server has no
// revocation endpoint to call.
var ErrNoRevocationEndpoint = errors.New("oauth: no revocation endpoint")

// RevokeError is a revocation request the server refused (RFC 7009
// section 2.2.1). It never holds the token: a description that quotes it is
// redacted.
type RevokeError struct {
	StatusCode       int
	ErrorCode        string // RFC 6749 section 5.2 "error", e.g. unsupported_token_type
	ErrorDescription string
}

// Kind is [errkind.Upstream]; Message is "": the server's words are for
// the log.
func (e *RevokeError) Kind() errkind.Kind { return errkind.Upstream }

// Message is "", the kind's general words.
func (e *RevokeError) Message() string { return "" }

// Error returns the status, error code and (redacted) description.
func (e *RevokeError) Error() string {
	s := fmt.Sprintf("oauth: revocation failed: %d", e.StatusCode)
	if e.ErrorCode != "" {
		s += " " + e.ErrorCode
	}
	if e.ErrorDescription != "" {
		s += ": " + e.ErrorDescription
	}
	return s
}

// Revoke asks the authorization server to revoke token (RFC 7009
// section 2.1): a form POST of token, token_type_hint ("refresh_token" or
// "access_token"; optional) and client_id, as a public client
// authenticates. Revoking a refresh token revokes the grant's access tokens
// too. A 2xx answer is success — the server answers 200 also for a token it
// does not know (section 2.2). Failures are a [*RevokeError] or a transport
// error; neither holds the token. Every failure to reach the server, a
// refusal included, is an [*UpstreamError] (a refusal wraps a
// [*RevokeError]). The request has [StepTimeout] (a shorter deadline of
// ctx wins) and follows no redirect: the token goes to endpoint only. c
// nil means [http.DefaultClient].
func Revoke(ctx context.Context, c *http.Client, endpoint, clientID, token, tokenTypeHint string) error {
	if endpoint == "" {
		return ErrNoRevocationEndpoint
	}
	if token == "" {
		return errors.New("oauth: revoke: no token")
	}
	c = outbound.Secret(c)
	ctx, cancel := outbound.Step(ctx)
	defer cancel()
	form := url.Values{"token": {token}}
	if tokenTypeHint != "" {
		form.Set("token_type_hint", tokenTypeHint)
	}
	if clientID != "" {
		form.Set("client_id", clientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("oauth: revoke: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return upstream(StepRevocation, endpoint, err) // *url.Error names the endpoint, not the body
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	re := &RevokeError{StatusCode: resp.StatusCode}
	re.ErrorCode, re.ErrorDescription = errorBody(body)
	re.ErrorCode = strings.ReplaceAll(re.ErrorCode, token, "[redacted]")
	re.ErrorDescription = strings.ReplaceAll(re.ErrorDescription, token, "[redacted]")
	return upstream(StepRevocation, endpoint, re)
}

// errorBody reads an OAuth error answer's "error" and "error_description"
// (RFC 6749 section 5.2), as printable text of bounded length; empty when
// the body is not such JSON.
func errorBody(body []byte) (code, description string) {
	var e struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if json.Unmarshal(body, &e) != nil {
		return "", ""
	}
	return wire.Printable(e.Error, 64), wire.Printable(e.ErrorDescription, 200)
}
