package handlers

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/internal/apierr"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/authserver"
	"github.com/memconnect/memconnect/oauth/filestore"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/provider"
)

func TestBindConnectRequest(t *testing.T) {
	tests := []struct {
		name        string
		body        io.Reader
		contentType string
		want        connectRequest
		wantCode    apierr.Code // "" means no error
		wantMsg     string
	}{
		{"no body", nil, "", connectRequest{}, "", ""},
		{"empty body, any content type", strings.NewReader(""), "text/plain", connectRequest{}, "", ""},
		{"white space", strings.NewReader(" \n"), "application/json", connectRequest{}, "", ""},
		{"empty object", strings.NewReader("{}"), "application/json", connectRequest{}, "", ""},
		{"all fields", strings.NewReader(`{"method":"browser","source":"hermes-desktop","redirect":"callback"}`), "application/json; charset=utf-8",
			connectRequest{Method: "browser", Source: "hermes-desktop", Redirect: "callback"}, "", ""},
		{"device", strings.NewReader(`{"method":"device"}`), "application/json", connectRequest{Method: "device"}, "", ""},
		{"unknown field", strings.NewReader(`{"method":"device","scope":"admin"}`), "application/json", connectRequest{},
			apierr.CodeInvalidRequest, `The field "scope" is not known.`},
		{"unknown field with odd name", strings.NewReader(`{"a\u0000b":1}`), "application/json", connectRequest{},
			apierr.CodeInvalidRequest, `The field "a\x00b" is not known.`},
		{"bad method", strings.NewReader(`{"method":"sms"}`), "application/json", connectRequest{},
			apierr.CodeInvalidRequest, `"method" must be "browser", "device" or "apikey"`},
		{"api key", strings.NewReader(`{"method":"apikey","api_key":"k-1"}`), "application/json", connectRequest{Method: "apikey", APIKey: "k-1"}, "", ""},
		{"api key missing", strings.NewReader(`{"method":"apikey"}`), "application/json", connectRequest{},
			apierr.CodeInvalidRequest, `needs the field "api_key"`},
		{"api key with browser", strings.NewReader(`{"method":"browser","api_key":"k-1"}`), "application/json", connectRequest{},
			apierr.CodeInvalidRequest, `"api_key" goes with the method "apikey" only`},
		{"api key with redirect", strings.NewReader(`{"method":"apikey","api_key":"k-1","redirect":"loopback"}`), "application/json", connectRequest{},
			apierr.CodeInvalidRequest, "leave them out"},
		{"bad redirect", strings.NewReader(`{"redirect":"http://evil.example"}`), "application/json", connectRequest{},
			apierr.CodeInvalidRequest, `"redirect" must be "loopback" or "callback"`},
		{"redirect with device", strings.NewReader(`{"method":"device","redirect":"callback"}`), "application/json", connectRequest{},
			apierr.CodeInvalidRequest, "browser method only"},
		{"long source", strings.NewReader(`{"source":"` + strings.Repeat("s", 65) + `"}`), "application/json", connectRequest{},
			apierr.CodeInvalidRequest, `"source"`},
		{"wrong type", strings.NewReader(`{"source":["a"]}`), "application/json", connectRequest{},
			apierr.CodeInvalidRequest, `The field "source" must be a JSON string.`},
		{"array body", strings.NewReader(`[]`), "application/json", connectRequest{},
			apierr.CodeInvalidRequest, "must be a JSON object"},
		{"syntax", strings.NewReader(`{"method" "device"}`), "application/json", connectRequest{},
			apierr.CodeInvalidRequest, "not valid JSON (at byte"},
		{"truncated", strings.NewReader(`{"method":"dev`), "application/json", connectRequest{},
			apierr.CodeInvalidRequest, "ends too early"},
		{"two values", strings.NewReader(`{"method":"device"} {"method":"browser"}`), "application/json", connectRequest{},
			apierr.CodeInvalidRequest, "nothing after it"},
		{"XML is not decoded", strings.NewReader(`<connectRequest><Method>device</Method></connectRequest>`), "application/xml", connectRequest{},
			apierr.CodeInvalidRequest, "Content-Type: application/json"},
		{"form is not decoded", strings.NewReader(`method=device`), "application/x-www-form-urlencoded", connectRequest{},
			apierr.CodeInvalidRequest, "Content-Type: application/json"},
		{"no content type", strings.NewReader(`{}`), "", connectRequest{},
			apierr.CodeInvalidRequest, "Content-Type: application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/connect", tt.body)
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			var got connectRequest
			err := bind(r, &got)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Bind: %v", err)
				}
				if got != tt.want {
					t.Errorf("Bind = %+v, want %+v", got, tt.want)
				}
				return
			}
			e := toError(err)
			if e == nil || e.Code != tt.wantCode || !strings.Contains(e.Error(), tt.wantMsg) {
				t.Errorf("Bind error = %v, want %s with %q", err, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestBindOverLimitIs413(t *testing.T) {
	r := httptest.NewRequest("POST", "/connect", strings.NewReader(`{"source":"`+strings.Repeat("x", 100)+`"}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	r.Body = http.MaxBytesReader(w, r.Body, 32)
	var got connectRequest
	if e := toError(bind(r, &got)); e == nil || e.Code != apierr.CodePayloadTooLarge {
		t.Errorf("Bind over the limit = %v, want payload_too_large", e)
	}
}

func TestToErrorLowerPackages(t *testing.T) {
	cfgErr := &filestore.ConfigError{Path: "/home/someone/.hermes/honcho.json", Err: errors.New("not valid JSON")}
	tests := []struct {
		name     string
		err      error
		wantCode apierr.Code
		wantMsg  string
	}{
		{"invalid profile", provider.ValidateProfileName("Bad!"), apierr.CodeInvalidProfile, "profile name is not valid"},
		{"profile not found", fmt.Errorf("%w: work", provider.ErrProfileNotFound), apierr.CodeProfileNotFound, "no profile with this name"},
		{"unknown provider", fmt.Errorf("%w \"x\"", provider.ErrUnknownProvider), apierr.CodeUnknownProvider, "GET /providers"},
		{"unsupported", fmt.Errorf("%w: no OAuth", provider.ErrUnsupported), apierr.CodeUnsupported, "does not support"},
		{"device unsupported", flow.ErrDeviceUnsupported, apierr.CodeUnsupported, "does not support"},
		{"conflict", fmt.Errorf("%w: %w", provider.ErrConflict, flow.ErrConflict), apierr.CodeConflict, "cancel it"},
		{"flow conflict", flow.ErrConflict, apierr.CodeConflict, "cancel it"},
		{"reauth", &oauth.ReauthError{Grant: `"hermes" in /p`, Code: "invalid_grant"}, apierr.CodeConflict, "Connect again"},
		{"no grant", fmt.Errorf("%w (host)", oauth.ErrNoGrant), apierr.CodeConflict, "no sign-in"},
		{"invalid state", flow.ErrInvalidState, apierr.CodeInvalidRequest, "not valid"},
		{"manager closed", flow.ErrClosed, apierr.CodeInternal, "shutting down"},
		{"config error", cfgErr, apierr.CodeInternal, "The memory provider's config file could not be read"},
		{"config error inside a flow failure", &flow.Failure{Code: flow.CodeComplete, Detail: "d", Err: cfgErr},
			apierr.CodeInternal, "The memory provider's config file"},
		{"flow failure", &flow.Failure{Code: flow.CodeStart, Detail: "Could not start the sign-in at the authorization server; try again"},
			apierr.CodeUpstreamError, "Could not start the sign-in at the authorization server; try again."},
		{"rate limited", &flow.Failure{Code: flow.CodeRateLimited, Detail: "Too many sign-in attempts"},
			apierr.CodeUpstreamError, "Too many sign-in attempts."},
		{"complete failed", &flow.Failure{Code: flow.CodeComplete, Detail: "Signed in, but not saved"},
			apierr.CodeInternal, "Signed in, but not saved."},
		{"retrieve error", &oauth2.RetrieveError{Response: &http.Response{StatusCode: 500}, Body: []byte("hch-rt-secret")},
			apierr.CodeUpstreamError, "did not answer as expected"},
		{"revoke error", &authserver.RevokeError{StatusCode: 503}, apierr.CodeUpstreamError, "did not answer as expected"},
		{"transport error", &url.Error{Op: "Post", URL: "http://127.0.0.1:1/token", Err: errors.New("connection refused")},
			apierr.CodeUpstreamError, "did not answer as expected"},
		{"handler's choice wins", apierr.Wrap(apierr.CodeConflict, provider.ErrUnsupported, "mine"), apierr.CodeConflict, "mine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := toError(tt.err)
			if got.Code != tt.wantCode || !strings.Contains(got.Error(), tt.wantMsg) {
				t.Errorf("toError(%v) = %v, want code %s with %q", tt.err, got, tt.wantCode, tt.wantMsg)
			}
			if !errors.Is(got, tt.err) && got.Err != nil {
				t.Errorf("toError(%v) lost the cause", tt.err)
			}
			for _, leak := range []string{"/home/someone", "hch-rt-", "provider:", "oauth:", "127.0.0.1"} {
				if strings.Contains(got.Message, leak) {
					t.Errorf("message %q leaks %q", got.Message, leak)
				}
			}
		})
	}
}

func TestNewNeedsACompleteConnector(t *testing.T) {
	reg, err := provider.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(&provider.Connector{Registry: reg}); err == nil {
		t.Error("New accepted a Connector without ProfileResolver and flow manager")
	}
	if _, err := New(nil); err == nil {
		t.Error("New accepted no Connector")
	}
}

func TestNotFound(t *testing.T) {
	tests := []struct {
		path     string
		wantCode string
	}{
		{"/nope", "not_found"},
		{"/profiles/a/b/providers/honcho/status", "invalid_profile"},
		{"/profiles//providers/honcho/connect", "invalid_profile"},
		{"/profiles/a/b/c/providers/honcho/connection", "invalid_profile"},
		{"/profiles/a/b/providers/honcho/other", "not_found"},
		{"/profiles/a/providers/honcho/status/extra", "not_found"},
		{"/providers/honcho", "not_found"},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		NotFound(w, httptest.NewRequest("GET", tt.path, nil))
		if !strings.Contains(w.Body.String(), `"error":"`+tt.wantCode+`"`) {
			t.Errorf("NotFound(%s) = %d %s, want %s", tt.path, w.Code, w.Body, tt.wantCode)
		}
	}
}

// The Hermes status body words every status the way the desktop reads it.
func TestNewHermesStatus(t *testing.T) {
	oauth := provider.AuthOAuth
	tests := []struct {
		name string
		rep  provider.StatusReport
		want hermesStatus
	}{
		{"idle", provider.StatusReport{}, hermesStatus{State: "idle", Detail: "Not connected"}},
		{"pending", provider.StatusReport{Flow: &flow.Flow{State: flow.StatePending, Detail: "Waiting", AuthorizeURL: "https://a/authorize"}},
			hermesStatus{State: "pending", Detail: "Waiting", AuthorizeURL: "https://a/authorize"}},
		{"failed", provider.StatusReport{Flow: &flow.Flow{State: flow.StateError, Detail: "Sign-in was denied", AuthorizeURL: "x"}},
			hermesStatus{State: "error", Detail: "Sign-in was denied"}},
		{"connected", provider.StatusReport{Connected: true, Auth: oauth, Flow: &flow.Flow{State: flow.StateConnected}},
			hermesStatus{State: "connected", Detail: "Connected", Connected: true, Auth: &oauth}},
		{"cancelled, still connected", provider.StatusReport{Connected: true, Auth: oauth, Flow: &flow.Flow{State: flow.StateIdle}},
			hermesStatus{State: "connected", Detail: "Connected", Connected: true, Auth: &oauth}},
		{"reauth", provider.StatusReport{Connected: true, Auth: oauth, ReauthRequired: true},
			hermesStatus{State: "error", Detail: "Sign in again", Connected: true, Auth: &oauth}},
	}
	for _, tt := range tests {
		got := newHermesStatus(tt.rep)
		gotAuth, wantAuth := "", ""
		if got.Auth != nil {
			gotAuth = *got.Auth
		}
		if tt.want.Auth != nil {
			wantAuth = *tt.want.Auth
		}
		got.Auth, tt.want.Auth = nil, nil
		if got != tt.want || gotAuth != wantAuth {
			t.Errorf("%s: %+v auth %q, want %+v auth %q", tt.name, got, gotAuth, tt.want, wantAuth)
		}
	}
}
