package handlers

import "github.com/memconnect/memconnect/oauth/flow"

// flowWords are the words a person reads for a sign-in flow's state: the
// status body's flow.detail, the event stream's and the pages'.
var flowWords = map[flow.Reason]string{
	flow.ReasonStarting:       "Starting sign-in",
	flow.ReasonWaitingBrowser: "Waiting for browser consent",
	flow.ReasonWaitingDevice:  "Enter the code at the verification page to approve the sign-in",
	flow.ReasonConnected:      "Connected",
	flow.ReasonCancelled:      "Cancelled",
	flow.ReasonStateExpired:   "The sign-in link expired before it was used; start again",
	flow.ReasonTimedOut:       "Sign-in timed out: no answer came back. If the authorization server showed an error page instead (a redirect URI or client it does not accept is the likely cause), that page says why; start again",
	flow.ReasonClosed:         "The application is shutting down",
	flow.ReasonNoCode:         "The authorization server sent no authorization code; start again",
	flow.ReasonIssuer:         "The sign-in answer did not come from the authorization server it was sent to (RFC 9207), so it was not used; start again",
	flow.ReasonDenied:         "Sign-in was denied",
	flow.ReasonRefused:        "The authorization server refused the sign-in",
	flow.ReasonDeviceExpired:  "The code expired before it was approved",
	flow.ReasonRateLimited:    "Too many sign-in attempts; wait a minute and try again",
	flow.ReasonExchange:       "The authorization server did not accept the sign-in; start again",
	flow.ReasonUnreachable:    "Could not reach the authorization server; check the connection and try again",
	flow.ReasonComplete:       "Signed in, but the credentials could not be saved; try again",
	flow.ReasonDeviceStart:    "Could not start the sign-in at the authorization server; try again",
	flow.ReasonDeviceFailed:   "Sign-in failed at the authorization server; start again",
	flow.ReasonOtherBrowser:   "This sign-in was started in another browser, so it was not completed here; start it again from this browser",
}

// FlowWords puts a sign-in flow's reasons in the words of the router's
// pages and answers; give it to a flow manager as its [flow.Config.Words],
// as the router does. A reason it does not know gets the flow package's
// plain words.
func FlowWords(r flow.Reason) string {
	if s, ok := flowWords[r]; ok {
		return s
	}
	return flow.PlainWords(r)
}
