// Package connid names a connection: the profile it belongs to and the
// provider it connects. Every package that keys something by connection
// (the flows, the event bus, the keeper, the stores) uses [ID], so a
// connection is written, read and ordered the same way everywhere.
//
// An ID has two written forms. Its store key, "<provider>/<profile>"
// ([ID.String], [Parse]), names its grant in a store. Its cursor,
// "<profile>/<provider>" ([ID.Cursor], [ParseCursor]), is its place in a
// listing: connections are listed by profile, then provider, each in byte
// order ([Compare]), as a database orders the pair with a binary collation.
package connid

import (
	"errors"
	"fmt"
	"strings"
)

// ID is a connection: a profile and a provider.
type ID struct {
	Profile  string
	Provider string
}

// ErrMalformed is returned, wrapped, for a key or cursor that is not two
// names joined by a slash.
var ErrMalformed = errors.New("connid: not <name>/<name>")

// String returns id's store key, "<provider>/<profile>".
func (id ID) String() string { return id.Provider + "/" + id.Profile }

// Cursor returns id's place in a listing, "<profile>/<provider>".
func (id ID) Cursor() string { return id.Profile + "/" + id.Provider }

// Parse parses a store key, "<provider>/<profile>".
func Parse(key string) (ID, error) {
	prov, prof, err := split(key)
	if err != nil {
		return ID{}, fmt.Errorf("store key %q: %w", key, err)
	}
	return ID{Profile: prof, Provider: prov}, nil
}

// ParseCursor parses a cursor, "<profile>/<provider>".
func ParseCursor(cursor string) (ID, error) {
	prof, prov, err := split(cursor)
	if err != nil {
		return ID{}, fmt.Errorf("cursor %q: %w", cursor, err)
	}
	return ID{Profile: prof, Provider: prov}, nil
}

// Compare orders a and b as a listing does: by profile, then provider,
// each in byte order. It returns -1, 0 or +1, for slices.SortFunc. (The
// cursors' own byte order differs where a profile is a prefix of another:
// "p-a/x" sorts before "p/x", though profile "p" comes first.)
func Compare(a, b ID) int {
	if c := strings.Compare(a.Profile, b.Profile); c != 0 {
		return c
	}
	return strings.Compare(a.Provider, b.Provider)
}

func split(s string) (string, string, error) {
	a, b, ok := strings.Cut(s, "/")
	if !ok || a == "" || b == "" {
		return "", "", ErrMalformed
	}
	return a, b, nil
}
