// Package connsession mints and verifies connect sessions: short-lived
// bearer tokens that let a browser act for one profile (and optionally
// some of its providers), verified with HMAC-SHA256 under keys every
// instance shares, so that no database is asked.
//
// A token is "mcs1." + base64url(claims JSON) + "." + base64url(MAC): opaque
// to clients, and never logged.
package connsession

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

const prefix = "mcs1."

// MinKeyLen is the shortest key accepted.
const MinKeyLen = 32

// Claims is what a connect session allows.
type Claims struct {
	Profile   string   `json:"p"`
	Providers []string `json:"v,omitempty"` // none: every provider
	Issued    int64    `json:"i"`           // unix seconds
	Expires   int64    `json:"e"`           // unix seconds
	// ID tells sessions minted alike apart (what one session holds, such
	// as its event streams, is counted by session); Mint sets it.
	ID string `json:"n,omitempty"`
}

// Errors of [Keys.Verify].
var (
	ErrExpired = errors.New("connsession: the connect session has expired")
	ErrInvalid = errors.New("connsession: not a valid connect session")
)

// Keys signs with the first key and verifies with any, so that a key is
// replaced by putting the new one first.
type Keys struct{ keys [][]byte }

// New returns the keys; each must be at least [MinKeyLen] bytes.
func New(keys [][]byte) (*Keys, error) {
	if len(keys) == 0 {
		return nil, errors.New("connsession: no key")
	}
	for i, k := range keys {
		if len(k) < MinKeyLen {
			return nil, fmt.Errorf("connsession: key %d is %d bytes; at least %d are needed", i+1, len(k), MinKeyLen)
		}
	}
	return &Keys{keys: keys}, nil
}

// Is reports whether tok has the form of a connect session.
func Is(tok string) bool { return strings.HasPrefix(tok, prefix) }

// Mint returns the token of c, signed with the newest key, with a random
// ID unless c has one.
func (k *Keys) Mint(c Claims) string {
	if c.ID == "" {
		c.ID = rand.Text()[:16]
	}
	payload, _ := json.Marshal(c) // strings, a slice of strings, an int
	body := prefix + base64.RawURLEncoding.EncodeToString(payload)
	return body + "." + base64.RawURLEncoding.EncodeToString(mac(k.keys[0], body))
}

// skew is how far ahead of a verifier's clock another instance's may be.
const skew = time.Minute

// Verify returns the claims of tok when one of the keys signed it, it was
// issued (give or take a minute of clock skew between instances) and has
// not expired at now, and its lifetime is at most maxTTL: a session minted
// with the right key but a lifetime beyond the maximum is refused when it
// is used, not only when it is minted.
func (k *Keys) Verify(tok string, now time.Time, maxTTL time.Duration) (Claims, error) {
	body, sig, ok := strings.Cut(tok, ".")
	if ok {
		// "mcs1.<payload>.<sig>": the first dot belongs to the prefix.
		var rest string
		rest, sig, ok = strings.Cut(sig, ".")
		body = body + "." + rest
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if !ok || !Is(tok) || err != nil {
		return Claims{}, ErrInvalid
	}
	signed := false
	for _, key := range k.keys {
		if hmac.Equal(got, mac(key, body)) {
			signed = true
			break
		}
	}
	if !signed {
		return Claims{}, ErrInvalid
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(body, prefix))
	var c Claims
	if err != nil || json.Unmarshal(payload, &c) != nil || c.Profile == "" || c.Issued == 0 ||
		time.Unix(c.Issued, 0).After(now.Add(skew)) || c.Expires-c.Issued > int64(maxTTL/time.Second) {
		return Claims{}, ErrInvalid
	}
	if !now.Before(time.Unix(c.Expires, 0)) {
		return Claims{}, ErrExpired
	}
	return c, nil
}

func mac(key []byte, body string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(body))
	return h.Sum(nil)
}

type contextKey struct{}

// NewContext returns ctx carrying the claims of the connect session a
// request was authenticated with (the session-token middleware sets it);
// the profile-scoped routes then refuse any other profile or provider.
func NewContext(ctx context.Context, c Claims) context.Context {
	return context.WithValue(ctx, contextKey{}, c)
}

// FromContext returns the claims of ctx's connect session, if the request
// was authenticated with one.
func FromContext(ctx context.Context) (Claims, bool) {
	c, ok := ctx.Value(contextKey{}).(Claims)
	return c, ok
}
