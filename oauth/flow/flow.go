package flow

import (
	"context"
	"net/url"
	"time"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/connid"
)

// Method is how a person authorizes a flow.
type Method string

// Flow methods.
const (
	// MethodBrowser is the authorization code grant with PKCE S256
	// (RFC 6749 section 4.1, RFC 7636) in a browser on this machine.
	MethodBrowser Method = "browser"
	// MethodDevice is the device authorization grant (RFC 8628): the person
	// enters a short user code on another device.
	MethodDevice Method = "device"
)

// State is where a flow stands, as reported by [Manager.Status].
type State string

// Flow states. A key with no flow is [StateIdle]; [Manager.Start] makes it
// [StatePending]; it ends [StateConnected] (the grant is stored) or [StateError];
// both revert to [StateIdle] after a while (see [Config.ErrorReset] and
// [Config.ConnectedReset]).
const (
	StateIdle      State = "idle"
	StatePending   State = "pending"
	StateConnected State = "connected"
	StateError     State = "error"
)

// RedirectMode is where the authorization server sends the browser back to
// after consent (the redirect URI of RFC 6749 section 3.1.2).
type RedirectMode string

// Redirect modes of a browser flow.
const (
	// RedirectLoopback runs a one-shot listener on a loopback IP literal
	// (RFC 8252 section 7.3); see [Config.LoopbackAddr].
	RedirectLoopback RedirectMode = "loopback"
	// RedirectCallback uses [Request.CallbackURL], a route of the host
	// application that hands the query to [Manager.Callback].
	RedirectCallback RedirectMode = "callback"
)

// Request describes a flow to start with [Manager.Start].
type Request struct {
	// Key binds the flow, and its state parameter, to a connection: a
	// [Manager] has at most one flow pending per connection.
	Key connid.ID

	// Method is the authorization method. Required: the package decides no
	// default, the caller does.
	Method Method

	// Redirect is the redirect mode of a browser flow, required for
	// [MethodBrowser]; it must be empty for [MethodDevice].
	Redirect RedirectMode

	// CallbackURL is the redirect URI for [RedirectCallback]. The caller
	// builds it from configuration (never from a request's Host header); it
	// must be an absolute http or https URL.
	CallbackURL string

	// LoopbackAddr is where a [RedirectLoopback] flow's listener binds
	// first, such as the port a provider's client is registered with; ""
	// means the Manager's [Config.LoopbackAddr]. It must be a loopback IP
	// literal and a port ([CheckLoopbackAddr]).
	LoopbackAddr string

	// Config holds ClientID, Endpoint (AuthURL and TokenURL, DeviceAuthURL
	// for a device flow) and Scopes. The manager works on a copy: it sets
	// RedirectURL and uses [oauth2.AuthStyleInParams] (client_id in the form,
	// as public clients do, RFC 6749 section 2.3.1). A public client has no
	// ClientSecret.
	Config oauth2.Config

	// AuthParams are extra parameters of the authorization request (and of
	// the device authorization request) that a provider's consent page
	// reads, such as "source". Parameters with an empty value are left out.
	// Parameters the protocol owns (client_id, redirect_uri, response_type,
	// scope, state, code_challenge, code_challenge_method) are refused.
	AuthParams url.Values

	// TokenParams are extra parameters of the flow's token requests (the
	// code exchange, the device polling), such as the resource indicator
	// of RFC 8707. Parameters with an empty value are left out; the ones
	// the protocol owns (AuthParams' list, and grant_type, code,
	// code_verifier, device_code, refresh_token) are refused.
	TokenParams url.Values

	// ClientRejected, if not nil, is called once when the token endpoint
	// answers the code exchange or the device polling with invalid_client
	// or unauthorized_client: the client is not (or no longer) registered,
	// and a provider that registered it dynamically can register again. It
	// runs before the flow ends, so it should be quick (a file write).
	ClientRejected func()

	// Unanswered, if not nil, is called once when a browser flow ends
	// without an authorization response: cancelled here, or expired while
	// waiting (not when the Manager closes). An authorization server shows
	// a person an unknown client_id instead of redirecting, so a provider
	// that registered its client dynamically can register again. It runs
	// after the flow ended, outside the Manager's lock.
	Unanswered func()

	// DeviceSupported reports whether the authorization server supports the
	// device flow. Set it from the server's metadata (RFC 8414), for example
	// with [github.com/memconnect/memconnect/authserver.Metadata.SupportsDeviceFlow], or from what
	// the provider knows for certain). The zero value fails closed: a
	// [MethodDevice] request is refused with [ErrDeviceUnsupported].
	DeviceSupported bool

	// Loopback, for a browser flow in the loopback redirect mode, is the
	// listener reserved for it ([Manager.ReserveLoopback]), so that the
	// client could be registered for its exact redirect URI first; nil
	// binds one at LoopbackAddr. Start owns it from then on: a flow that
	// is joined, or that cannot start, closes it.
	Loopback *Reservation

	// Binding, when not empty, binds a browser flow to the browser that
	// started it: the hex SHA-256 of a nonce that browser holds (a cookie).
	// A callback must present the nonce ([Manager.CallbackBound]); one
	// without it ends the flow with [CodeOtherBrowser] and exchanges no
	// code, so a link sent to someone else cannot link their account.
	Binding string

	// Issuer is the authorization server's issuer identifier, which the
	// authorization response's "iss" parameter must equal when it has one
	// (RFC 9207); "" when unknown, when a present "iss" is not checked.
	Issuer string

	// IssuerRequired reports that the server's metadata announce
	// authorization_response_iss_parameter_supported: a response without
	// "iss" is then refused (RFC 9207 section 2.4).
	IssuerRequired bool

	// ResumeData is given to [Config.Resume] when another instance
	// completes the flow, so that it completes as Complete would here:
	// the caller's options, encoded as it likes. It is kept in the clear
	// by a shared Store, so it must hold no secret; at most
	// [MaxResumeData] bytes.
	ResumeData []byte

	// DisplayName names the provider on the loopback listener's result page
	// ("Connected to Honcho"); "" leaves it out.
	DisplayName string

	// Complete stores the grant (for example with
	// [github.com/memconnect/memconnect/oauth.Grants.Install]).
	// It is called at most once per flow, with the token of the successful
	// exchange, before the flow becomes [StateConnected]; if it fails the flow
	// ends in [StateError] and no page says "Connected". It must not call
	// back into the [Manager] for the same key.
	Complete func(ctx context.Context, tok *oauth2.Token) error
}

// Flow is a snapshot of a flow, as reported by [Manager.Status]. A Flow
// holds nothing secret: the state parameter, PKCE verifier and device code
// never leave the manager and its [Store].
type Flow struct {
	ID     string
	State  State
	Method Method
	// Detail says, for a person, what is happening or what went wrong.
	Detail string
	// AuthorizeURL is the page to open: the authorization request of a
	// browser flow, or for a device flow verification_uri_complete when the
	// server sent one, else verification_uri.
	AuthorizeURL string
	// RedirectURI is the redirect URI of a browser flow.
	RedirectURI string
	// UserCode and VerificationURI are the user_code and verification_uri of
	// a device flow (RFC 8628 section 3.2).
	UserCode        string
	VerificationURI string
	// ExpiresAt is when a pending flow stops being answerable: the expiry of
	// the state parameter of a browser flow, of the device code of a device
	// flow.
	ExpiresAt time.Time
	// Binding is the digest of the browser binding of a browser flow
	// ([Request.Binding]), "" for none: no secret, and not for people. A
	// Start that joins a pending flow returns the flow's own, so that the
	// caller can tell whether the browser asking holds it.
	Binding string
}
