package handlers

import (
	"net/http"

	"github.com/go-chi/render"

	"github.com/memconnect/memconnect/provider"
)

// statusResponse is the status body, [provider.StatusReport]: the
// answer of GET status, POST connect and POST cancel. Its JSON is that of
// the embedded [provider.StatusReport]; HTTPStatusCode is not part of it.
type statusResponse struct {
	provider.StatusReport
	// HTTPStatusCode is the response status: 200, or 202 for a connect
	// request that started (or joined) a flow. Zero means 200.
	HTTPStatusCode int `json:"-"`
}

var _ render.Renderer = (*statusResponse)(nil)

// Render implements [render.Renderer]: it sets the status.
func (s *statusResponse) Render(w http.ResponseWriter, r *http.Request) error {
	code := s.HTTPStatusCode
	if code == 0 {
		code = http.StatusOK
	}
	render.Status(r, code)
	return nil
}

// Status serves GET /profiles/{profile}/providers/{provider}/status: the
// profile's connection to the provider and its sign-in flow, if any.
func (h *Handlers) Status(w http.ResponseWriter, r *http.Request) {
	if rep, ok := h.status(w, r, pathParams, ActionStatus); ok {
		respond(w, r, &statusResponse{StatusReport: rep})
	}
}

// status returns the status of the profile and provider params reads from
// r, or answers the error and returns false.
func (h *Handlers) status(w http.ResponseWriter, r *http.Request, params func(*http.Request) (string, string, error), action Action) (provider.StatusReport, bool) {
	profile, prov, err := h.access(r, params, action)
	if err == nil {
		var rep provider.StatusReport
		if rep, err = h.conn.Status(r.Context(), profile, prov); err == nil {
			return rep, true
		}
	}
	renderError(w, r, err)
	return provider.StatusReport{}, false
}

// Cancel serves POST /profiles/{profile}/providers/{provider}/cancel: it
// cancels the pending flow, freeing its loopback port, and answers 200 with
// the status body. Cancelling when nothing is pending is not an error, so
// the request is idempotent. A flow whose callback already arrived can no
// longer be cancelled; the status then shows how it ends.
func (h *Handlers) Cancel(w http.ResponseWriter, r *http.Request) {
	profile, prov, err := h.access(r, pathParams, ActionCancel)
	if err != nil {
		renderError(w, r, err)
		return
	}
	rep, err := h.conn.Cancel(r.Context(), profile, prov)
	if err != nil {
		renderError(w, r, err)
		return
	}
	respond(w, r, &statusResponse{StatusReport: rep})
}
