// Package oauthfake holds the in-process OAuth servers of this module's
// tests and of examples/server -dev, built on [net/http/httptest] and bound
// to 127.0.0.1 (or, with [WithInMemoryNetwork], to no socket at all). They
// never log anything, so tokens never reach a log. Package oauthtest is
// the part of it a host's tests need, as public API.
//
// A [Server] is an OAuth 2.1 authorization server that speaks just enough
// of the protocol family to exercise a real client end to end, offline:
//
//   - the authorization code grant with mandatory PKCE S256 (RFC 6749,
//     RFC 7636, OAuth 2.1) and an accessible HTML consent page a person can
//     use, for public clients on loopback redirect URIs (RFC 8252);
//   - refresh token rotation with reuse detection: presenting a superseded
//     refresh token revokes the whole grant (OAuth 2.1, RFC 9700);
//   - the device authorization grant (RFC 8628);
//   - token revocation (RFC 7009), token introspection (RFC 7662) and
//     authorization server metadata (RFC 8414);
//   - a protected resource, GET /api/whoami, that accepts Bearer access
//     tokens (RFC 6750), and API keys given with [WithAPIKey];
//   - optionally, dynamic client registration (RFC 7591,
//     [WithDynamicRegistration]), Client ID Metadata Documents
//     ([WithClientIDMetadataDocuments]) and resource indicators required on
//     every request (RFC 8707, [WithResource]).
//
// Tests drive it with golang.org/x/oauth2 ([Server.OAuth2Config] returns a
// ready [oauth2.Config]), approve consent with [Server.Consent] or
// [Server.ApproveDevice], inject faults with [Server.SetTokenHook] and
// [Server.FailNextTokenRequests], move time with [WithClock] (or run in a
// [testing/synctest] bubble on [WithInMemoryNetwork]), and check what
// happened with [Server.Stats], [Server.Active] and
// [Server.LastAuthorizeQuery]. Tokens are opaque random strings with
// configurable prefixes. A provider's likeness is a set of options: package
// honchofake is Honcho's.
//
// An [MCPServer] is a memory server behind the MCP authorization model: a
// protected resource that answers 401 with a challenge naming its protected
// resource metadata (RFC 9728), in front of a Server with dynamic
// registration and resource indicators.
package oauthfake
