package flow

import "strings"

// Reason is why a flow stands as it does: what [Flow.Detail] and
// [Failure.Detail] put in words for a person. The words are the host's
// ([Config.Words]); the reasons are the package's.
type Reason string

// The reasons of a flow's state.
const (
	ReasonStarting       Reason = "starting"        // a device flow asks the server for a code
	ReasonWaitingBrowser Reason = "waiting_browser" // a browser flow waits for consent
	ReasonWaitingDevice  Reason = "waiting_device"  // a device flow waits for the code to be entered
	ReasonConnected      Reason = "connected"       // the grant is stored
	ReasonCancelled      Reason = "cancelled"       // Cancel ended it
	ReasonStateExpired   Reason = "state_expired"   // the sign-in link expired unused
	ReasonTimedOut       Reason = "timed_out"       // the loopback listener got no answer in time
	ReasonClosed         Reason = "closed"          // the manager was closed
	ReasonNoCode         Reason = "no_code"         // the answer carried no authorization code
	ReasonIssuer         Reason = "issuer"          // the answer came from another issuer (RFC 9207)
	ReasonDenied         Reason = "denied"          // the person or the server refused consent
	ReasonRefused        Reason = "refused"         // the server answered error= (its words follow)
	ReasonDeviceExpired  Reason = "device_expired"  // the device code expired unapproved
	ReasonRateLimited    Reason = "rate_limited"    // HTTP 429
	ReasonExchange       Reason = "exchange"        // the code or device code was not accepted
	ReasonUnreachable    Reason = "unreachable"     // the authorization server did not answer
	ReasonComplete       Reason = "complete"        // signed in, but the grant was not stored
	ReasonDeviceStart    Reason = "device_start"    // the device authorization request failed
	ReasonDeviceFailed   Reason = "device_failed"   // device polling failed otherwise
	ReasonOtherBrowser   Reason = "other_browser"   // completed from a browser that did not start it
)

// Words puts a [Reason] in words for a person: a short sentence without
// a final full stop, such as "Waiting for browser consent".
type Words func(Reason) string

// PlainWords is the [Words] of a [Config] without any: the reason itself,
// spaced and capitalized ("Waiting browser"). Hosts give their own words,
// as the router does.
func PlainWords(r Reason) string {
	s := strings.ReplaceAll(string(r), "_", " ")
	if s == "" {
		return ""
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// say is r in the manager's words.
func (m *Manager) say(r Reason) string { return m.words(r) }
