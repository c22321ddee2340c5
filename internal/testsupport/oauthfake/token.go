package oauthfake

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// tokenResponse is a successful access token response (RFC 6749 section 5.1).
type tokenResponse struct {
	AccessToken  string          `json:"access_token"`
	TokenType    string          `json:"token_type"`
	ExpiresIn    int64           `json:"expires_in"`
	RefreshToken string          `json:"refresh_token,omitempty"`
	Scope        string          `json:"scope"`
	Config       json.RawMessage `json:"config,omitempty"`
}

// oauthError is an error response (RFC 6749 section 5.2).
type oauthError struct {
	status int
	code   string
	desc   string
}

func errInvalidRequest(desc string) *oauthError {
	return &oauthError{http.StatusBadRequest, "invalid_request", desc}
}

func errInvalidGrant(desc string) *oauthError {
	return &oauthError{http.StatusBadRequest, "invalid_grant", desc}
}

func errInvalidClient() *oauthError {
	return &oauthError{http.StatusUnauthorized, "invalid_client", "unknown client: a registered public client sends its client_id in the form body"}
}

func (e *oauthError) write(w http.ResponseWriter) {
	writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.desc})
}

// SetTokenHook installs h, which is called first for every request to the
// token endpoint, counted in TokenRequests but otherwise untouched. If h
// returns true it has answered the request and the server does nothing
// more; if it returns false the request proceeds normally (h may read the
// body, which is replayed, but must not write anything then).
//
// Use it for fault injection: answer a 503, delay, block until
// r.Context() is done (the client gave up, or [Server.Close] was called), or
// drop the connection with panic([http.ErrAbortHandler]). The body has been
// read into memory before h runs, so the server notices a client that hangs
// up. h runs on the request's goroutine with no lock held, so it may call
// the Server's methods; it must be safe for concurrent use when requests
// are. A nil h removes the hook.
func (s *Server) SetTokenHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenHook = h
}

// FailNextTokenRequests makes the next n token endpoint requests (after any
// token hook declined them) answer status with the JSON body {"error":code},
// without looking at the request. An empty code answers a plain-text body
// instead, like a proxy's error page. n <= 0 cancels pending failures.
func (s *Server) FailNextTokenRequests(n, status int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failStatus, s.failCode = max(n, 0), status, code
}

// handleToken is the token endpoint (RFC 6749 section 3.2).
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.TokenRequests++
	hook := s.tokenHook
	s.mu.Unlock()
	// Buffer the body: reading it to the end lets the server notice a client
	// that hangs up (cancelling r.Context()), and the hook can still read it.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxForm))
	if err != nil {
		errInvalidRequest("the request body could not be read").write(w)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if hook != nil && hook(w, r) {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))

	s.mu.Lock()
	if s.failN > 0 {
		s.failN--
		status, code := s.failStatus, s.failCode
		s.mu.Unlock()
		if code == "" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(http.StatusText(status) + "\n"))
			return
		}
		writeJSON(w, status, map[string]string{"error": code})
		return
	}
	s.mu.Unlock()

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request", "error_description": "the token endpoint accepts POST only"})
		return
	}
	form, oe := parseForm(w, r)
	if oe == nil {
		if !s.isClient(form.Get("client_id")) {
			oe = errInvalidClient()
			if _, _, basic := r.BasicAuth(); basic {
				w.Header().Set("WWW-Authenticate", `Basic realm="`+s.name+`"`)
			}
		}
	}
	if oe == nil && s.resource != "" && (len(form["resource"]) != 1 || form.Get("resource") != s.resource) {
		oe = s.errInvalidTarget()
	}
	var resp *tokenResponse
	if oe == nil {
		switch gt := form.Get("grant_type"); gt {
		case "authorization_code":
			resp, oe = s.codeGrant(form)
		case "refresh_token":
			resp, oe = s.refreshGrant(form)
		case DeviceCodeGrantType:
			if !s.deviceEnabled {
				oe = &oauthError{http.StatusBadRequest, "unsupported_grant_type", "the device flow is disabled"}
				break
			}
			resp, oe = s.deviceGrant(form)
		case "":
			oe = errInvalidRequest("grant_type is required")
		default:
			oe = &oauthError{http.StatusBadRequest, "unsupported_grant_type", "unsupported grant_type"}
		}
	}
	if oe != nil {
		oe.write(w)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// parseForm reads an application/x-www-form-urlencoded POST body and
// refuses repeated parameters.
func parseForm(w http.ResponseWriter, r *http.Request) (url.Values, *oauthError) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	ct := r.Header.Get("Content-Type")
	if ct, _, _ = strings.Cut(ct, ";"); !strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded") {
		return nil, errInvalidRequest("the body must be application/x-www-form-urlencoded")
	}
	if err := r.ParseForm(); err != nil {
		return nil, errInvalidRequest("malformed form body")
	}
	for k, vs := range r.PostForm {
		if len(vs) > 1 {
			return nil, errInvalidRequest("parameter " + k + " is repeated")
		}
	}
	return r.PostForm, nil
}

// codeGrant redeems an authorization code (RFC 6749 section 4.1.3,
// RFC 7636 section 4.6).
func (s *Server) codeGrant(form url.Values) (*tokenResponse, *oauthError) {
	code := form.Get("code")
	if code == "" {
		return nil, errInvalidRequest("code is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.codes[code]
	if c == nil || c.req.clientID != form.Get("client_id") {
		return nil, errInvalidGrant("unknown authorization code")
	}
	if c.used {
		// OAuth 2.1 section 4.1.3: a code used twice revokes what it issued.
		if c.grant != nil {
			s.revokeLocked(c.grant)
		}
		return nil, errInvalidGrant("authorization code was already used; tokens issued from it are revoked")
	}
	now := s.now()
	if !now.Before(c.expiry) {
		return nil, errInvalidGrant("authorization code expired")
	}
	// From here on the code is spent, whatever the outcome, so a verifier
	// cannot be guessed by repeated attempts.
	c.used = true
	if form.Get("redirect_uri") != c.req.redirectURI {
		return nil, errInvalidGrant("redirect_uri does not match the authorization request")
	}
	if !verifierMatches(form.Get("code_verifier"), c.req.challenge) {
		return nil, errInvalidGrant("code_verifier does not match the code_challenge (PKCE)")
	}
	g := &grant{clientID: c.req.clientID, scope: c.req.scope}
	c.grant = g
	s.stats.AuthorizationCodes++
	return s.issueLocked(g, g.scope, now, true), nil
}

// refreshGrant rotates a refresh token (RFC 6749 section 6) with reuse
// detection (OAuth 2.1 section 4.3.1): a superseded refresh token revokes
// its whole grant.
func (s *Server) refreshGrant(form url.Values) (*tokenResponse, *oauthError) {
	rt := form.Get("refresh_token")
	if rt == "" {
		return nil, errInvalidRequest("refresh_token is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.tokens[rt]
	if rec == nil || rec.kind != refreshToken || rec.grant.clientID != form.Get("client_id") {
		return nil, errInvalidGrant("unknown refresh token")
	}
	if rec.superseded {
		s.stats.Replays++
		s.revokeLocked(rec.grant)
		return nil, errInvalidGrant("refresh token was already used; the grant is revoked")
	}
	if rec.grant.revoked {
		return nil, errInvalidGrant("the grant is revoked")
	}
	now := s.now()
	if !rec.expiry.IsZero() && !now.Before(rec.expiry) {
		return nil, errInvalidGrant("refresh token expired")
	}
	scope := rec.grant.scope
	if req := form.Get("scope"); req != "" {
		granted := strings.Fields(rec.grant.scope)
		for _, sc := range strings.Fields(req) {
			if !slices.Contains(granted, sc) {
				return nil, &oauthError{http.StatusBadRequest, "invalid_scope", "the requested scope exceeds the grant"}
			}
		}
		scope = strings.Join(strings.Fields(req), " ")
	}
	rec.superseded = true
	s.stats.Refreshes++
	return s.issueLocked(rec.grant, scope, now, false), nil
}

// issueLocked mints an access token and a refresh token for g.
func (s *Server) issueLocked(g *grant, scope string, now time.Time, withConfig bool) *tokenResponse {
	at := s.accessPrefix + randomString()
	rt := s.refreshPrefix + randomString()
	s.tokens[at] = &tokenRecord{grant: g, kind: accessToken, scope: scope, issued: now, expiry: now.Add(s.accessTTL)}
	rrec := &tokenRecord{grant: g, kind: refreshToken, scope: scope, issued: now}
	if s.refreshTTL > 0 {
		rrec.expiry = now.Add(s.refreshTTL)
	}
	s.tokens[rt] = rrec
	resp := &tokenResponse{
		AccessToken:  at,
		TokenType:    "Bearer",
		ExpiresIn:    expiresIn(s.accessTTL),
		RefreshToken: rt,
		Scope:        scope,
	}
	if s.noRefresh {
		delete(s.tokens, rt)
		resp.RefreshToken = ""
	}
	if withConfig {
		resp.Config = s.configJSON
	}
	return resp
}

// verifierMatches checks a PKCE code_verifier against an S256 challenge
// (RFC 7636 section 4.6).
func verifierMatches(verifier, challenge string) bool {
	if !validPKCEValue(verifier) {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

// validPKCEValue reports whether v is 43 to 128 unreserved characters, the
// syntax of both code_verifier and code_challenge (RFC 7636 section 4.1).
func validPKCEValue(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for _, c := range []byte(v) {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}
