package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/provider"
)

// connectSessions is the example host's own route, outside the mount and
// guarded as the API is ([memconnect.Router.Guard]): POST /admin/connect-sessions with
// {"profile": "work", "providers": ["honcho"], "ttl": "15m"} (providers
// and ttl optional) answers {"token": "...", "expires_at": "..."}, a
// connect session to hand a browser (the Connect page takes it as
// /#session=TOKEN).
func connectSessions(memory *memconnect.Router) http.Handler {
	fail := func(w http.ResponseWriter, status int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": http.StatusText(status), "message": msg})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Profile   string   `json:"profile"`
			Providers []string `json:"providers"`
			TTL       string   `json:"ttl"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || req.Profile == "" {
			fail(w, http.StatusBadRequest, `The body is {"profile": "work", "providers": ["honcho"], "ttl": "15m"}; profile is required.`)
			return
		}
		var ttl time.Duration
		if req.TTL != "" {
			d, err := time.ParseDuration(req.TTL)
			if err != nil {
				fail(w, http.StatusBadRequest, `"ttl" is a duration such as "15m".`)
				return
			}
			ttl = d
		}
		tok, exp, err := memory.MintConnectSession(req.Profile, req.Providers, ttl)
		switch {
		case errors.Is(err, provider.ErrProfileNotFound):
			fail(w, http.StatusNotFound, fmt.Sprintf("There is no profile %q: create it first.", req.Profile))
			return
		case err != nil:
			fail(w, http.StatusBadRequest, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(map[string]string{"token": tok, "expires_at": exp.UTC().Format(time.RFC3339)})
	})
}
