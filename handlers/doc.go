// Package handlers holds memconnect's HTTP handlers, their request and
// response types (rendered with go-chi/render), and the one place that turns
// an error into an HTTP response.
//
// # Handlers
//
// [Handlers] serves the routes of DESIGN.md's HTTP API on top of a
// [provider.Service]; the router (memconnect.New) holds the route table:
//
//	GET    /providers                  Handlers.ListProviders    200 ProvidersResponse
//	GET    .../status                  Handlers.Status           200 StatusResponse
//	POST   .../connect                 Handlers.Connect          202 StatusResponse
//	GET    .../callback                Handlers.Callback         HTML page for a person
//	POST   .../cancel                  Handlers.Cancel           200 StatusResponse
//	DELETE .../connection              Handlers.Disconnect       200 DisconnectResponse
//
// where ... is /profiles/{profile}/providers/{provider}. Request bodies are
// decoded with [Bind] (strict JSON, validation in the type's Bind method);
// answers are always JSON (like [render.JSON] but without HTML escaping, so
// URLs keep their "&"; whatever the Accept header), except the callback's
// HTML page.
//
// # Errors
//
// Every error a client sees is JSON of the shape given in DESIGN.md:
//
//	{"error": "<code>", "message": "<for a person>", "request_id": "<id>"}
//
// A handler that fails returns (or builds) an [*Error]: a [Code] the client
// can branch on, a Message that is safe to show to a person, and an optional
// internal cause that is logged but never sent. It then calls [RenderError],
// which is the only function that writes an error response. [ToError] is the
// only function that decides which [Code] an arbitrary error gets, and
// [Code.Status] is the only mapping from a code to an HTTP status.
//
// Errors from lower packages (oauth, provider) are recognised in [ToError];
// add new sentinels there, not in the handlers that meet them.
//
// Handlers log through the request's logger, [hlog.FromRequest], which the
// middleware package installs; they never use a global logger.
//
// [hlog.FromRequest]: https://pkg.go.dev/github.com/rs/zerolog/hlog#FromRequest
// [render.JSON]: https://pkg.go.dev/github.com/go-chi/render#JSON
package handlers
