package handlers

import (
	"net/http"

	"github.com/go-chi/render"

	"github.com/memconnect/memconnect/oauth/authserver"
)

// clientMetadataResponse is a Client ID Metadata Document.
type clientMetadataResponse struct {
	authserver.ClientMetadataDocument
}

var _ render.Renderer = (*clientMetadataResponse)(nil)

// Render implements [render.Renderer]; the status is 200.
func (c *clientMetadataResponse) Render(w http.ResponseWriter, r *http.Request) error {
	render.Status(r, http.StatusOK)
	return nil
}

// ClientMetadata serves GET /profiles/{profile}/providers/{provider}/client-metadata:
// the Client ID Metadata Document whose URL is the client_id of the
// profile's sign-ins to an MCP-style provider whose authorization server
// takes such documents. The authorization server fetches it, so it needs
// no session token; it holds nothing secret. A provider without one, or a
// router without an https callback base URL, is 404 unsupported.
func (h *Handlers) ClientMetadata(w http.ResponseWriter, r *http.Request) {
	profile, prov, err := pathParams(r)
	if err != nil {
		renderError(w, r, err)
		return
	}
	doc, err := h.conn.ClientMetadata(profile, prov)
	if err != nil {
		renderError(w, r, err)
		return
	}
	respond(w, r, &clientMetadataResponse{doc})
}
