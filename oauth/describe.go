package oauth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/oauth2"
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

// addedScopes returns the scopes of next that prev does not have.
func addedScopes(prev, next string) []string {
	have := strings.Fields(prev)
	var added []string
	for _, sc := range strings.Fields(next) {
		if !slices.Contains(have, sc) && !slices.Contains(added, sc) {
			added = append(added, sc)
		}
	}
	return added
}

// redact replaces every token of grants found in s.
func redact(s string, grants ...*Grant) string {
	for _, g := range grants {
		if g == nil {
			continue
		}
		for _, t := range []string{g.AccessToken, g.RefreshToken} {
			if t != "" {
				s = strings.ReplaceAll(s, t, "[redacted]")
			}
		}
	}
	return s
}
