package oauthfake

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// authRequest is a validated authorization request (RFC 6749 section 4.1.1).
type authRequest struct {
	clientID    string
	redirectURI string
	state       string
	challenge   string // S256
	scope       string
	configPath  string    // shown on the consent page
	expiry      time.Time // of the consent page, while pending
}

// authCode is an authorization code and what it is bound to.
type authCode struct {
	req    *authRequest
	expiry time.Time
	used   bool
	grant  *grant // issued from this code, once redeemed
}

// handleAuthorize is the authorization endpoint.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	s.lastAuthorize = cloneValues(q)
	s.mu.Unlock()

	// Until client and redirect URI are known good, errors go to the person,
	// never to the redirect URI (RFC 6749 section 4.1.2.1).
	clientID := q.Get("client_id")
	if len(q["client_id"]) > 1 || !s.isClient(clientID) {
		s.errorPage(w, http.StatusBadRequest, "Unknown application",
			"The application asking for access (client_id) is not registered with this server, so it cannot be sent back.")
		return
	}
	redirectURI := q.Get("redirect_uri")
	if len(q["redirect_uri"]) > 1 || !s.redirectOK(clientID, redirectURI) {
		s.errorPage(w, http.StatusBadRequest, "Invalid return address",
			"The application's return address (redirect_uri) is not an http loopback address (127.0.0.1, [::1] or localhost), so it cannot be sent back.")
		return
	}

	state := q.Get("state")
	fail := func(code, desc string) {
		redirectTo(w, http.StatusFound, redirectURI, url.Values{"error": {code}, "error_description": {desc}}, state)
	}
	if p := repeated(q, "response_type", "state", "scope", "code_challenge", "code_challenge_method"); p != "" {
		fail("invalid_request", p+" is repeated")
		return
	}
	if rt := q.Get("response_type"); rt != "code" {
		fail("unsupported_response_type", "response_type must be code")
		return
	}
	if s.resource != "" && (len(q["resource"]) != 1 || q.Get("resource") != s.resource) {
		fail("invalid_target", "resource must be "+s.resource)
		return
	}
	if len(state) < 8 {
		fail("invalid_request", "state is required and must be at least 8 characters")
		return
	}
	challenge := q.Get("code_challenge")
	if challenge == "" {
		fail("invalid_request", "code_challenge is required (PKCE)")
		return
	}
	if q.Get("code_challenge_method") != "S256" {
		fail("invalid_request", "code_challenge_method must be S256")
		return
	}
	if !validPKCEValue(challenge) {
		fail("invalid_request", "code_challenge is malformed")
		return
	}

	req := &authRequest{
		clientID:    clientID,
		redirectURI: redirectURI,
		state:       state,
		challenge:   challenge,
		scope:       s.scopeOrDefault(q.Get("scope")),
		configPath:  q.Get("config_path"),
	}
	switch s.consent {
	case consentAutoApprove:
		s.approve(w, http.StatusFound, req)
	case consentAutoDeny:
		deny(w, http.StatusFound, req)
	default:
		id := randomString()
		s.mu.Lock()
		req.expiry = s.now().Add(consentTTL)
		s.requests[id] = req
		s.mu.Unlock()
		s.renderPage(w, http.StatusOK, consentTemplate, consentData{
			Title:      "Allow access?",
			ClientName: s.clientName(req.clientID),
			ClientID:   req.clientID,
			Scope:      req.scope,
			ConfigPath: s.shownConfigPath(req.configPath),
			ReturnTo:   returnHost(req.redirectURI),
			RequestID:  id,
		})
	}
}

// handleDecision receives the consent page's form.
func (s *Server) handleDecision(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, http.StatusBadRequest, "Invalid request", "The form could not be read.")
		return
	}
	decision := r.PostForm.Get("decision")
	if decision != "approve" && decision != "deny" {
		s.errorPage(w, http.StatusBadRequest, "Invalid request", "Choose Approve or Deny.")
		return
	}
	id := r.PostForm.Get("request")
	s.mu.Lock()
	req := s.requests[id]
	delete(s.requests, id)
	expired := req != nil && !s.now().Before(req.expiry)
	s.mu.Unlock()
	if req == nil || expired {
		s.errorPage(w, http.StatusBadRequest, "Request expired",
			"This sign-in request has expired or was already answered. Start again from the application.")
		return
	}
	if decision == "approve" {
		s.approve(w, http.StatusSeeOther, req)
		return
	}
	deny(w, http.StatusSeeOther, req)
}

// approve issues an authorization code for req and sends the person back.
func (s *Server) approve(w http.ResponseWriter, status int, req *authRequest) {
	code := randomString()
	s.mu.Lock()
	s.codes[code] = &authCode{req: req, expiry: s.now().Add(codeTTL)}
	s.mu.Unlock()
	redirectTo(w, status, req.redirectURI, url.Values{"code": {code}}, req.state)
}

// deny sends the person back with error=access_denied.
func deny(w http.ResponseWriter, status int, req *authRequest) {
	redirectTo(w, status, req.redirectURI, url.Values{
		"error":             {"access_denied"},
		"error_description": {"the resource owner denied the request"},
	}, req.state)
}

// redirectTo redirects to the validated redirectURI with params and state
// added to its query.
func redirectTo(w http.ResponseWriter, status int, redirectURI string, params url.Values, state string) {
	u, _ := url.Parse(redirectURI) // validated by validRedirectURI
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	if state != "" {
		q.Set("state", state)
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Location", u.String())
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
}

// validRedirectURI reports whether raw is a redirect URI the server accepts:
// an http URI whose host is the loopback 127.0.0.1, [::1] or localhost, on
// any port and path, without user info or fragment (RFC 8252 section 7.3,
// RFC 6749 section 3.1.2).
func validRedirectURI(raw string) bool {
	if strings.Contains(raw, "#") {
		return false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Opaque != "" || u.User != nil {
		return false
	}
	switch u.Hostname() {
	case "127.0.0.1", "localhost":
		if strings.HasPrefix(u.Host, "[") {
			return false
		}
	case "::1":
	default:
		return false
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return false
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return false
	}
	return true
}

// returnHost is the host part of a redirect URI, shown on the consent page.
func returnHost(redirectURI string) string {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return ""
	}
	return u.Host
}

// shownConfigPath is the config_path as the consent page shows it: with "~"
// expanded when [WithUserHome] says what it stands for.
func (s *Server) shownConfigPath(p string) string {
	if s.userHome == "" {
		return p
	}
	if p == "~" {
		return s.userHome
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		return filepath.Join(s.userHome, filepath.FromSlash(rest))
	}
	return p
}
