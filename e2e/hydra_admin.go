package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// CreatePublicClient registers a public OAuth 2.0 client with Hydra's admin
// API (POST /admin/clients): token_endpoint_auth_method "none" (the client
// proves itself with PKCE, RFC 7636), grant types authorization_code and
// refresh_token, response type code, scope "openid offline_access write".
// Without offline_access Hydra issues no refresh token.
//
// Hydra matches redirect URIs exactly: host (127.0.0.1 is not localhost) and
// path must be equal; only the port may differ, and only for a loopback IP
// literal (RFC 8252 section 7.3).
func (h *Hydra) CreatePublicClient(t testing.TB, id string, redirectURIs ...string) {
	t.Helper()
	body := map[string]any{
		"client_id":                  id,
		"client_name":                "memconnect e2e " + id,
		"token_endpoint_auth_method": "none",
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"scope":                      "openid offline_access write",
		"redirect_uris":              redirectURIs,
	}
	var got struct {
		ClientID string `json:"client_id"`
	}
	if err := adminJSON(context.Background(), h.admin, http.MethodPost, h.AdminURL+"/admin/clients", body, &got, http.StatusCreated); err != nil {
		t.Fatalf("e2e: create client %q: %v", id, err)
	}
	if got.ClientID != id {
		t.Fatalf("e2e: create client: got client_id %q, want %q", got.ClientID, id)
	}
}

// Introspect asks Hydra's admin API (POST /admin/oauth2/introspect, RFC 7662)
// whether token, an access or a refresh token, is active and for which
// client. An inactive token has an empty clientID.
func (h *Hydra) Introspect(t testing.TB, token string) (active bool, clientID string) {
	t.Helper()
	active, clientID, err := h.introspect(context.Background(), token)
	if err != nil {
		t.Fatalf("e2e: introspect: %v", err)
	}
	return active, clientID
}

// introspect is Introspect reporting its error: for a resource server's
// handler, which must not fail a test from its goroutine.
func (h *Hydra) introspect(ctx context.Context, token string) (active bool, clientID string, err error) {
	form := url.Values{"token": {token}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.AdminURL+"/admin/oauth2/introspect", strings.NewReader(form.Encode()))
	if err != nil {
		return false, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	var got struct {
		Active   bool   `json:"active"`
		ClientID string `json:"client_id"`
	}
	if err := doJSON(h.admin, req, &got, http.StatusOK); err != nil {
		return false, "", err
	}
	return got.Active, got.ClientID, nil
}

// adminJSON sends in as a JSON body (none when nil) and decodes the answer
// into out (ignored when nil). An answer other than want is an error that
// quotes the start of the body.
func adminJSON(ctx context.Context, c *http.Client, method, u string, in, out any, want int) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	return doJSON(c, req, out, want)
}

// doJSON runs req and decodes a JSON answer with status want into out.
func doJSON(c *http.Client, req *http.Request, out any, want int) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read body: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, want, tail(b, 1024))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode: %w", req.Method, req.URL.Path, err)
	}
	return nil
}
