package filestore

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/memconnect/memconnect/oauth"
)

// A small JSON scanner for the token path's cold read: it finds the root's
// "apiKey" and "hosts" and one host block without decoding the rest of the
// file, so a cache miss costs a few microseconds. It checks structure only
// as far as it walks; writers and the refresh path (which spends a refresh
// token only after the whole file parsed) validate fully.

var errScan = errors.New("not valid JSON")

func skipSpace(d []byte, i int) int {
	for i < len(d) {
		switch d[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string that starts at d[i].
func skipString(d []byte, i int) (int, error) {
	for i++; i < len(d); i++ {
		switch d[i] {
		case '\\':
			i++
		case '"':
			return i + 1, nil
		}
	}
	return 0, errScan
}

// skipValue returns the index just past the value that starts at d[i].
func skipValue(d []byte, i int) (int, error) {
	if i >= len(d) {
		return 0, errScan
	}
	switch d[i] {
	case '"':
		return skipString(d, i)
	case '{', '[':
		depth := 0
		for ; i < len(d); i++ {
			switch d[i] {
			case '"':
				end, err := skipString(d, i)
				if err != nil {
					return 0, err
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
		}
		return 0, errScan
	}
	start := i
	for i < len(d) {
		switch d[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			if i == start {
				return 0, errScan
			}
			return i, nil
		}
		i++
	}
	if i == start {
		return 0, errScan
	}
	return i, nil
}

// eachMember calls fn with the raw key (quotes included) and raw value of
// every member of the object d, until fn returns false. It returns the index
// just past the object (or where fn stopped).
func eachMember(d []byte, fn func(key, val []byte) bool) (int, error) {
	i := skipSpace(d, 0)
	if i >= len(d) || d[i] != '{' {
		return 0, errScan
	}
	i = skipSpace(d, i+1)
	if i < len(d) && d[i] == '}' {
		return i + 1, nil
	}
	for i < len(d) {
		if d[i] != '"' {
			return 0, errScan
		}
		kend, err := skipString(d, i)
		if err != nil {
			return 0, err
		}
		key := d[i:kend]
		i = skipSpace(d, kend)
		if i >= len(d) || d[i] != ':' {
			return 0, errScan
		}
		vstart := skipSpace(d, i+1)
		vend, err := skipValue(d, vstart)
		if err != nil {
			return 0, err
		}
		if !fn(key, d[vstart:vend]) {
			return vend, nil
		}
		i = skipSpace(d, vend)
		if i >= len(d) {
			return 0, errScan
		}
		switch d[i] {
		case ',':
			i = skipSpace(d, i+1)
		case '}':
			return i + 1, nil
		default:
			return 0, errScan
		}
	}
	return 0, errScan
}

// keyIs reports whether the raw quoted key equals name.
func keyIs(raw []byte, name string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return len(raw) == len(name)+2 && string(raw[1:len(raw)-1]) == name
	}
	var k string
	return json.Unmarshal(raw, &k) == nil && k == name
}

// stringValue returns the string a raw value holds, or "" for any other value.
func stringValue(raw []byte) string {
	if len(raw) < 2 || raw[0] != '"' {
		return ""
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	json.Unmarshal(raw, &s)
	return s
}

// secondsValue reads a number, or a string holding one; anything else is 0.
func secondsValue(raw []byte) int64 {
	s := string(raw)
	if len(raw) > 0 && raw[0] == '"' {
		s = stringValue(raw)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return int64(f)
}

// scanCredentials reads key's grant or API key from a config file's bytes,
// as layout places them.
func scanCredentials(data []byte, key string, layout *Layout) (oauth.Credentials, error) {
	data = bytes.TrimPrefix(data, utf8BOM)
	if len(bytes.TrimSpace(data)) == 0 {
		return oauth.Credentials{}, nil
	}
	var rootKey string
	var block []byte
	sections, blocks := 0, 0
	end, err := eachMember(data, func(k, v []byte) bool {
		switch {
		case layout.RootAPIKey && keyIs(k, layout.AccessToken):
			rootKey = stringValue(v)
		case keyIs(k, layout.Section):
			sections++
			if len(v) > 0 && v[0] == '{' {
				eachMember(v, func(hk, hv []byte) bool {
					if keyIs(hk, key) {
						block = hv
						blocks++
					}
					return true
				})
			}
		}
		return true
	})
	if err == nil && skipSpace(data, end) != len(data) {
		err = errScan
	}
	if err != nil {
		// Let the full parser word the error (line and column).
		if _, perr := parseObject(data); perr != nil {
			return oauth.Credentials{}, perr
		}
		return oauth.Credentials{}, err
	}
	if sections > 1 || blocks > 1 {
		return oauth.Credentials{}, ambiguity(data, layout, key) // words it
	}
	g, apiKey, rejected, dup := scanBlock(block, layout)
	if dup {
		return oauth.Credentials{}, ambiguity(data, layout, key)
	}
	switch {
	case g != nil:
		return oauth.Credentials{Grant: g, Rejected: rejected}, nil
	case apiKey != "":
		return oauth.Credentials{APIKey: apiKey, APIKeySource: "host"}, nil
	case rootKey != "":
		return oauth.Credentials{APIKey: rootKey, APIKeySource: "root"}, nil
	}
	return oauth.Credentials{}, nil
}

// scanBlock reads a grant and the plain API key from a key's object: a
// grant when the access token has the layout's prefix and the fields name a
// refresh token, a token endpoint and a client id; otherwise a non-empty
// access token is an API key. rejected is the error code of a verdict on
// the grant's refresh token.
//
// dup reports that the object names the access token, fields or verdict
// member twice.
func scanBlock(block []byte, layout *Layout) (g *oauth.Grant, apiKey, rejected string, dup bool) {
	if len(block) == 0 || block[0] != '{' {
		return nil, "", "", false
	}
	var access string
	var fields, verdict []byte
	var seen [3]int
	eachMember(block, func(k, v []byte) bool {
		switch {
		case keyIs(k, layout.AccessToken):
			access = stringValue(v)
			seen[0]++
		case keyIs(k, layout.Fields):
			fields = v
			seen[1]++
		case layout.Verdict != "" && keyIs(k, layout.Verdict):
			verdict = v
			seen[2]++
		}
		return true
	})
	if seen[0] > 1 || seen[1] > 1 || seen[2] > 1 {
		return nil, "", "", true
	}
	prefix := layout.AccessTokenPrefix
	if access == "" || len(access) < len(prefix) || access[:len(prefix)] != prefix || len(fields) == 0 || fields[0] != '{' {
		return nil, access, "", false
	}
	g = &oauth.Grant{AccessToken: access, Scope: layout.DefaultScope, TokenType: "Bearer"}
	var exp, obtained int64
	eachMember(fields, func(k, v []byte) bool {
		switch {
		case keyIs(k, "refreshToken"):
			g.RefreshToken = stringValue(v)
		case keyIs(k, "expiresAt"):
			exp = secondsValue(v)
		case keyIs(k, "obtainedAt"):
			obtained = secondsValue(v)
		case keyIs(k, "clientId"):
			g.ClientID = stringValue(v)
		case keyIs(k, "tokenEndpoint"):
			g.TokenEndpoint = stringValue(v)
		case keyIs(k, "scope"):
			g.Scope = stringValue(v)
		case keyIs(k, "resource"):
			g.Resource = stringValue(v)
		case keyIs(k, "tokenType"):
			if t := stringValue(v); t != "" {
				g.TokenType = t
			}
		}
		return true
	})
	if g.TokenEndpoint == "" || g.ClientID == "" {
		return nil, access, "", false
	}
	g.Expiry = time.Unix(exp, 0)
	if obtained > 0 {
		g.Obtained = time.Unix(obtained, 0)
	}
	if len(verdict) > 0 && verdict[0] == '{' {
		var digest, code string
		eachMember(verdict, func(k, v []byte) bool {
			switch {
			case keyIs(k, "refreshTokenSha256"):
				digest = stringValue(v)
			case keyIs(k, "error"):
				code = stringValue(v)
			}
			return true
		})
		if digest != "" && digest == tokenDigest(g.RefreshToken) {
			rejected = cmp.Or(code, "invalid_grant")
		}
	}
	return g, "", rejected, false
}

// ambiguity reports a member that the file names twice on the path to
// key's grant: the section, key's object, or the access token, fields or
// verdict in it. The file must be valid JSON.
func ambiguity(data []byte, layout *Layout, key string) error {
	data = bytes.TrimPrefix(data, utf8BOM)
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	twice := func(obj []byte, names ...string) (string, []byte) {
		seen := map[string]int{}
		var last []byte
		eachMember(obj, func(k, v []byte) bool {
			for i, n := range names {
				if n != "" && keyIs(k, n) {
					seen[n]++
					if i == 0 {
						last = v
					}
				}
			}
			return true
		})
		for _, n := range names {
			if seen[n] > 1 {
				return n, nil
			}
		}
		return "", last
	}
	if dup, section := twice(data, layout.Section); dup != "" {
		return fmt.Errorf("the file names %q twice; which one holds the grants is ambiguous", dup)
	} else if len(section) > 0 && section[0] == '{' {
		if dup, block := twice(section, key); dup != "" {
			return fmt.Errorf("%q names %q twice; which one holds the grant is ambiguous", layout.Section, dup)
		} else if len(block) > 0 && block[0] == '{' {
			if dup, _ := twice(block, layout.AccessToken, layout.Fields, layout.Verdict); dup != "" {
				return fmt.Errorf("%q in %q names %q twice; which one is the grant's is ambiguous", key, layout.Section, dup)
			}
		}
	}
	return nil
}
