package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/memconnect/memconnect/internal/apierr"
	"github.com/memconnect/memconnect/middleware"
)

func TestHostGuard(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		host    string
		pass    bool
	}{
		{"localhost", nil, "localhost", true},
		{"localhost with port", nil, "localhost:8080", true},
		{"upper case", nil, "LOCALHOST:8080", true},
		{"trailing dot", nil, "localhost.:8080", true},
		{"IPv4 loopback", nil, "127.0.0.1:41234", true},
		{"IPv6 loopback with port", nil, "[::1]:8080", true},
		{"IPv6 loopback without port", nil, "[::1]", true},
		{"IPv6 loopback, long form", nil, "[0:0:0:0:0:0:0:1]:80", true},
		{"rebinding name", nil, "attacker.example:8080", false},
		{"name ending in localhost", nil, "evil-localhost:8080", false},
		{"localhost subdomain", nil, "localhost.attacker.example", false},
		{"other loopback address", nil, "127.0.0.2:8080", false},
		{"other IPv6 address", nil, "[::2]:8080", false},
		{"empty Host", nil, "", false},
		{"configured name", []string{"memory.internal"}, "Memory.Internal:443", true},
		{"configured name, loopback no longer implied", []string{"memory.internal"}, "localhost:8080", false},
		{"configured IPv6", []string{"[fd00::1]"}, "[fd00::1]:8080", true},
		{"configured entry with a port ignores it", []string{"memory.internal:9000"}, "memory.internal:80", true},
		{"only empty entries mean the default", []string{""}, "127.0.0.1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/providers", nil)
			r.Host = tt.host
			rec := httptest.NewRecorder()
			middleware.HostGuard(tt.allowed)(okHandler).ServeHTTP(rec, r)
			if tt.pass {
				checkOK(t, rec)
				return
			}
			got := checkError(t, rec, http.StatusForbidden, apierr.CodeForbidden)
			if !strings.HasPrefix(got.Message, "This server only answers requests addressed to ") {
				t.Errorf("message = %q", got.Message)
			}
		})
	}
}

func TestHostGuardMessageNamesHosts(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/providers", nil)
	r.Host = "attacker.example"
	rec := httptest.NewRecorder()
	middleware.HostGuard(nil)(okHandler).ServeHTTP(rec, r)
	got := checkError(t, rec, http.StatusForbidden, apierr.CodeForbidden)
	if !strings.Contains(got.Message, "localhost, 127.0.0.1, ::1") {
		t.Errorf("message %q does not name the allowed hosts", got.Message)
	}
}

func TestOriginGuard(t *testing.T) {
	tests := []struct {
		name    string
		origins []string
		hosts   []string
		method  string
		origin  []string // Origin header values
		pass    bool
	}{
		{"foreign origin POST", nil, nil, http.MethodPost, []string{"https://attacker.example"}, false},
		{"foreign origin GET", nil, nil, http.MethodGet, []string{"https://attacker.example"}, true},
		{"foreign origin HEAD", nil, nil, http.MethodHead, []string{"https://attacker.example"}, true},
		{"foreign origin OPTIONS", nil, nil, http.MethodOptions, []string{"https://attacker.example"}, true},
		{"foreign origin PUT", nil, nil, http.MethodPut, []string{"https://attacker.example"}, false},
		{"foreign origin PATCH", nil, nil, http.MethodPatch, []string{"https://attacker.example"}, false},
		{"foreign origin DELETE", nil, nil, http.MethodDelete, []string{"https://attacker.example"}, false},
		{"foreign origin, unknown method", nil, nil, "PURGE", []string{"https://attacker.example"}, false},
		{"no Origin POST (curl)", nil, nil, http.MethodPost, nil, true},
		{"null Origin POST", nil, nil, http.MethodPost, []string{"null"}, false},
		{"null Origin GET", nil, nil, http.MethodGet, []string{"null"}, true},
		{"null Origin POST even if listed", []string{"null"}, nil, http.MethodPost, []string{"null"}, false},
		{"empty Origin POST", nil, nil, http.MethodPost, []string{""}, false},
		{"garbage Origin POST", nil, nil, http.MethodPost, []string{"::::"}, false},
		{"two Origins POST", nil, nil, http.MethodPost, []string{"http://localhost:8080", "https://attacker.example"}, false},
		{"loopback origin any port", nil, nil, http.MethodPost, []string{"http://localhost:5173"}, true},
		{"127.0.0.1 origin", nil, nil, http.MethodDelete, []string{"http://127.0.0.1:8080"}, true},
		{"IPv6 loopback origin", nil, nil, http.MethodPost, []string{"http://[::1]:8080"}, true},
		{"loopback host, odd scheme", nil, nil, http.MethodPost, []string{"ftp://localhost"}, false},
		{"loopback-looking foreign name", nil, nil, http.MethodPost, []string{"http://localhost.attacker.example"}, false},
		{"explicit origin", []string{"https://app.example.com"}, nil, http.MethodPost, []string{"https://app.example.com"}, true},
		{"explicit origin, case and slash", []string{"HTTPS://App.Example.com/"}, nil, http.MethodPost, []string{"https://app.example.com"}, true},
		{"explicit origin, other port", []string{"https://app.example.com"}, nil, http.MethodPost, []string{"https://app.example.com:8443"}, false},
		{"explicit origin, other scheme", []string{"https://app.example.com"}, nil, http.MethodPost, []string{"http://app.example.com"}, false},
		{"explicit non-http origin", []string{"tauri://localhost"}, nil, http.MethodPost, []string{"tauri://localhost"}, true},
		{"configured host", nil, []string{"memory.internal"}, http.MethodPost, []string{"https://memory.internal:8443"}, true},
		{"configured host replaces loopback", nil, []string{"memory.internal"}, http.MethodPost, []string{"http://localhost:8080"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/profiles/default/providers/honcho/connect", nil)
			for _, o := range tt.origin {
				r.Header.Add("Origin", o)
			}
			rec := httptest.NewRecorder()
			middleware.OriginGuard(tt.origins, tt.hosts)(okHandler).ServeHTTP(rec, r)
			if tt.pass {
				checkOK(t, rec)
				return
			}
			checkError(t, rec, http.StatusForbidden, apierr.CodeForbidden)
		})
	}
}

// TestOriginGuardFetchMetadata: a state-changing request without an Origin
// header that a browser marks cross-site (Sec-Fetch-Site) is refused like
// a foreign Origin.
func TestOriginGuardFetchMetadata(t *testing.T) {
	tests := []struct {
		method, site string
		pass         bool
	}{
		{http.MethodPost, "cross-site", false},
		{http.MethodDelete, "Cross-Site", false},
		{http.MethodGet, "cross-site", true},
		{http.MethodPost, "same-origin", true},
		{http.MethodPost, "none", true},
		{http.MethodPost, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.site, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/profiles/default/providers/honcho/connect", nil)
			if tt.site != "" {
				r.Header.Set("Sec-Fetch-Site", tt.site)
			}
			rec := httptest.NewRecorder()
			middleware.OriginGuard(nil, nil)(okHandler).ServeHTTP(rec, r)
			if tt.pass {
				checkOK(t, rec)
				return
			}
			checkError(t, rec, http.StatusForbidden, apierr.CodeForbidden)
		})
	}
}
