package filestore

import (
	"cmp"
	"fmt"

	"github.com/memconnect/memconnect/errkind"
)

// PrefixError reports a sign-in whose access token lacks the prefix that
// marks an OAuth access token in the file's layout: the grant is not
// stored, since every reader would take it for a plain API key.
type PrefixError struct {
	Prefix  string
	Setting string // what changes the prefix; "" when unnamed
}

func (e *PrefixError) Error() string {
	return fmt.Sprintf("oauth: the access token does not start with the prefix %q that marks a grant in the config file (set by %s)", e.Prefix, cmp.Or(e.Setting, "the file's layout"))
}

// Kind is [errkind.Internal]: the server's tokens do not fit this
// server's layout, which its operator changes.
func (e *PrefixError) Kind() errkind.Kind { return errkind.Internal }

// Message says what happened and what to change, for a person.
func (e *PrefixError) Message() string {
	s := fmt.Sprintf("Signed in, but the server's access tokens do not start with %q, which marks a sign-in in the config file, so it was not saved", e.Prefix)
	if e.Setting != "" {
		s += fmt.Sprintf("; set %s to the server's prefix (empty for none) and sign in again", e.Setting)
	}
	return s + "."
}
