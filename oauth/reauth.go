package oauth

import (
	"fmt"

	"github.com/memconnect/memconnect/errkind"
)

// ReauthError is the error for a grant the server rejected. It matches
// [ErrReauthRequired].
type ReauthError struct {
	Grant string // the grant, as its store describes it
	Code  string // the OAuth error code the server answered, e.g. "invalid_grant"
}

func (e *ReauthError) Error() string {
	switch e.Code {
	case CodeExpired:
		return fmt.Sprintf("oauth: the grant of %s has no refresh token and its access token expired; sign in again", e.Grant)
	case CodeAbandoned:
		return fmt.Sprintf("oauth: a refresh of %s was sent by a process that stopped before it got the answer; the server may have rotated the token, which is not sent again (that could revoke the grant); sign in again", e.Grant)
	}
	return fmt.Sprintf("oauth: the authorization server rejected the grant of %s (%s); sign in again", e.Grant, e.Code)
}

// CodeExpired is the [ReauthError] code of a grant without a refresh token
// whose access token expired: it ended, nobody rejected it.
const CodeExpired = "expired"

// CodeAbandoned is the [ReauthError] code of a grant whose refresh token a
// holder spent without ever storing the answer ([ErrRotationAbandoned]):
// nobody rejected it, but it cannot be refreshed without risking a replay.
const CodeAbandoned = "abandoned_refresh"

// reauthMessage is what a person reads of a grant that needs a new
// sign-in.
const reauthMessage = "The provider no longer accepts this sign-in. Connect again."

// Kind is [errkind.Conflict], as [ErrReauthRequired]'s.
func (e *ReauthError) Kind() errkind.Kind { return errkind.Conflict }

// Message is [ErrReauthRequired]'s.
func (e *ReauthError) Message() string { return reauthMessage }

// Is reports whether target is [ErrReauthRequired].
func (e *ReauthError) Is(target error) bool { return target == ErrReauthRequired }
