// Package authserver talks to OAuth authorization servers and the resources
// they protect, for the steps around a grant that are not a refresh.
//
// [Discover] reads authorization server metadata (RFC 8414, with OpenID
// discovery as the fallback), [DiscoverResource] a protected resource's
// metadata (RFC 9728) from its 401 challenge ([ParseChallenge]) or its
// well-known URL, [Register] registers a public client (RFC 7591), and
// [Revoke] revokes a token (RFC 7009). Every document is bounded to 1 MiB
// and every URL must be https (http on a loopback host only); no request
// follows a redirect to another origin. A step that fails is an
// [*UpstreamError] naming the server's URL and the step; errors never hold a
// token.
//
// The refresh itself is package [github.com/memconnect/memconnect/oauth]'s.
package authserver
