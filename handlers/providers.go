package handlers

import (
	"net/http"
	"slices"

	"github.com/go-chi/render"

	"github.com/memconnect/memconnect/internal/connsession"
	"github.com/memconnect/memconnect/provider"
)

// providersResponse is the body of GET /providers:
//
//	{"providers": [{"name": "honcho", "display_name": "Honcho",
//	                "auth_methods": ["browser", "device"]}]}
//
// Providers come in the order the host registered them: its first is the
// one a Connect page offers first.
type providersResponse struct {
	// Providers are the registered providers; never null.
	Providers []providerInfo `json:"providers"`
}

// providerInfo describes one registered provider.
type providerInfo struct {
	// Name is the provider's identifier in URLs.
	Name string `json:"name"`
	// DisplayName is the provider's name for people.
	DisplayName string `json:"display_name"`
	// AuthMethods lists the sign-in methods, in order of preference; an
	// empty list (never null) means the provider cannot be connected
	// with OAuth.
	AuthMethods []provider.AuthMethod `json:"auth_methods"`
}

var _ render.Renderer = (*providersResponse)(nil)

// Render implements [render.Renderer]; the status is 200.
func (p *providersResponse) Render(w http.ResponseWriter, r *http.Request) error {
	render.Status(r, http.StatusOK)
	return nil
}

// ListProviders serves GET /providers: the registered providers and their
// sign-in methods. Under a connect session for some providers, only those:
// a Connect page offers nothing the session cannot connect.
func (h *Handlers) ListProviders(w http.ResponseWriter, r *http.Request) {
	list := h.conn.Registry.List()
	if cs, ok := connsession.FromContext(r.Context()); ok && len(cs.Providers) > 0 {
		list = slices.DeleteFunc(list, func(p provider.Provider) bool { return !slices.Contains(cs.Providers, p.Name()) })
	}
	resp := &providersResponse{Providers: make([]providerInfo, 0, len(list))}
	all := h.conn.MethodsContext(r.Context(), list)
	for i, p := range list {
		methods := append([]provider.AuthMethod{}, all[i]...)
		resp.Providers = append(resp.Providers, providerInfo{
			Name:        p.Name(),
			DisplayName: p.DisplayName(),
			AuthMethods: methods,
		})
	}
	respond(w, r, resp)
}
