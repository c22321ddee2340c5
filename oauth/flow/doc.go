// Package flow runs the authorization flows that connect a person's
// account: the authorization code grant with PKCE S256 (RFC 6749
// section 4.1, RFC 7636), redirected either to a one-shot loopback listener
// (RFC 8252) or to a callback route of the host application, and the device
// authorization grant (RFC 8628).
//
// A [Manager] holds at most one pending flow per [Key] (a profile and a
// provider). [Manager.Start] starts one and returns a [Flow] snapshot with
// the page to open; the flow then completes in the background, and
// [Manager.Status] and [Manager.Wait] report how it stands. Every callback,
// on the loopback listener or through [Manager.Callback], runs the same
// completion code:
//
//  1. The state parameter (256 random bits, bound to its key, valid for
//     [StateTTL]) is claimed from the [Store]: a callback without a valid
//     state changes nothing, and no state is accepted twice.
//  2. An error= answer ends the flow in [StateError].
//  3. The code is exchanged with the PKCE verifier, [Request.Complete]
//     stores the grant, and only then does the flow become
//     [StateConnected].
//
// The loopback listener answers the browser with [Config.Page] (the
// router gives its own; [PlainPage] by default); a host's callback route
// shows its own page for what [Manager.Callback] returns. The package
// holds no page markup and keeps no token: Complete receives the one token an
// exchange returns, and storing it is the caller's business (see package
// [github.com/memconnect/memconnect/oauth]).
package flow
