package handlers

import (
	"context"
	"net/http"
	"strings"

	"github.com/go-chi/render"
	"github.com/rs/zerolog/hlog"

	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/provider"
)

// Option configures [Handlers].
type Option func(*Handlers)

// WithOpenBrowser sets how the Hermes desktop's start route opens the
// sign-in page: only the host knows whether it runs on the person's
// desktop. Without it the route opens nothing, and the client opens the
// answer's authorize_url itself.
func WithOpenBrowser(open func(ctx context.Context, url string) error) Option {
	return func(h *Handlers) { h.openBrowser = open }
}

// hermesStatus is the body of the routes the Hermes desktop calls (the
// Python router's shape), plus authorize_url:
//
//	{"state": "pending", "detail": "Waiting for the browser", "connected": false,
//	 "auth": null, "authorize_url": "https://..."}
type hermesStatus struct {
	// State is "idle", "pending", "connected" or "error".
	State  string `json:"state"`
	Detail string `json:"detail"`
	// Connected and Auth are those of the status body; Auth is null when
	// not connected.
	Connected bool    `json:"connected"`
	Auth      *string `json:"auth"`
	// AuthorizeURL is the page to open while a browser flow is pending.
	AuthorizeURL string `json:"authorize_url,omitempty"`
}

var _ render.Renderer = hermesStatus{}

// Render implements [render.Renderer].
func (hermesStatus) Render(http.ResponseWriter, *http.Request) error { return nil }

// newHermesStatus words rep as the Hermes desktop reads it: the flow's
// state while it is pending or just ended in an error, else whether the
// profile is connected.
func newHermesStatus(rep provider.StatusReport) hermesStatus {
	s := hermesStatus{Connected: rep.Connected}
	if rep.Auth != "" {
		auth := rep.Auth
		s.Auth = &auth
	}
	f := rep.Flow
	switch {
	case f != nil && (f.State == flow.StatePending || f.State == flow.StateError):
		s.State, s.Detail = string(f.State), f.Detail
		if f.State == flow.StatePending {
			s.AuthorizeURL = f.AuthorizeURL
		}
	case rep.Connected:
		s.State, s.Detail = "connected", "Connected"
		if rep.ReauthRequired {
			s.State, s.Detail = "error", "Sign in again"
		}
	default:
		s.State, s.Detail = "idle", "Not connected"
	}
	return s
}

// hermesParams returns the ?profile= query parameter, "" and "current"
// meaning the default profile, and the {provider} path parameter.
func hermesParams(r *http.Request) (profile, providerName string, err error) {
	profile = r.URL.Query().Get("profile")
	if profile == "" || profile == "current" {
		profile = provider.DefaultProfile
	}
	if err := provider.ValidateProfileName(profile); err != nil {
		return "", "", err
	}
	if providerName, err = providerParam(r); err != nil {
		return "", "", err
	}
	return profile, providerName, nil
}

// HermesOAuthStart serves POST /providers/{provider}/oauth/start?profile=P,
// the route the Hermes desktop calls to connect: it starts (or joins) a
// browser flow over the loopback redirect, opens the sign-in page with
// the host's [WithOpenBrowser] hook, and answers 200 with the Hermes
// status body. Deprecated: it exists so that a Hermes desktop works
// unchanged; new clients use POST connect.
func (h *Handlers) HermesOAuthStart(w http.ResponseWriter, r *http.Request) {
	profile, prov, err := h.access(r, hermesParams, ActionConnect)
	if err != nil {
		renderError(w, r, err)
		return
	}
	rep, err := h.conn.Connect(r.Context(), profile, prov, provider.ConnectRequest{
		Method: flow.MethodBrowser, Redirect: flow.RedirectLoopback, Source: "hermes-desktop", RequireBinding: underSession(r),
	})
	if err != nil {
		renderError(w, r, err)
		return
	}
	s := newHermesStatus(rep)
	if h.openBrowser != nil && s.AuthorizeURL != "" {
		if err := h.openBrowser(r.Context(), s.AuthorizeURL); err != nil {
			// The hook's error may quote the URL, whose state is a secret.
			msg := strings.ReplaceAll(err.Error(), s.AuthorizeURL, "<authorize_url>")
			hlog.FromRequest(r).Warn().Str("error", msg).Msg("the host could not open the sign-in page")
			s.Detail = "Open the sign-in page yourself: the browser could not be opened"
		}
	}
	respond(w, r, s)
}

// HermesOAuthStatus serves GET /providers/{provider}/oauth/status?profile=P,
// the route the Hermes desktop polls: the Hermes status body. Deprecated:
// new clients use GET status.
func (h *Handlers) HermesOAuthStatus(w http.ResponseWriter, r *http.Request) {
	if rep, ok := h.status(w, r, hermesParams, ActionStatus); ok {
		respond(w, r, newHermesStatus(rep))
	}
}
