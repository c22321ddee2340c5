package oauthfake

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestConsentNamesTheClient: the consent page names a dynamically
// registered client by the name it registered with, as a person knows it,
// its id only beside it.
func TestConsentNamesTheClient(t *testing.T) {
	t.Parallel()
	s := NewServer(WithDynamicRegistration())
	defer s.Close()
	body, _ := json.Marshal(map[string]any{"redirect_uris": []string{"http://127.0.0.1:5555/callback"}, "client_name": "Hermes memory"})
	resp, err := http.Post(s.RegistrationURL(), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var reg struct {
		ClientID string `json:"client_id"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	q := url.Values{"response_type": {"code"}, "client_id": {reg.ClientID}, "redirect_uri": {"http://127.0.0.1:5555/callback"},
		"state": {"state-0123456789"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	resp, err = http.Get(s.AuthorizeURL() + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "<strong>Hermes memory</strong> wants access") || !strings.Contains(string(page), reg.ClientID) {
		t.Errorf("consent page:\n%s\nwant the client's name, its id beside it", page)
	}
}
