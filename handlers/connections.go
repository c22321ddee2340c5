package handlers

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/render"

	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/internal/apierr"
	"github.com/memconnect/memconnect/internal/connsession"
	"github.com/memconnect/memconnect/provider"
)

// ActionList is the action of GET /connections, whose [Access] names the
// filters (Profile and Provider empty for all).
const ActionList Action = "list"

// connectionsResponse is the body of GET /connections:
//
//	{"connections": [{"profile": "default", "provider": "honcho", "auth": "oauth",
//	  "reauth_required": false, "expires_at": "2026-11-28T22:00:00Z", "refreshable": true}],
//	 "next": null}
type connectionsResponse struct {
	Connections []connectionJSON `json:"connections"`
	// Next is the cursor of the next page (pass it as ?after=), or null.
	Next *string `json:"next"`
}

type connectionJSON struct {
	Profile        string  `json:"profile"`
	Provider       string  `json:"provider"`
	Auth           string  `json:"auth"`
	ReauthRequired bool    `json:"reauth_required"`
	ExpiresAt      *string `json:"expires_at"` // null for an API key
	Refreshable    *bool   `json:"refreshable"`
}

var _ render.Renderer = (*connectionsResponse)(nil)

// Render implements [render.Renderer]; the status is 200.
func (c *connectionsResponse) Render(w http.ResponseWriter, r *http.Request) error {
	render.Status(r, http.StatusOK)
	return nil
}

// Connections serves GET /connections: the host's list of the connections
// the router can see, for an operator who looks for the ones that need a
// person (reauth_required). Query: profile, provider (filters), after (the
// cursor of the previous page's next) and limit (at most 500). It asks the
// authorization hook with [ActionList], and refuses a connect session.
func (h *Handlers) Connections(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if _, ok := connsession.FromContext(r.Context()); ok {
		renderError(w, r, apierr.Errorf(apierr.CodeForbidden, "A connect session cannot list connections: it is for one profile."))
		return
	}
	f := provider.ConnectionFilter{Profile: q.Get("profile"), Provider: q.Get("provider"), After: q.Get("after")}
	if f.After != "" {
		if _, err := connid.ParseCursor(f.After); err != nil {
			renderError(w, r, apierr.Errorf(apierr.CodeInvalidRequest, "The after cursor must be a previous page's next: a profile and a provider joined by a slash."))
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > provider.MaxConnectionsPage {
			renderError(w, r, apierr.Errorf(apierr.CodeInvalidRequest, "The limit must be a number from 1 to %d.", provider.MaxConnectionsPage))
			return
		}
		f.Limit = n
	}
	if h.authorize != nil {
		if err := h.authorize(r, Access{Profile: f.Profile, Provider: f.Provider, Action: ActionList}); err != nil {
			renderError(w, r, refusal(err))
			return
		}
	}
	list, next, err := h.conn.Connections(r.Context(), f)
	if err != nil {
		renderError(w, r, err)
		return
	}
	resp := &connectionsResponse{Connections: make([]connectionJSON, 0, len(list))}
	for _, c := range list {
		j := connectionJSON{Profile: c.Profile, Provider: c.Provider, Auth: c.Auth, ReauthRequired: c.ReauthRequired}
		if t := c.Token; t != nil {
			at := t.ExpiresAt.UTC().Truncate(time.Second).Format(time.RFC3339)
			refreshable := t.Refreshable
			j.ExpiresAt, j.Refreshable = &at, &refreshable
		}
		resp.Connections = append(resp.Connections, j)
	}
	if next != "" {
		resp.Next = &next
	}
	respond(w, r, resp)
}
