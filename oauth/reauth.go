package oauth

import "fmt"

// ReauthError is the error for a grant the server rejected. It matches
// [ErrReauthRequired].
type ReauthError struct {
	Grant string // the grant, as its store describes it
	Code  string // the OAuth error code the server answered, e.g. "invalid_grant"
}

func (e *ReauthError) Error() string {
	if e.Code == CodeExpired {
		return fmt.Sprintf("oauth: the grant of %s has no refresh token and its access token expired; sign in again", e.Grant)
	}
	return fmt.Sprintf("oauth: the authorization server rejected the grant of %s (%s); sign in again", e.Grant, e.Code)
}

// CodeExpired is the [ReauthError] code of a grant without a refresh token
// whose access token expired: it ended, nobody rejected it.
const CodeExpired = "expired"

// Is reports whether target is [ErrReauthRequired].
func (e *ReauthError) Is(target error) bool { return target == ErrReauthRequired }
