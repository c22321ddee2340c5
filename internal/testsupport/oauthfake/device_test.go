package oauthfake

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/memconnect/memconnect/internal/testsupport/testkit"

	"golang.org/x/oauth2"
)

var userCodeRE = regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`)

func TestDeviceFlowApproved(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) { // the polling interval passes at once
		s := newTestServer(t, WithInMemoryNetwork(), WithGrantConfig(map[string]any{"peerName": "alice"}))
		cfg := s.OAuth2Config("", "write")
		ctx := ctxWithClient(t, s)
		da, err := cfg.DeviceAuth(ctx)
		if err != nil {
			t.Fatalf("DeviceAuth: %v", err)
		}
		if !userCodeRE.MatchString(da.UserCode) {
			t.Errorf("user code %q is not like WDJB-MJHT", da.UserCode)
		}
		if da.VerificationURI != s.URL+"/device" {
			t.Errorf("verification_uri = %q, want %q", da.VerificationURI, s.URL+"/device")
		}
		if want := s.URL + "/device?user_code=" + da.UserCode; da.VerificationURIComplete != want {
			t.Errorf("verification_uri_complete = %q, want %q", da.VerificationURIComplete, want)
		}
		if da.Interval != 1 {
			t.Errorf("interval = %d, want 1", da.Interval)
		}
		if left := time.Until(da.Expiry); left < 9*time.Minute || left > 10*time.Minute {
			t.Errorf("expires in %v, want about 10m", left)
		}
		if err := s.ApproveDevice(strings.ToLower(strings.ReplaceAll(da.UserCode, "-", ""))); err != nil {
			t.Fatalf("ApproveDevice: %v", err)
		}
		tok, err := cfg.DeviceAccessToken(ctx, da)
		if err != nil {
			t.Fatalf("DeviceAccessToken: %v", err)
		}
		if !s.Active(tok.AccessToken) || !s.Active(tok.RefreshToken) {
			t.Error("device tokens are not active")
		}
		if sc := tok.Extra("scope"); sc != "write" {
			t.Errorf("scope = %v, want write", sc)
		}
		if c, _ := tok.Extra("config").(map[string]any); c["peerName"] != "alice" {
			t.Errorf("config = %v, want peerName alice", tok.Extra("config"))
		}
		if got := s.Stats(); got.DeviceGrants != 1 || got.TokenRequests != 1 {
			t.Errorf("Stats = %+v, want 1 device grant from 1 token request", got)
		}
		// The device code is single use.
		status, body := postForm(t, s, s.TokenURL(), deviceForm(DefaultClientID, da.DeviceCode))
		if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Errorf("second redemption: %d %v, want 400 invalid_grant", status, body["error"])
		}
	})
}

func TestDeviceFlowDenied(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) { // the polling interval passes at once
		s := newTestServer(t, WithInMemoryNetwork())
		cfg := s.OAuth2Config("")
		ctx := ctxWithClient(t, s)
		da, err := cfg.DeviceAuth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DenyDevice(da.UserCode); err != nil {
			t.Fatal(err)
		}
		_, err = cfg.DeviceAccessToken(ctx, da)
		if got := errorCode(err); got != "access_denied" {
			t.Fatalf("error %q (%v), want access_denied", got, err)
		}
		if got := s.Stats().DeviceGrants; got != 0 {
			t.Errorf("DeviceGrants = %d, want 0", got)
		}
	})
}

func deviceForm(clientID, deviceCode string) url.Values {
	return url.Values{"grant_type": {DeviceCodeGrantType}, "client_id": {clientID}, "device_code": {deviceCode}}
}

func TestDevicePolling(t *testing.T) {
	t.Parallel()
	type step struct {
		advance   time.Duration // the clock, before the action
		action    string        // poll, approve, deny, slowdown
		wantError string        // of a poll; "" means tokens
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"pending", []step{{0, "poll", "authorization_pending"}, {time.Second, "poll", "authorization_pending"}}},
		{"approved", []step{{0, "poll", "authorization_pending"}, {0, "approve", ""}, {time.Second, "poll", ""}, {time.Second, "poll", "invalid_grant"}}},
		{"approved before the first poll", []step{{0, "approve", ""}, {0, "poll", ""}}},
		{"denied", []step{{0, "deny", ""}, {0, "poll", "access_denied"}, {time.Second, "poll", "access_denied"}}},
		{"too fast", []step{
			{0, "poll", "authorization_pending"},
			{500 * time.Millisecond, "poll", "slow_down"},
			{time.Second, "poll", "slow_down"}, // the interval was 6 s; now 11 s
			{11 * time.Second, "poll", "authorization_pending"},
			{9 * time.Second, "poll", "authorization_pending"}, // within 20% of 11 s
			{8 * time.Second, "poll", "slow_down"},
		}},
		{"jitter allowed", []step{{0, "poll", "authorization_pending"}, {850 * time.Millisecond, "poll", "authorization_pending"}}},
		{"forced slow_down", []step{{0, "slowdown", ""}, {0, "poll", "slow_down"}, {6 * time.Second, "poll", "authorization_pending"}}},
		{"expired", []step{{0, "poll", "authorization_pending"}, {10 * time.Minute, "poll", "expired_token"}}},
		{"expired after approval", []step{{0, "approve", ""}, {10 * time.Minute, "poll", "expired_token"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := testkit.NewClock()
			s := newTestServer(t, WithClock(clk))
			status, da := postForm(t, s, s.DeviceAuthURL(), url.Values{"client_id": {DefaultClientID}})
			if status != http.StatusOK {
				t.Fatalf("device authorization: %d %v", status, da)
			}
			deviceCode, userCode := da["device_code"].(string), da["user_code"].(string)
			for i, st := range tt.steps {
				clk.Advance(st.advance)
				var err error
				switch st.action {
				case "approve":
					err = s.ApproveDevice(userCode)
				case "deny":
					err = s.DenyDevice(userCode)
				case "slowdown":
					s.SlowDownNextPoll()
				case "poll":
					status, body := postForm(t, s, s.TokenURL(), deviceForm(DefaultClientID, deviceCode))
					if st.wantError == "" {
						if status != http.StatusOK || body["access_token"] == nil {
							t.Fatalf("step %d: %d %v, want tokens", i, status, body["error"])
						}
						continue
					}
					if status != http.StatusBadRequest || body["error"] != st.wantError {
						t.Fatalf("step %d: %d %v, want 400 %s", i, status, body["error"], st.wantError)
					}
				}
				if err != nil {
					t.Fatalf("step %d: %s: %v", i, st.action, err)
				}
			}
		})
	}
}

func TestDeviceGrantErrors(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, WithClientID(DefaultClientID), WithClientID("tv-app"))
	_, da := postForm(t, s, s.DeviceAuthURL(), url.Values{"client_id": {DefaultClientID},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(strings.Repeat("a", 43))}, "code_challenge_method": {"S256"}})
	deviceCode := da["device_code"].(string)
	if err := s.ApproveDevice(da["user_code"].(string)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
		wantError  string
	}{
		{"unknown device code", deviceForm(DefaultClientID, "nope"), http.StatusBadRequest, "invalid_grant"},
		{"no device code", deviceForm(DefaultClientID, ""), http.StatusBadRequest, "invalid_request"},
		{"other client", deviceForm("tv-app", deviceCode), http.StatusBadRequest, "invalid_grant"},
		{"unregistered client", deviceForm("mallory", deviceCode), http.StatusUnauthorized, "invalid_client"},
		{"missing verifier", deviceForm(DefaultClientID, deviceCode), http.StatusBadRequest, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := postForm(t, s, s.TokenURL(), tt.form)
			if status != tt.wantStatus || body["error"] != tt.wantError {
				t.Errorf("got %d %v, want %d %s", status, body["error"], tt.wantStatus, tt.wantError)
			}
		})
	}
}

func TestDeviceAuthorizationErrors(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
		wantError  string
	}{
		{"unknown client", url.Values{"client_id": {"mallory"}}, http.StatusUnauthorized, "invalid_client"},
		{"plain challenge", url.Values{"client_id": {DefaultClientID}, "code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"plain"}}, http.StatusBadRequest, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := postForm(t, s, s.DeviceAuthURL(), tt.form)
			if status != tt.wantStatus || body["error"] != tt.wantError {
				t.Errorf("got %d %v, want %d %s", status, body["error"], tt.wantStatus, tt.wantError)
			}
		})
	}
}

func TestApproveDeviceErrors(t *testing.T) {
	t.Parallel()
	clk := testkit.NewClock()
	s := newTestServer(t, WithClock(clk), WithDeviceCodeTTL(time.Minute))
	newCode := func() string {
		_, da := postForm(t, s, s.DeviceAuthURL(), url.Values{"client_id": {DefaultClientID}})
		return da["user_code"].(string)
	}
	decided, expiring := newCode(), newCode()
	if err := s.DenyDevice(decided); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	tests := []struct {
		name     string
		userCode string
		want     error
	}{
		{"unknown", "BBBB-BBBB", ErrUnknownUserCode},
		{"empty", "", ErrUnknownUserCode},
		{"expired", expiring, ErrUserCodeExpired},
		{"denied, then expired", decided, ErrUserCodeExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.ApproveDevice(tt.userCode); !errors.Is(err, tt.want) {
				t.Errorf("ApproveDevice(%q) = %v, want %v", tt.userCode, err, tt.want)
			}
		})
	}
	fresh := newCode()
	if err := s.ApproveDevice(fresh); err != nil {
		t.Fatal(err)
	}
	if err := s.DenyDevice(fresh); !errors.Is(err, ErrUserCodeDecided) {
		t.Errorf("DenyDevice after approval = %v, want ErrUserCodeDecided", err)
	}
}

func TestDevicePage(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	_, da := postForm(t, s, s.DeviceAuthURL(), url.Values{"client_id": {DefaultClientID}, "scope": {"write"}})
	deviceCode, userCode := da["device_code"].(string), da["user_code"].(string)

	resp, page := get(t, s, da["verification_uri_complete"].(string), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET verification_uri_complete: %d", resp.StatusCode)
	}
	for _, want := range []string{
		`<label for="user_code">`, `value="` + userCode + `"`, DefaultClientID,
		`<button type="submit" name="decision" value="approve">Approve</button>`,
		`<button type="submit" name="decision" value="deny">Deny</button>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("device page lacks %q", want)
		}
	}
	_, page = get(t, s, s.DeviceVerificationURL()+"?user_code=%3Cb%3E", nil)
	if strings.Contains(page, "<b>") {
		t.Error("device page echoes an unescaped user code")
	}

	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
		wantText   string
	}{
		{"wrong code", url.Values{"user_code": {"BBBB-BBBB"}, "decision": {"approve"}}, http.StatusBadRequest, "not valid"},
		{"no decision", url.Values{"user_code": {userCode}}, http.StatusBadRequest, "Choose Approve or Deny"},
		{"approve typed loosely", url.Values{"user_code": {" " + strings.ToLower(strings.ReplaceAll(userCode, "-", " ")) + " "}, "decision": {"approve"}}, http.StatusOK, "Device connected"},
		{"again", url.Values{"user_code": {userCode}, "decision": {"deny"}}, http.StatusBadRequest, "already used"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := postFormRaw(t, s, s.DeviceVerificationURL(), tt.form)
			if resp.StatusCode != tt.wantStatus || !strings.Contains(body, tt.wantText) {
				t.Errorf("got %d %q, want %d containing %q", resp.StatusCode, pageText([]byte(body)), tt.wantStatus, tt.wantText)
			}
		})
	}
	status, body := postForm(t, s, s.TokenURL(), deviceForm(DefaultClientID, deviceCode))
	if status != http.StatusOK || body["scope"] != "write" {
		t.Errorf("poll after approval on the page: %d %v", status, body)
	}
}

func TestDeviceFlowDisabled(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, WithDeviceFlow(false))
	status, _ := postFormStatus(t, s, s.DeviceAuthURL(), url.Values{"client_id": {DefaultClientID}})
	if status != http.StatusNotFound {
		t.Errorf("device authorization endpoint: %d, want 404", status)
	}
	if resp, _ := get(t, s, s.DeviceVerificationURL(), nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("device page: %d, want 404", resp.StatusCode)
	}
	if s.Endpoint().DeviceAuthURL != "" {
		t.Error("Endpoint names a device authorization URL")
	}
	if err := s.ApproveDevice("BBBB-BBBB"); !errors.Is(err, ErrUnknownUserCode) {
		t.Errorf("ApproveDevice = %v, want ErrUnknownUserCode", err)
	}
	status, body := postForm(t, s, s.TokenURL(), deviceForm(DefaultClientID, "x"))
	if status != http.StatusBadRequest || body["error"] != "unsupported_grant_type" {
		t.Errorf("device grant: %d %v, want 400 unsupported_grant_type", status, body["error"])
	}
}

// postFormStatus POSTs form and returns the status and raw body.
func postFormStatus(t *testing.T, s *Server, u string, form url.Values) (int, string) {
	t.Helper()
	resp, body := postFormRaw(t, s, u, form)
	return resp.StatusCode, body
}
