// Package scopes holds the rules of OAuth scopes (RFC 6749 section 3.3)
// that more than one place needs: what a scope-token is, and the union and
// difference of two lists.
package scopes

import "slices"

// Valid reports whether s is a scope-token of RFC 6749 section 3.3:
// printable ASCII but space, '"' and '\'.
func Valid(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return s != ""
}

// Union returns a followed by what of b it lacks, each scope once, in
// linear time: a server that names tens of thousands of scopes costs one
// pass, not a pass per scope.
func Union(a, b []string) []string {
	seen := make(map[string]bool, len(a)+len(b))
	out := make([]string, 0, len(a)+len(b))
	for _, list := range [][]string{a, b} {
		for _, s := range list {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// Added returns the scopes of next that prev lacks, each once, in next's
// order.
func Added(prev, next []string) []string {
	var added []string
	for _, s := range next {
		if !slices.Contains(prev, s) && !slices.Contains(added, s) {
			added = append(added, s)
		}
	}
	return added
}
