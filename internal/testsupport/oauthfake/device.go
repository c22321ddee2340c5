package oauthfake

import (
	"crypto/rand"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Errors of [Server.ApproveDevice] and [Server.DenyDevice].
var (
	// ErrUnknownUserCode means no device authorization has this user code,
	// or the device flow is disabled.
	ErrUnknownUserCode = errors.New("oauthtest: unknown user code")
	// ErrUserCodeExpired means the device authorization expired.
	ErrUserCodeExpired = errors.New("oauthtest: user code expired")
	// ErrUserCodeDecided means the device authorization was already
	// approved or denied.
	ErrUserCodeDecided = errors.New("oauthtest: user code already approved or denied")
)

type deviceStatus int

const (
	devicePending deviceStatus = iota
	deviceApproved
	deviceDenied
	deviceRedeemed
)

// deviceRecord is one device authorization (RFC 8628 section 3.2).
type deviceRecord struct {
	clientID  string
	scope     string
	userCode  string // formatted, "WDJB-MJHT"
	challenge string // optional PKCE S256 challenge
	expiry    time.Time
	interval  time.Duration // grows by 5s with every slow_down
	lastPoll  time.Time     // zero before the first poll
	status    deviceStatus
}

// userCodeAlphabet has no vowels, so no words, and no look-alike digits
// (RFC 8628 section 6.1).
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// newUserCode returns 8 random letters of userCodeAlphabet.
func newUserCode() string {
	var b [8]byte
	out := make([]byte, 0, len(b))
	for len(out) < len(b) {
		_, _ = rand.Read(b[:])
		for _, c := range b {
			// 240 is the largest multiple of 20 under 256: no modulo bias.
			if c < 240 && len(out) < len(b) {
				out = append(out, userCodeAlphabet[c%20])
			}
		}
	}
	return string(out)
}

// formatUserCode writes an 8-letter code as XXXX-XXXX.
func formatUserCode(c string) string { return c[:4] + "-" + c[4:] }

// normalizeUserCode is the lookup key of a user code as a person types it:
// case, dashes and spaces do not matter.
func normalizeUserCode(c string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '-', ' ', '\t':
			return -1
		}
		return r
	}, strings.ToUpper(c))
}

// SlowDownNextPoll makes the next device access token request answer
// slow_down (RFC 8628 section 3.5), whatever the state of its device code,
// and adds 5 seconds to that code's polling interval as the client must.
func (s *Server) SlowDownNextPoll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slowDownNext = true
}

// ApproveDevice approves the pending device authorization with userCode, as
// a person on the verification page would; its next poll gets tokens.
// Case, dashes and spaces in userCode do not matter. The error is
// [ErrUnknownUserCode], [ErrUserCodeExpired] or [ErrUserCodeDecided].
func (s *Server) ApproveDevice(userCode string) error {
	_, err := s.decideDevice(userCode, true)
	return err
}

// DenyDevice denies the pending device authorization with userCode; its
// polls then get access_denied. Errors are as for [Server.ApproveDevice].
func (s *Server) DenyDevice(userCode string) error {
	_, err := s.decideDevice(userCode, false)
	return err
}

func (s *Server) decideDevice(userCode string, approve bool) (*deviceRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.userCodes[normalizeUserCode(userCode)]
	switch {
	case d == nil:
		return nil, ErrUnknownUserCode
	case !s.now().Before(d.expiry):
		return d, ErrUserCodeExpired
	case d.status != devicePending:
		return d, ErrUserCodeDecided
	}
	if approve {
		d.status = deviceApproved
	} else {
		d.status = deviceDenied
	}
	return d, nil
}

// handleDeviceAuthorization is the device authorization endpoint
// (RFC 8628 section 3.1). A PKCE S256 challenge is optional; when given,
// the device access token request must carry its verifier.
func (s *Server) handleDeviceAuthorization(w http.ResponseWriter, r *http.Request) {
	form, oe := parseForm(w, r)
	if oe == nil && !s.isClient(form.Get("client_id")) {
		oe = errInvalidClient()
	}
	challenge := form.Get("code_challenge")
	if oe == nil && challenge != "" && (form.Get("code_challenge_method") != "S256" || !validPKCEValue(challenge)) {
		oe = errInvalidRequest("code_challenge_method must be S256 with a well-formed code_challenge")
	}
	if oe != nil {
		oe.write(w)
		return
	}
	deviceCode := randomString()
	s.mu.Lock()
	var userCode string
	for {
		userCode = newUserCode()
		if s.userCodes[userCode] == nil {
			break
		}
	}
	d := &deviceRecord{
		clientID:  form.Get("client_id"),
		scope:     s.scopeOrDefault(form.Get("scope")),
		userCode:  formatUserCode(userCode),
		challenge: challenge,
		expiry:    s.now().Add(s.deviceTTL),
		interval:  time.Duration(s.deviceInterval) * time.Second,
	}
	s.devices[deviceCode] = d
	s.userCodes[userCode] = d
	s.mu.Unlock()

	writeJSON(w, http.StatusOK, map[string]any{
		"device_code":               deviceCode,
		"user_code":                 d.userCode,
		"verification_uri":          s.DeviceVerificationURL(),
		"verification_uri_complete": s.DeviceVerificationURL() + "?" + url.Values{"user_code": {d.userCode}}.Encode(),
		"expires_in":                expiresIn(s.deviceTTL),
		"interval":                  s.deviceInterval,
	})
}

// deviceGrant answers a device access token request (RFC 8628 sections 3.4
// and 3.5).
func (s *Server) deviceGrant(form url.Values) (*tokenResponse, *oauthError) {
	dc := form.Get("device_code")
	if dc == "" {
		return nil, errInvalidRequest("device_code is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.devices[dc]
	if d == nil || d.clientID != form.Get("client_id") {
		return nil, errInvalidGrant("unknown device code")
	}
	if d.status == deviceRedeemed {
		return nil, errInvalidGrant("device code was already used")
	}
	now := s.now()
	if !now.Before(d.expiry) {
		return nil, &oauthError{http.StatusBadRequest, "expired_token", "the device code expired"}
	}
	prev := d.lastPoll
	d.lastPoll = now
	// Polls closer together than 80% of the interval are too fast: that
	// leaves room for scheduling jitter of a client that waits the interval.
	tooFast := !prev.IsZero() && now.Sub(prev) < d.interval*8/10
	if s.slowDownNext || tooFast {
		s.slowDownNext = false
		d.interval += 5 * time.Second
		return nil, &oauthError{http.StatusBadRequest, "slow_down", "polling too fast: wait 5 more seconds between requests"}
	}
	switch d.status {
	case devicePending:
		return nil, &oauthError{http.StatusBadRequest, "authorization_pending", "waiting for the person to approve"}
	case deviceDenied:
		return nil, &oauthError{http.StatusBadRequest, "access_denied", "the resource owner denied the request"}
	}
	if d.challenge != "" && !verifierMatches(form.Get("code_verifier"), d.challenge) {
		return nil, errInvalidGrant("code_verifier does not match the code_challenge (PKCE)")
	}
	d.status = deviceRedeemed
	s.stats.DeviceGrants++
	return s.issueLocked(&grant{clientID: d.clientID, scope: d.scope}, d.scope, now, true), nil
}

// handleDevicePage shows the verification page, with the user code filled
// in from ?user_code= (verification_uri_complete).
func (s *Server) handleDevicePage(w http.ResponseWriter, r *http.Request) {
	data := devicePageData{Title: "Connect a device", ShowForm: true, UserCode: r.URL.Query().Get("user_code")}
	if data.UserCode != "" {
		s.mu.Lock()
		if d := s.userCodes[normalizeUserCode(data.UserCode)]; d != nil && d.status == devicePending && s.now().Before(d.expiry) {
			data.ClientID, data.Scope = d.clientID, d.scope
		}
		s.mu.Unlock()
	}
	s.renderPage(w, http.StatusOK, devicePageTemplate, data)
}

// handleDeviceDecision receives the verification page's form.
func (s *Server) handleDeviceDecision(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	data := devicePageData{Title: "Connect a device", ShowForm: true}
	if err := r.ParseForm(); err != nil {
		data.Error = "The form could not be read."
		s.renderPage(w, http.StatusBadRequest, devicePageTemplate, data)
		return
	}
	data.UserCode = r.PostForm.Get("user_code")
	decision := r.PostForm.Get("decision")
	if decision != "approve" && decision != "deny" {
		data.Error = "Choose Approve or Deny."
		s.renderPage(w, http.StatusBadRequest, devicePageTemplate, data)
		return
	}
	d, err := s.decideDevice(data.UserCode, decision == "approve")
	switch {
	case errors.Is(err, ErrUnknownUserCode):
		data.Error = "That code is not valid. Check the code shown on your device and try again."
	case errors.Is(err, ErrUserCodeExpired):
		data.Error = "That code has expired. Start again on your device."
	case errors.Is(err, ErrUserCodeDecided):
		data.Error = "That code was already used."
	}
	if err != nil {
		s.renderPage(w, http.StatusBadRequest, devicePageTemplate, data)
		return
	}
	data.ShowForm = false
	if decision == "approve" {
		data.Message = "Device connected: " + d.clientID + " can now access your account. You can return to your device."
	} else {
		data.Message = "Access denied. You can return to your device."
	}
	s.renderPage(w, http.StatusOK, devicePageTemplate, data)
}
