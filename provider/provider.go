package provider

import (
	"context"
	"net/url"
	"slices"
	"time"

	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/filestore"
)

// AuthMethod is a way a person can grant a provider access.
type AuthMethod string

// The authorization methods a [Provider] may support.
const (
	// AuthBrowser is the authorization code flow with PKCE (RFC 6749
	// section 4.1, RFC 7636) in a web browser.
	AuthBrowser AuthMethod = "browser"
	// AuthDevice is the device authorization grant (RFC 8628).
	AuthDevice AuthMethod = "device"
	// AuthKey is an API key that the person pastes; it is stored where
	// the provider's agent reads it, in the profile's [GrantLocation],
	// and checked first when the provider is a [KeyChecker].
	AuthKey AuthMethod = "apikey"
)

// LoopbackAddresser is a [Provider] whose clients are registered with a
// fixed loopback redirect URI, such as Honcho's 127.0.0.1:8765: its
// loopback sign-ins listen there first ([Connector.LoopbackAddr] overrides
// it for every provider). Other providers listen on any free port, which
// servers that follow RFC 8252 section 7.3 accept.
type LoopbackAddresser interface {
	// LoopbackAddr is a loopback IP literal and a port.
	LoopbackAddr() string
}

// KeyChecker is a [Provider] with a cheap check of an API key, such as one
// authenticated request. [Connector.ConnectAPIKey] calls it before storing
// a key.
type KeyChecker interface {
	// CheckAPIKey returns an [*APIKeyError] when the provider's server
	// refuses key, nil when it accepts it, and another
	// error when it could not tell. Errors never hold the key.
	CheckAPIKey(ctx context.Context, p Profile, key string) error
}

// The values of [Status.Auth].
const (
	// AuthOAuth: the profile holds an OAuth grant for the provider.
	AuthOAuth = "oauth"
	// AuthAPIKey: the profile authenticates with a static API key.
	AuthAPIKey = "apikey"
)

// Provider is one memory provider. Implementations must be safe for
// concurrent use.
type Provider interface {
	// Name is the provider's stable identifier, used in URLs ("honcho").
	Name() string
	// DisplayName is the provider's name for people ("Honcho").
	DisplayName() string
	// AuthMethods lists the sign-in methods the provider supports, in
	// order of preference: the OAuth methods [AuthBrowser] and
	// [AuthDevice], and [AuthKey]. A provider without the OAuth methods
	// does not support OAuth.
	AuthMethods() []AuthMethod
	// Endpoints returns the OAuth endpoints and client for profile p.
	Endpoints(ctx context.Context, p Profile) (Endpoints, error)
	// GrantLocation returns where profile p's grant is read from and where
	// a new grant is written, and how the file lays it out.
	GrantLocation(p Profile) (GrantLocation, error)
	// Status reports profile p's connection to the provider, reading the
	// files through stores, so that every reader shares one
	// [filestore.Store] per file.
	Status(ctx context.Context, p Profile, stores *Stores) (Status, error)
}

// SupportsOAuth reports whether p lists an OAuth method.
func SupportsOAuth(p Provider) bool {
	return slices.Contains(p.AuthMethods(), AuthBrowser) || slices.Contains(p.AuthMethods(), AuthDevice)
}

// Endpoints are a provider's OAuth endpoints and client registration for
// one profile.
type Endpoints struct {
	// AuthorizeURL is the authorization endpoint (RFC 6749 section 3.1).
	AuthorizeURL string
	// TokenURL is the token endpoint (RFC 6749 section 3.2).
	TokenURL string
	// DeviceAuthURL is the device authorization endpoint (RFC 8628
	// section 3.1); empty when the device flow is not available.
	DeviceAuthURL string
	// RevocationURL is the token revocation endpoint (RFC 7009); empty
	// when unknown, in which case it may be discovered from Issuer.
	RevocationURL string
	// Issuer is the authorization server's issuer identifier, used for
	// metadata discovery (RFC 8414) and to check the authorization
	// response's "iss" (RFC 9207); empty when unknown.
	Issuer string
	// IssuerInResponse reports that the server's metadata announce an
	// "iss" in every authorization response, so that one without it is
	// refused (RFC 9207).
	IssuerInResponse bool
	// ClientID is the registered public client's identifier.
	ClientID string
	// Scopes are the scopes requested.
	Scopes []string
	// AuthParams are extra parameters of the authorization request that
	// the provider's consent page reads, such as Honcho's "config_path".
	AuthParams url.Values
	// Resource is the protected resource the tokens are for: sent as the
	// resource indicator (RFC 8707) with the authorization request, the
	// code exchange and every refresh. "" sends none.
	Resource string
}

// IssuerChecker is a [Provider] that can tell a grant its servers no
// longer stand behind: Moved reports whether a grant refreshed at
// tokenEndpoint belongs to an authorization server other than the one its
// servers name now (from what it discovered last; no request is made). A
// refresh token goes only to the issuer that granted it, so such a grant
// needs a new sign-in, never a refresh elsewhere.
type IssuerChecker interface {
	Moved(tokenEndpoint string) bool
}

// MethodDiscoverer is a [Provider] whose sign-in methods depend on what its
// servers announce (the device flow, say): DiscoverMethods returns them,
// asking the servers within ctx when it does not know yet.
type MethodDiscoverer interface {
	DiscoverMethods(ctx context.Context) []AuthMethod
}

// ClientRequest is what a [Registrar] obtains a client for.
type ClientRequest struct {
	// RedirectURIs are the redirect URIs the sign-in uses, and no other:
	// the router's callback route for a sign-in that returns there; the
	// exact URI the loopback listener is bound to, port included, for one
	// that returns to a listener; the loopback URI without a port (RFC
	// 8252 section 7.3) for a device flow, which uses none.
	RedirectURIs []string
	// FallbackRedirectURIs, when not empty, are registered instead when
	// the authorization server refuses RedirectURIs with
	// invalid_redirect_uri: the other form of the same loopback redirect
	// (without the port, which a server that follows RFC 8252 section 7.3
	// matches whatever the port).
	FallbackRedirectURIs []string
	// MetadataURL is the https URL where the host serves the profile's
	// Client ID Metadata Document ([Connector.ClientMetadata]); "" when
	// the callback base URL is not https.
	MetadataURL string
	// RejectedClientID is the client for which the authorization server
	// rejected the profile's grant with invalid_client or
	// unauthorized_client, as the grant store recorded it: a client to
	// register again. "" for none.
	RejectedClientID string
}

// Registrar is a [Provider] whose OAuth client is obtained at connect
// time, such as by dynamic client registration (RFC 7591), for the
// redirect URIs the Connector uses. [Connector.Connect] asks it for the
// endpoints in place of [Provider.Endpoints].
type Registrar interface {
	// Client returns profile p's endpoints with a client for req: a
	// client registered for every URI of req.RedirectURIs (registering
	// one when the stored client does not cover them or was rejected), or
	// req.MetadataURL as the client_id where the authorization server
	// takes Client ID Metadata Documents.
	Client(ctx context.Context, p Profile, req ClientRequest, stores *Stores) (Endpoints, error)
	// ClientRejected reports that the authorization server answered
	// invalid_client for clientID, or that a browser sign-in with it ended
	// without an answer (a server shows a person an unknown client instead
	// of redirecting), so that the next Client registers again.
	ClientRejected(ctx context.Context, p Profile, clientID string, stores *Stores)
}

// GrantLocation says where a profile's grant lives.
type GrantLocation struct {
	// ReadPath is the configuration file the grant is read from now: the
	// first file of the provider's fallback chain that exists.
	ReadPath string
	// WritePath is the configuration file a new grant is written to.
	WritePath string
	// Host is the key of the profile's grant in the file.
	Host string
	// Layout says where in the file the grant lives.
	Layout filestore.Layout
}

// Status is a profile's connection to a provider, as the provider sees it.
type Status struct {
	// Supported reports whether the provider supports OAuth.
	Supported bool
	// Connected reports whether the profile has credentials (an OAuth
	// grant or an API key) for the provider.
	Connected bool
	// Auth is [AuthOAuth], [AuthAPIKey] or "" when not connected.
	Auth string
	// ReauthRequired reports that the OAuth grant was found dead (for
	// example, the refresh token was revoked): a person must connect again.
	ReauthRequired bool
	// Token describes the OAuth grant when Auth is [AuthOAuth].
	Token *TokenInfo
	// APIKeyHint is "…" followed by the last four characters of the API
	// key when Auth is [AuthAPIKey] and the key is long enough to spare
	// them; never the key. It is not part of the HTTP status body.
	APIKeyHint string
	// APIKeySource says where the API key came from: "host", "root" or
	// "env".
	APIKeySource string
	// Account names the connected account the way a person knows it (for
	// Honcho, the peer name), or "" when the provider knows none. Never a
	// secret.
	Account string
	// Shared is what a shared store keeps of the connection for every
	// instance ([oauth.StateStore]): its health, the scopes asked for, the
	// last use; nil when the store keeps none.
	Shared *oauth.SharedState
}

// TokenInfo describes an OAuth grant without its secrets.
type TokenInfo struct {
	// ClientID is the client the grant was issued to.
	ClientID string
	// Scope is the granted scope.
	Scope string
	// ExpiresAt is when the current access token expires.
	ExpiresAt time.Time
	// Refreshable reports that the grant has a refresh token; one without
	// (RFC 6749 section 5.1 makes it optional) ends at ExpiresAt.
	Refreshable bool
	// TokenEndpoint is where the grant is refreshed: its issuer's.
	TokenEndpoint string
	// Obtained is when the server issued the tokens (the sign-in or the
	// last rotation, by any holder); zero when unknown.
	Obtained time.Time
}
