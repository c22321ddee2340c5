// Package mcp is a memory provider for any server behind the MCP
// authorization model (OAuth 2.1 with protected resource metadata),
// configured by nothing more than a name, a display name and the server's
// URL.
//
// On the first connect it discovers what it needs, and caches it for ten
// minutes:
//
//  1. the protected resource metadata (RFC 9728), from the
//     resource_metadata of the 401 challenge the server answers an
//     unauthenticated request with, or from the well-known URL;
//  2. the authorization server metadata (RFC 8414, with OpenID Connect
//     discovery as the fallback) of the first authorization server named;
//  3. a client, in the order of the MCP specification: a pre-registered
//     client id ([WithClientID]); else dynamic client registration
//     (RFC 7591) of a public client for the Connector's redirect URIs (its
//     callback route and its loopback listener, registered as
//     http://127.0.0.1/callback, the loopback URI with no port, as servers
//     that follow RFC 8252 section 7.3 accept it on any port). The registration is kept
//     in the grant file and registered again when the redirect URIs
//     change, the authorization server changes, the server answers
//     invalid_client (at the code exchange, or at a refresh), or a sign-in
//     ends unanswered (cancelled or expired: a server that forgot the
//     client shows the person an error page instead of redirecting);
//  4. the scopes: [WithScopes], else the challenge's scope, else the
//     metadata's scopes_supported, plus offline_access when the
//     authorization server offers it (so that it issues a refresh token).
//
// Every authorization, token and refresh request carries the resource
// indicator (RFC 8707) of the metadata. Grants refresh through package
// oauth's protocol, the same locks, journal and dead-grant rule as
// Honcho's, over the file below or a shared GrantStore.
//
// # The grant file
//
// Each profile keeps its grants in "memconnect.json" in its home
// directory (mode 0600, written atomically under the lock file
// "memconnect.json.lock"), one object per provider name under "servers":
//
//	{"servers": {"supermemory": {
//	    "token": "<access token, or the API key>",
//	    "oauth": {"refreshToken": "…", "expiresAt": 1767225600, "clientId": "…",
//	              "tokenEndpoint": "https://…/token", "scope": "…", "resource": "https://…/mcp"},
//	    "oauthRejected": {"refreshTokenSha256": "…", "error": "invalid_grant"},
//	    "registration": {"client_id": "…", "redirect_uris": ["…"], "issuer": "https://…", "registered_at": 1767225600}
//	}}}
//
// An agent sends "token" as its Bearer token. With an "oauth" object it is
// an OAuth access token that memconnect keeps fresh; without one it is an
// API key. Every other member, and every other server's object, is kept.
//
// # Presets and your own servers
//
// [Supermemory] is a preset. A host adds its own server with [New]:
//
//	zep, err := mcp.New("zep", "Zep", "https://mcp.example.com/mcp", mcp.WithAPIKeys())
//	if err != nil {
//		return err
//	}
//	registry, err := provider.NewRegistry(honcho.New(), mcp.Supermemory(), zep)
package mcp
