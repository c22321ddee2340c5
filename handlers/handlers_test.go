package handlers_test

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

	"github.com/memconnect/memconnect/handlers"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/provider"
)

func TestBindConnectRequest(t *testing.T) {
	tests := []struct {
		name        string
		body        io.Reader
		contentType string
		want        handlers.ConnectRequest
		wantCode    handlers.Code // "" means no error
		wantMsg     string
	}{
		{"no body", nil, "", handlers.ConnectRequest{}, "", ""},
		{"empty body, any content type", strings.NewReader(""), "text/plain", handlers.ConnectRequest{}, "", ""},
		{"white space", strings.NewReader(" \n"), "application/json", handlers.ConnectRequest{}, "", ""},
		{"empty object", strings.NewReader("{}"), "application/json", handlers.ConnectRequest{}, "", ""},
		{"all fields", strings.NewReader(`{"method":"browser","source":"hermes-desktop","redirect":"callback"}`), "application/json; charset=utf-8",
			handlers.ConnectRequest{Method: "browser", Source: "hermes-desktop", Redirect: "callback"}, "", ""},
		{"device", strings.NewReader(`{"method":"device"}`), "application/json", handlers.ConnectRequest{Method: "device"}, "", ""},
		{"unknown field", strings.NewReader(`{"method":"device","scope":"admin"}`), "application/json", handlers.ConnectRequest{},
			handlers.CodeInvalidRequest, `The field "scope" is not known.`},
		{"unknown field with odd name", strings.NewReader(`{"a\u0000b":1}`), "application/json", handlers.ConnectRequest{},
			handlers.CodeInvalidRequest, `The field "a\x00b" is not known.`},
		{"bad method", strings.NewReader(`{"method":"sms"}`), "application/json", handlers.ConnectRequest{},
			handlers.CodeInvalidRequest, `"method" must be "browser" or "device"`},
		{"bad redirect", strings.NewReader(`{"redirect":"http://evil.example"}`), "application/json", handlers.ConnectRequest{},
			handlers.CodeInvalidRequest, `"redirect" must be "loopback" or "callback"`},
		{"redirect with device", strings.NewReader(`{"method":"device","redirect":"callback"}`), "application/json", handlers.ConnectRequest{},
			handlers.CodeInvalidRequest, "browser method only"},
		{"long source", strings.NewReader(`{"source":"` + strings.Repeat("s", 65) + `"}`), "application/json", handlers.ConnectRequest{},
			handlers.CodeInvalidRequest, `"source"`},
		{"wrong type", strings.NewReader(`{"source":["a"]}`), "application/json", handlers.ConnectRequest{},
			handlers.CodeInvalidRequest, `The field "source" must be a JSON string.`},
		{"array body", strings.NewReader(`[]`), "application/json", handlers.ConnectRequest{},
			handlers.CodeInvalidRequest, "must be a JSON object"},
		{"syntax", strings.NewReader(`{"method" "device"}`), "application/json", handlers.ConnectRequest{},
			handlers.CodeInvalidRequest, "not valid JSON (at byte"},
		{"truncated", strings.NewReader(`{"method":"dev`), "application/json", handlers.ConnectRequest{},
			handlers.CodeInvalidRequest, "ends too early"},
		{"two values", strings.NewReader(`{"method":"device"} {"method":"browser"}`), "application/json", handlers.ConnectRequest{},
			handlers.CodeInvalidRequest, "nothing after it"},
		{"XML is not decoded", strings.NewReader(`<ConnectRequest><Method>device</Method></ConnectRequest>`), "application/xml", handlers.ConnectRequest{},
			handlers.CodeInvalidRequest, "Content-Type: application/json"},
		{"form is not decoded", strings.NewReader(`method=device`), "application/x-www-form-urlencoded", handlers.ConnectRequest{},
			handlers.CodeInvalidRequest, "Content-Type: application/json"},
		{"no content type", strings.NewReader(`{}`), "", handlers.ConnectRequest{},
			handlers.CodeInvalidRequest, "Content-Type: application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/connect", tt.body)
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			var got handlers.ConnectRequest
			err := handlers.Bind(r, &got)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Bind: %v", err)
				}
				if got != tt.want {
					t.Errorf("Bind = %+v, want %+v", got, tt.want)
				}
				return
			}
			e := handlers.ToError(err)
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
	var got handlers.ConnectRequest
	if e := handlers.ToError(handlers.Bind(r, &got)); e == nil || e.Code != handlers.CodePayloadTooLarge {
		t.Errorf("Bind over the limit = %v, want payload_too_large", e)
	}
}

func TestToErrorLowerPackages(t *testing.T) {
	cfgErr := &oauth.ConfigError{Path: "/home/someone/.hermes/honcho.json", Err: errors.New("not valid JSON")}
	tests := []struct {
		name     string
		err      error
		wantCode handlers.Code
		wantMsg  string
	}{
		{"invalid profile", provider.ValidateProfileName("Bad!"), handlers.CodeInvalidProfile, "profile name is not valid"},
		{"profile not found", fmt.Errorf("%w: work", provider.ErrProfileNotFound), handlers.CodeProfileNotFound, "no profile with this name"},
		{"unknown provider", fmt.Errorf("%w \"x\"", provider.ErrUnknownProvider), handlers.CodeUnknownProvider, "GET /providers"},
		{"unsupported", fmt.Errorf("%w: no OAuth", provider.ErrUnsupported), handlers.CodeUnsupported, "does not support"},
		{"device unsupported", oauth.ErrDeviceFlowUnsupported, handlers.CodeUnsupported, "does not support"},
		{"conflict", fmt.Errorf("%w: %w", provider.ErrConflict, oauth.ErrFlowConflict), handlers.CodeConflict, "cancel it"},
		{"flow conflict", oauth.ErrFlowConflict, handlers.CodeConflict, "cancel it"},
		{"reauth", &oauth.ReauthError{Path: "/p", Host: "hermes", Code: "invalid_grant"}, handlers.CodeConflict, "Connect again"},
		{"no grant", fmt.Errorf("%w (host)", oauth.ErrNoGrant), handlers.CodeConflict, "no sign-in"},
		{"invalid state", oauth.ErrInvalidState, handlers.CodeInvalidRequest, "not valid"},
		{"manager closed", oauth.ErrFlowManagerClosed, handlers.CodeInternal, "shutting down"},
		{"config error", cfgErr, handlers.CodeInternal, "The Honcho config file could not be read"},
		{"config error inside a flow failure", &oauth.FlowFailure{Code: oauth.FlowErrComplete, Detail: "d", Err: cfgErr},
			handlers.CodeInternal, "The Honcho config file"},
		{"flow failure", &oauth.FlowFailure{Code: oauth.FlowErrStart, Detail: "Could not start the sign-in at the authorization server; try again"},
			handlers.CodeUpstreamError, "Could not start the sign-in at the authorization server; try again."},
		{"rate limited", &oauth.FlowFailure{Code: oauth.FlowErrRateLimited, Detail: "Too many sign-in attempts"},
			handlers.CodeUpstreamError, "Too many sign-in attempts."},
		{"complete failed", &oauth.FlowFailure{Code: oauth.FlowErrComplete, Detail: "Signed in, but not saved"},
			handlers.CodeInternal, "Signed in, but not saved."},
		{"retrieve error", &oauth2.RetrieveError{Response: &http.Response{StatusCode: 500}, Body: []byte("hch-rt-secret")},
			handlers.CodeUpstreamError, "did not answer as expected"},
		{"revoke error", &oauth.RevokeError{StatusCode: 503}, handlers.CodeUpstreamError, "did not answer as expected"},
		{"transport error", &url.Error{Op: "Post", URL: "http://127.0.0.1:1/token", Err: errors.New("connection refused")},
			handlers.CodeUpstreamError, "did not answer as expected"},
		{"handler's choice wins", handlers.Wrap(handlers.CodeConflict, provider.ErrUnsupported, "mine"), handlers.CodeConflict, "mine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := handlers.ToError(tt.err)
			if got.Code != tt.wantCode || !strings.Contains(got.Error(), tt.wantMsg) {
				t.Errorf("ToError(%v) = %v, want code %s with %q", tt.err, got, tt.wantCode, tt.wantMsg)
			}
			if !errors.Is(got, tt.err) && got.Err != nil {
				t.Errorf("ToError(%v) lost the cause", tt.err)
			}
			for _, leak := range []string{"/home/someone", "hch-rt-", "provider:", "oauth:", "127.0.0.1"} {
				if strings.Contains(got.Message, leak) {
					t.Errorf("message %q leaks %q", got.Message, leak)
				}
			}
		})
	}
}

func TestValidateCallbackBaseURL(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"", "", true},
		{"http://127.0.0.1:8080/api/memory", "http://127.0.0.1:8080/api/memory", true},
		{"http://127.0.0.1:8080/api/memory/", "http://127.0.0.1:8080/api/memory", true},
		{"https://app.example", "https://app.example", true},
		{"127.0.0.1:8080", "", false},
		{"/api/memory", "", false},
		{"javascript:alert(1)", "", false},
		{"http:///path", "", false},
		{"http://h/p#frag", "", false},
		{"http://h/p?", "", false},
		{"http://localhost:8080/api/memory", "", false}, // an IP literal, per RFC 8252 section 8.3
		{"http://LocalHost/api", "", false},
	}
	for _, tt := range tests {
		got, err := handlers.ValidateCallbackBaseURL(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ValidateCallbackBaseURL(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestCallbackURL(t *testing.T) {
	reg, err := provider.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	flows := oauth.NewFlowManager()
	t.Cleanup(func() { flows.Close() })
	svc := &provider.Service{Registry: reg, Profiles: provider.HermesProfiles{Root: t.TempDir()}, Flows: flows}
	if _, err := handlers.New(&provider.Service{Registry: reg}, ""); err == nil {
		t.Error("New accepted a Service without ProfileResolver and FlowManager")
	}
	h, err := handlers.New(svc, "http://127.0.0.1:8080/api/memory/")
	if err != nil {
		t.Fatal(err)
	}
	if h.DefaultRedirect() != oauth.RedirectCallback {
		t.Errorf("DefaultRedirect = %s, want callback", h.DefaultRedirect())
	}
	for profile, want := range map[string]string{
		"default": "http://127.0.0.1:8080/api/memory/profiles/default/providers/honcho/callback",
		"current": "http://127.0.0.1:8080/api/memory/profiles/default/providers/honcho/callback",
		"work":    "http://127.0.0.1:8080/api/memory/profiles/work/providers/honcho/callback",
	} {
		if got := h.CallbackURL(profile, "honcho"); got != want {
			t.Errorf("CallbackURL(%q) = %q, want %q", profile, got, want)
		}
	}
	h, err = handlers.New(svc, "")
	if err != nil {
		t.Fatal(err)
	}
	if h.DefaultRedirect() != oauth.RedirectLoopback || h.CallbackURL("default", "honcho") != "" {
		t.Errorf("without a base URL: DefaultRedirect %s, CallbackURL %q", h.DefaultRedirect(), h.CallbackURL("default", "honcho"))
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
		handlers.NotFound(w, httptest.NewRequest("GET", tt.path, nil))
		if !strings.Contains(w.Body.String(), `"error":"`+tt.wantCode+`"`) {
			t.Errorf("NotFound(%s) = %d %s, want %s", tt.path, w.Code, w.Body, tt.wantCode)
		}
	}
}
