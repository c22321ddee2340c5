package oauth

import (
	"context"
	"encoding/json"
	"net/url"
	"time"

	"golang.org/x/oauth2"
)

// FlowMethod is how a person authorizes a flow.
type FlowMethod string

// Flow methods.
const (
	// MethodBrowser is the authorization code grant with PKCE S256
	// (RFC 6749 section 4.1, RFC 7636) in a browser on this machine.
	MethodBrowser FlowMethod = "browser"
	// MethodDevice is the device authorization grant (RFC 8628): the person
	// enters a short user code on another device.
	MethodDevice FlowMethod = "device"
)

// FlowState is where a flow stands, as reported by [FlowManager.Status].
type FlowState string

// Flow states. A key with no flow is [FlowIdle]; [FlowManager.Start] makes it
// [FlowPending]; it ends [FlowConnected] (the grant is stored) or [FlowError];
// both revert to [FlowIdle] after a while (see [WithFlowErrorReset] and
// [WithFlowConnectedReset]).
const (
	FlowIdle      FlowState = "idle"
	FlowPending   FlowState = "pending"
	FlowConnected FlowState = "connected"
	FlowError     FlowState = "error"
)

// RedirectMode is where the authorization server sends the browser back to
// after consent (the redirect URI of RFC 6749 section 3.1.2).
type RedirectMode string

// Redirect modes of a browser flow.
const (
	// RedirectLoopback runs a one-shot listener on a loopback IP literal
	// (RFC 8252 section 7.3); see [WithLoopbackAddr].
	RedirectLoopback RedirectMode = "loopback"
	// RedirectCallback uses [FlowRequest.CallbackURL], a route of the host
	// application that hands the query to [FlowManager.Callback].
	RedirectCallback RedirectMode = "callback"
)

// FlowKey names the one flow a [FlowManager] may have pending for a profile
// and a provider.
type FlowKey struct {
	Profile  string
	Provider string
}

// FlowRequest describes a flow to start with [FlowManager.Start].
type FlowRequest struct {
	// Key binds the flow, and its state parameter, to a profile and provider.
	Key FlowKey

	// Method is the authorization method; empty means [MethodBrowser].
	Method FlowMethod

	// Redirect is the redirect mode of a browser flow; empty means
	// [RedirectCallback] when CallbackURL is set, else [RedirectLoopback].
	Redirect RedirectMode

	// CallbackURL is the redirect URI for [RedirectCallback]. The caller
	// builds it from configuration (never from a request's Host header); it
	// must be an absolute http or https URL.
	CallbackURL string

	// Config holds ClientID, Endpoint (AuthURL and TokenURL, DeviceAuthURL
	// for a device flow) and Scopes. The manager works on a copy: it sets
	// RedirectURL and uses [oauth2.AuthStyleInParams] (client_id in the form,
	// as public clients do, RFC 6749 section 2.3.1). A public client has no
	// ClientSecret.
	Config oauth2.Config

	// AuthParams are extra parameters of the authorization request (and of
	// the device authorization request), such as "source" or "config_path".
	// Parameters with an empty value are left out. Parameters the protocol
	// owns (client_id, redirect_uri, response_type, scope, state,
	// code_challenge, code_challenge_method) are refused. An absolute
	// "config_path" is reduced to its base name; pass [DisplayPath] output.
	AuthParams url.Values

	// DeviceSupported reports whether the authorization server supports the
	// device flow. Set it from [Metadata.SupportsDeviceFlow] (or from what
	// the provider knows for certain). The zero value fails closed: a
	// [MethodDevice] request is refused with [ErrDeviceFlowUnsupported].
	DeviceSupported bool

	// DisplayName names the provider on the loopback listener's result page
	// ("Connected to Honcho"); "" leaves it out.
	DisplayName string

	// Complete installs the grant (for example with [Store.InstallGrant]).
	// It is called at most once per flow, with the token of the successful
	// exchange, before the flow becomes [FlowConnected]; if it fails the flow
	// ends in [FlowError] and no page says "Connected". It must not call
	// back into the [FlowManager] for the same key.
	Complete func(ctx context.Context, tok *oauth2.Token) error
}

// Flow is a snapshot of a flow, as reported by [FlowManager.Status]. Its JSON
// form is DESIGN.md's "flow" object: snake_case names, null for absent
// optional fields, expires_at in RFC 3339 UTC seconds. A Flow holds nothing
// secret: the state parameter, PKCE verifier and device code never leave the
// manager.
type Flow struct {
	ID     string
	State  FlowState
	Method FlowMethod
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
}

// flowJSON is the wire form of a [Flow].
type flowJSON struct {
	ID              *string    `json:"id"`
	State           FlowState  `json:"state"`
	Method          *string    `json:"method"`
	Detail          *string    `json:"detail"`
	AuthorizeURL    *string    `json:"authorize_url"`
	RedirectURI     *string    `json:"redirect_uri"`
	UserCode        *string    `json:"user_code"`
	VerificationURI *string    `json:"verification_uri"`
	ExpiresAt       *time.Time `json:"expires_at"`
}

// MarshalJSON encodes f as DESIGN.md's "flow" object.
func (f Flow) MarshalJSON() ([]byte, error) {
	str := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	w := flowJSON{
		ID:              str(f.ID),
		State:           f.State,
		Method:          str(string(f.Method)),
		Detail:          str(f.Detail),
		AuthorizeURL:    str(f.AuthorizeURL),
		RedirectURI:     str(f.RedirectURI),
		UserCode:        str(f.UserCode),
		VerificationURI: str(f.VerificationURI),
	}
	if w.State == "" {
		w.State = FlowIdle
	}
	if !f.ExpiresAt.IsZero() {
		t := f.ExpiresAt.UTC().Truncate(time.Second)
		w.ExpiresAt = &t
	}
	// Without HTML escaping, so that authorize_url keeps its "&" and can be
	// copied from a terminal.
	return marshalValue(w)
}

// UnmarshalJSON decodes the form written by [Flow.MarshalJSON]; nulls become
// zero values.
func (f *Flow) UnmarshalJSON(b []byte) error {
	var w flowJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	val := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	*f = Flow{
		ID:              val(w.ID),
		State:           w.State,
		Method:          FlowMethod(val(w.Method)),
		Detail:          val(w.Detail),
		AuthorizeURL:    val(w.AuthorizeURL),
		RedirectURI:     val(w.RedirectURI),
		UserCode:        val(w.UserCode),
		VerificationURI: val(w.VerificationURI),
	}
	if w.ExpiresAt != nil {
		f.ExpiresAt = *w.ExpiresAt
	}
	return nil
}
