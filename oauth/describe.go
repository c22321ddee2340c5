package oauth

import (
	"context"
	"errors"
	"fmt"
	"net"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/internal/outbound"
	"github.com/memconnect/memconnect/internal/wire"
)

// describe words a refresh error for a log line or an error message without
// any token value: the server's body is never included.
func describe(err error, grants ...*Grant) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		if re.ErrorCode != "" {
			return fmt.Sprintf("token endpoint answered %d %s", status, re.ErrorCode)
		}
		return fmt.Sprintf("token endpoint answered %d", status)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "token endpoint did not answer in time"
	}
	return redact(err.Error(), grants...)
}

// unspent reports whether a failed exchange provably left the refresh token
// unspent: the server answered (an error, or a redirect that was not
// followed), or the connection was never made.
func unspent(err error) bool {
	var re *oauth2.RetrieveError
	var rd *outbound.RedirectError
	var op *net.OpError
	switch {
	case errors.As(err, &re):
		return re.Response != nil
	case errors.As(err, &rd):
		return true
	case errors.As(err, &op):
		return op.Op == "dial"
	}
	return false
}

// redact replaces every token of grants found in s.
func redact(s string, grants ...*Grant) string {
	for _, g := range grants {
		if g != nil {
			s = wire.Redact(s, g.AccessToken, g.RefreshToken)
		}
	}
	return s
}
