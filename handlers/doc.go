// Package handlers holds memconnect's HTTP handlers, their request and
// response types (rendered with go-chi/render), and the one place that turns
// an error into an HTTP response. It is the HTTP side of
// [provider.Connector] and exports only what the router and package
// middleware use.
//
// # Handlers
//
// [Handlers] serves the routes of the HTTP API; the router (memconnect.New)
// holds the route table:
//
//	GET    /providers                  Handlers.ListProviders    200 providers and their sign-in methods
//	GET    .../status                  Handlers.Status           200 status body
//	POST   .../connect                 Handlers.Connect          202 status body (200 for an API key)
//	GET    .../callback                Handlers.Callback         HTML page for a person
//	POST   .../cancel                  Handlers.Cancel           200 status body
//	DELETE .../connection              Handlers.Disconnect       200 what was removed and revoked
//	GET    .../events                  Handlers.Events           200 Server-Sent Events of the flow and the connection
//	GET    .../client-metadata         Handlers.ClientMetadata   200 Client ID Metadata Document
//	POST   /providers/{provider}/oauth/start   Handlers.HermesOAuthStart   200 Hermes status body (deprecated)
//	GET    /providers/{provider}/oauth/status  Handlers.HermesOAuthStatus  200 Hermes status body (deprecated)
//
// where ... is /profiles/{profile}/providers/{provider}; the status body is
// [provider.StatusReport]. The last two are the routes a Hermes desktop
// calls, in its Python backend's shape, with the profile in ?profile=. Request bodies are decoded strictly (unknown
// fields are refused); answers are always JSON without HTML escaping, so
// URLs keep their "&", whatever the Accept header, except the callback's
// HTML page.
//
// # Errors
//
// Every error a client sees is JSON:
//
//	{"error": "<code>", "message": "<for a person>", "request_id": "<id>"}
//
// A failure has a code the client can branch on (the codes and their
// statuses are listed in openapi.yaml), a message that is safe to show to
// a person, and an optional internal cause that is logged but never sent.
// The handlers and the middleware write error bodies through one writer,
// and the sentinel and typed errors of packages oauth, flow and provider
// map to codes in one table, here.
//
// Handlers log through the request's logger, [hlog.FromRequest], which the
// middleware package installs; they never use a global logger.
//
// [hlog.FromRequest]: https://pkg.go.dev/github.com/rs/zerolog/hlog#FromRequest
package handlers
