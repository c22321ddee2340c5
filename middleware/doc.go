// Package middleware holds memconnect's HTTP middleware: request ids, the
// zerolog access log, panic recovery, the optional session token, the
// Host and Origin guards, and the request body limit.
//
// Each middleware is a func(next http.Handler) http.Handler, or a
// constructor that returns one, and can be passed to chi's Router.Use.
// Every error response goes through the one writer of error bodies the
// handlers use too, so it has the API's JSON shape, code and request id.
//
// The router installs them in this order (outermost first); the order
// matters:
//
//	r.Use(
//		middleware.RequestID,           // every response, even a 403, has an id
//		middleware.AccessLog(logger),   // logs every request, also refused ones
//		middleware.Recoverer,           // inside AccessLog, so a panic is logged as a 500
//		middleware.HostGuard(hosts),    // DNS rebinding: before anything reads state
//		middleware.OriginGuard(origins, hosts),
//		middleware.SessionToken(token, isCallback),
//		middleware.BodyLimit(0),
//	)
//
// Nothing here logs a query string, a header value or a token: the OAuth
// callback's query holds the authorization code and state.
package middleware
