package handlers

import (
	"net/http"

	"github.com/go-chi/render"

	"github.com/memconnect/memconnect/internal/apierr"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/provider"
)

// connectRequest is the body of POST connect; every field is optional and
// an empty body is the same as {}:
//
//	{"method": "browser", "source": "hermes-desktop", "redirect": "loopback"}
//	{"method": "apikey", "api_key": "…"}
//
// Unknown fields are refused with 400 invalid_request.
type connectRequest struct {
	// Method is "browser" (the default: authorization code with PKCE),
	// "device" (RFC 8628) or "apikey".
	Method string `json:"method"`
	// APIKey is the key of the "apikey" method, required with it and
	// refused with the others. It is never echoed, logged or returned.
	APIKey string `json:"api_key"`
	// Source names the surface that starts the flow, such as
	// "hermes-desktop"; it is passed to the consent page. At most 64
	// letters, digits, '.', '_' or '-'.
	Source string `json:"source"`
	// Redirect is where a browser flow's authorization response goes:
	// "loopback" (a one-shot listener on 127.0.0.1) or "callback" (the
	// router's callback route; needs a configured callback base URL). The
	// default is "callback" when a callback base URL is configured, else
	// "loopback". It must be left out for a device flow.
	Redirect string `json:"redirect"`
}

var _ render.Binder = (*connectRequest)(nil)

// maxSourceLen bounds [connectRequest.Source].
const maxSourceLen = 64

// UnmarshalJSON decodes a connect request, refusing unknown fields
// ([json.Decoder.DisallowUnknownFields]), so that a misspelt field is an
// error instead of a silent default.
func (c *connectRequest) UnmarshalJSON(data []byte) error {
	type plain connectRequest // without this method
	var p plain
	if err := strictUnmarshal(data, &p); err != nil {
		return err
	}
	*c = connectRequest(p)
	return nil
}

// Bind implements [render.Binder]: it validates the fields.
func (c *connectRequest) Bind(r *http.Request) error {
	switch provider.AuthMethod(c.Method) {
	case "", provider.AuthBrowser, provider.AuthDevice:
		if c.APIKey != "" {
			return apierr.Errorf(apierr.CodeInvalidRequest, "The field \"api_key\" goes with the method \"apikey\" only.")
		}
	case provider.AuthKey:
		if c.APIKey == "" {
			return apierr.Errorf(apierr.CodeInvalidRequest, "The method \"apikey\" needs the field \"api_key\": the key to store.")
		}
		if c.Redirect != "" || c.Source != "" {
			return apierr.Errorf(apierr.CodeInvalidRequest, "The fields \"redirect\" and \"source\" apply to the browser and device methods only; leave them out for \"apikey\".")
		}
	default:
		return apierr.Errorf(apierr.CodeInvalidRequest, "The field \"method\" must be \"browser\", \"device\" or \"apikey\".")
	}
	switch flow.RedirectMode(c.Redirect) {
	case "", flow.RedirectLoopback, flow.RedirectCallback:
	default:
		return apierr.Errorf(apierr.CodeInvalidRequest, "The field \"redirect\" must be \"loopback\" or \"callback\".")
	}
	if c.Redirect != "" && flow.Method(c.Method) == flow.MethodDevice {
		return apierr.Errorf(apierr.CodeInvalidRequest, "The field \"redirect\" applies to the browser method only; leave it out for \"device\".")
	}
	if !validSource(c.Source) {
		return apierr.Errorf(apierr.CodeInvalidRequest, "The field \"source\" must be at most %d letters, digits, '.', '_' or '-'.", maxSourceLen)
	}
	return nil
}

// validSource reports whether s is empty or at most maxSourceLen of
// [A-Za-z0-9._-].
func validSource(s string) bool {
	if len(s) > maxSourceLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Connect serves POST /profiles/{profile}/providers/{provider}/connect. It
// starts a browser or device flow, or joins the one already pending with
// the same method and redirect mode, and answers 202 Accepted with the
// status body: flow.authorize_url is the page to open, and for a device
// flow flow.user_code and flow.verification_uri say what to enter where.
// The flow then completes in the background; poll GET status.
//
// The "apikey" method stores the key at once and answers 200 with the
// status (auth "apikey"); a key the provider's server refuses, or a
// malformed one, is 400 invalid_request.
//
// A flow of another method or redirect mode that is pending is a 409
// conflict (cancel it first); a provider without OAuth, or without the
// method, is 404 unsupported; a device flow the provider's server refuses
// to start is 502 upstream_error.
func (h *Handlers) Connect(w http.ResponseWriter, r *http.Request) {
	profile, prov, err := h.access(r, pathParams, ActionConnect)
	if err != nil {
		renderError(w, r, err)
		return
	}
	var body connectRequest
	if err := bind(r, &body); err != nil {
		renderError(w, r, err)
		return
	}
	if provider.AuthMethod(body.Method) == provider.AuthKey {
		rep, err := h.conn.ConnectAPIKey(r.Context(), profile, prov, body.APIKey)
		if err != nil {
			renderError(w, r, err)
			return
		}
		respond(w, r, &statusResponse{StatusReport: rep, HTTPStatusCode: http.StatusOK})
		return
	}
	req := provider.ConnectRequest{Method: flow.Method(body.Method), Source: body.Source, Redirect: flow.RedirectMode(body.Redirect),
		RequireBinding: underSession(r)}
	var nonce string
	if req.RequireBinding || (req.Method != flow.MethodDevice && req.Redirect != flow.RedirectLoopback && startedByBrowser(r)) {
		nonce = newNonce()
		req.Binding = digest(nonce)
	}
	rep, err := h.conn.Connect(r.Context(), profile, prov, req)
	if err != nil {
		renderError(w, r, err)
		return
	}
	if rep.Flow != nil && req.Binding != "" && rep.Flow.Binding == req.Binding {
		// A new flow, bound to this browser's new nonce. A flow it
		// joined keeps its binding: the browser that started it keeps
		// its cookie, and any other gets none.
		setBindingCookie(w, rep.Flow.RedirectURI, nonce)
	}
	respond(w, r, &statusResponse{StatusReport: rep, HTTPStatusCode: http.StatusAccepted})
}
