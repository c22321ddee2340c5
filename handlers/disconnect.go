package handlers

import (
	"net/http"
	"time"

	"github.com/go-chi/render"
)

// disconnectResponse is the body of DELETE connection:
//
//	{"disconnected": true, "removed": true, "revoked": true, "revoke_error": null}
type disconnectResponse struct {
	// Disconnected is always true: the profile holds no OAuth grant for
	// the provider any more.
	Disconnected bool `json:"disconnected"`
	// Removed reports that this request removed a grant; false when there
	// was none (the request is idempotent).
	Removed bool `json:"removed"`
	// Revoked reports that the provider's server confirmed the revocation
	// of the refresh token (RFC 7009).
	Revoked bool `json:"revoked"`
	// RevokeError says why the grant was not revoked at the server (the
	// revocation failed, or the server offers none); null when it was, or
	// when nothing was removed. It never holds a token.
	RevokeError *string `json:"revoke_error"`
	// ValidUntil, when the grant was removed but not revoked, is when its
	// access token stops working at the server; absent otherwise.
	ValidUntil *time.Time `json:"valid_until,omitempty"`
	// Message, when the grant was removed but not revoked, says so in one
	// sentence for a person; absent otherwise.
	Message string `json:"message,omitempty"`
}

var _ render.Renderer = (*disconnectResponse)(nil)

// Render implements [render.Renderer]; the status is 200.
func (d *disconnectResponse) Render(w http.ResponseWriter, r *http.Request) error {
	render.Status(r, http.StatusOK)
	return nil
}

// Disconnect serves DELETE /profiles/{profile}/providers/{provider}/connection.
// It removes the profile's grant from the config file, keeping every other
// key and host, and revokes the refresh token at the provider's server when
// it can (best effort: a failed revocation is reported in revoke_error and
// the grant stays removed). A profile that connects with its own API key
// has that key removed instead. It answers 200 with a [disconnectResponse].
//
// With nothing to remove it answers 200 with "removed": false, so that a
// repeated request (a double click, two windows) is not an error; but when
// the profile connects with an API key it does not own (the file's root
// key, or the environment's), which this route does not remove, it answers
// 409 conflict saying so. A provider without sign-in methods is 404
// unsupported.
func (h *Handlers) Disconnect(w http.ResponseWriter, r *http.Request) {
	profile, prov, err := h.access(r, pathParams, ActionDisconnect)
	if err != nil {
		renderError(w, r, err)
		return
	}
	res, err := h.conn.Disconnect(r.Context(), profile, prov)
	if err != nil {
		renderError(w, r, err)
		return
	}
	resp := &disconnectResponse{Disconnected: true, Removed: res.Removed, Revoked: res.Revoked}
	if res.RevokeError != "" {
		msg := res.RevokeError
		resp.RevokeError = &msg
	}
	if !res.ValidUntil.IsZero() {
		v := res.ValidUntil.UTC().Truncate(time.Second)
		resp.ValidUntil = &v
	}
	resp.Message = res.NotRevokedSentence(h.displayName(prov))
	respond(w, r, resp)
}
