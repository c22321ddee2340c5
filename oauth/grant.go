package oauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// RefreshSkew is how long before its expiry an access token is refreshed, so
// that a request in flight never races the expiry boundary.
const RefreshSkew = 120 * time.Second

// DefaultAccessTokenPrefix marks a Honcho OAuth access token. A host block is
// an OAuth grant only when its apiKey carries the store's prefix.
const DefaultAccessTokenPrefix = "hch-at-"

// defaultExpiresIn is assumed when a token response has no expires_in, so that
// a server that omits it does not cause a refresh on every call.
const defaultExpiresIn = time.Hour

// ErrNoGrant reports that a host block holds no OAuth grant (it may hold a
// plain API key, or not exist).
var ErrNoGrant = errors.New("oauth: no grant stored for this host")

// Grant is an OAuth grant as stored in a honcho.json host block: the access
// token in the block's "apiKey", the rest in its "oauth" sub-block.
//
// Token fields are tagged json:"-" so a Grant that reaches a logger or an
// encoder never prints them.
type Grant struct {
	AccessToken   string    `json:"-"`
	RefreshToken  string    `json:"-"`
	Expiry        time.Time `json:"expires_at"` // "expiresAt", whole epoch seconds
	ClientID      string    `json:"client_id"`
	TokenEndpoint string    `json:"token_endpoint"`
	Scope         string    `json:"scope"`
	TokenType     string    `json:"token_type"`
}

// Token returns the access token as an [oauth2.Token]. The refresh token is
// left out on purpose: it is spent only by the store, under its locks.
func (g *Grant) Token() *oauth2.Token {
	return &oauth2.Token{AccessToken: g.AccessToken, TokenType: g.TokenType, Expiry: g.Expiry}
}

// needsRefresh reports whether the access token is within [RefreshSkew] of
// its expiry at now.
func (g *Grant) needsRefresh(now time.Time) bool {
	return !now.Before(g.Expiry.Add(-RefreshSkew))
}

// oauthFields writes the grant's fields into an "oauth" sub-block, keeping any
// other keys it already has.
func (g *Grant) oauthFields(o *object) {
	o.setValue("refreshToken", g.RefreshToken)
	o.setValue("expiresAt", g.Expiry.Unix())
	o.setValue("clientId", g.ClientID)
	o.setValue("tokenEndpoint", g.TokenEndpoint)
	o.setValue("scope", g.Scope)
	o.setValue("tokenType", g.TokenType)
}

// looseString decodes a JSON string and ignores any other JSON value, the way
// the Python agent treats a field of the wrong type as absent.
type looseString string

func (s *looseString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, (*string)(s))
	}
	*s = ""
	return nil
}

// looseSeconds decodes a number, or a string holding one, as epoch seconds;
// anything else is zero (an expired token).
type looseSeconds float64

func (n *looseSeconds) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		f = 0
	}
	*n = looseSeconds(f)
	return nil
}

// hostFields is what the token path reads of a host block.
type hostFields struct {
	APIKey looseString     `json:"apiKey"`
	OAuth  json.RawMessage `json:"oauth"`
}

type oauthFields struct {
	RefreshToken  looseString  `json:"refreshToken"`
	ExpiresAt     looseSeconds `json:"expiresAt"`
	ClientID      looseString  `json:"clientId"`
	TokenEndpoint looseString  `json:"tokenEndpoint"`
	Scope         *looseString `json:"scope"`
	TokenType     *looseString `json:"tokenType"`
}

// rootFields is what the token path reads of the file's root.
type rootFields struct {
	APIKey looseString
	hosts  json.RawMessage
}

func (r *rootFields) UnmarshalJSON(b []byte) error {
	var v struct {
		APIKey looseString     `json:"apiKey"`
		Hosts  json.RawMessage `json:"hosts"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	r.APIKey, r.hosts = v.APIKey, v.Hosts
	return nil
}

// hostBlock returns the raw block of host, or nil.
func (r *rootFields) hostBlock(host string) json.RawMessage {
	if !isObject(r.hosts) {
		return nil
	}
	var hosts map[string]json.RawMessage
	if json.Unmarshal(r.hosts, &hosts) != nil {
		return nil
	}
	return hosts[host]
}

// parseHostBlock reads a grant and the plain API key from a host block. The
// block is a grant only when apiKey has the prefix and the oauth block names
// a refresh token, a token endpoint and a client id; otherwise a non-empty
// apiKey is returned as an API key.
func parseHostBlock(raw json.RawMessage, prefix string) (g *Grant, apiKey string) {
	if !isObject(raw) {
		return nil, ""
	}
	var hf hostFields
	if json.Unmarshal(raw, &hf) != nil {
		return nil, ""
	}
	access := string(hf.APIKey)
	if access == "" || !strings.HasPrefix(access, prefix) || !isObject(hf.OAuth) {
		return nil, access
	}
	var of oauthFields
	if json.Unmarshal(hf.OAuth, &of) != nil || of.RefreshToken == "" || of.TokenEndpoint == "" || of.ClientID == "" {
		return nil, access
	}
	g = &Grant{
		AccessToken:   access,
		RefreshToken:  string(of.RefreshToken),
		Expiry:        time.Unix(int64(of.ExpiresAt), 0),
		ClientID:      string(of.ClientID),
		TokenEndpoint: string(of.TokenEndpoint),
		Scope:         "write",
		TokenType:     "Bearer",
	}
	if of.Scope != nil {
		g.Scope = string(*of.Scope)
	}
	if of.TokenType != nil && *of.TokenType != "" {
		g.TokenType = string(*of.TokenType)
	}
	return g, ""
}

// parseCredentials reads host's grant or API key from the bytes of a config
// file. The API key falls back from the host block to the root.
func parseCredentials(data []byte, host, prefix string) (Credentials, error) {
	data = bytes.TrimPrefix(data, utf8BOM)
	if len(bytes.TrimSpace(data)) == 0 {
		return Credentials{}, nil
	}
	var root rootFields
	if err := json.Unmarshal(data, &root); err != nil {
		// Let the ordered parser word the error (line and column).
		if _, perr := parseObject(data); perr != nil {
			return Credentials{}, perr
		}
		return Credentials{}, err
	}
	if t := bytes.TrimSpace(data); t[0] != '{' {
		return Credentials{}, errors.New("the top level is not a JSON object")
	}
	g, key := parseHostBlock(root.hostBlock(host), prefix)
	switch {
	case g != nil:
		return Credentials{Grant: g}, nil
	case key != "":
		return Credentials{APIKey: key, APIKeySource: "host"}, nil
	case root.APIKey != "":
		return Credentials{APIKey: string(root.APIKey), APIKeySource: "root"}, nil
	}
	return Credentials{}, nil
}

// Credentials is what a config file holds for one host: an OAuth grant, or
// else a plain API key from the host block or the root.
type Credentials struct {
	Grant        *Grant
	APIKey       string `json:"-"`
	APIKeySource string // "host", "root" or ""
}
