package oauthfake

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/memconnect/memconnect/internal/testsupport/testkit"

	"golang.org/x/oauth2"
)

func TestRevocation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		form        func(tok, old *oauth2.Token) url.Values
		wantStatus  int
		wantError   string
		wantRevoked bool // the grant
	}{
		{
			name: "access token",
			form: func(tok, _ *oauth2.Token) url.Values {
				return url.Values{"client_id": {DefaultClientID}, "token": {tok.AccessToken}, "token_type_hint": {"access_token"}}
			},
			wantStatus: http.StatusOK, wantRevoked: true,
		},
		{
			name: "refresh token",
			form: func(tok, _ *oauth2.Token) url.Values {
				return url.Values{"client_id": {DefaultClientID}, "token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}
			},
			wantStatus: http.StatusOK, wantRevoked: true,
		},
		{
			name: "refresh token with a wrong hint",
			form: func(tok, _ *oauth2.Token) url.Values {
				return url.Values{"client_id": {DefaultClientID}, "token": {tok.RefreshToken}, "token_type_hint": {"access_token"}}
			},
			wantStatus: http.StatusOK, wantRevoked: true,
		},
		{
			name: "superseded refresh token",
			form: func(_, old *oauth2.Token) url.Values {
				return url.Values{"client_id": {DefaultClientID}, "token": {old.RefreshToken}}
			},
			wantStatus: http.StatusOK, wantRevoked: true,
		},
		{
			name: "unknown token",
			form: func(*oauth2.Token, *oauth2.Token) url.Values {
				return url.Values{"client_id": {DefaultClientID}, "token": {"test-rt-unknown"}}
			},
			wantStatus: http.StatusOK,
		},
		{
			name: "token of another client",
			form: func(tok, _ *oauth2.Token) url.Values {
				return url.Values{"client_id": {"other-app"}, "token": {tok.RefreshToken}}
			},
			wantStatus: http.StatusOK,
		},
		{
			name: "unregistered client",
			form: func(tok, _ *oauth2.Token) url.Values {
				return url.Values{"client_id": {"mallory"}, "token": {tok.RefreshToken}}
			},
			wantStatus: http.StatusUnauthorized, wantError: "invalid_client",
		},
		{
			name: "no token",
			form: func(*oauth2.Token, *oauth2.Token) url.Values {
				return url.Values{"client_id": {DefaultClientID}}
			},
			wantStatus: http.StatusBadRequest, wantError: "invalid_request",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newTestServer(t, WithClientID(DefaultClientID), WithClientID("other-app"))
			old := s.IssueGrant("")
			tok, err := s.OAuth2Config("").TokenSource(ctxWithClient(t, s), expired(old)).Token()
			if err != nil {
				t.Fatal(err)
			}
			status, body := postForm(t, s, s.RevocationURL(), tt.form(tok, old))
			if status != tt.wantStatus || (tt.wantError != "" && body["error"] != tt.wantError) {
				t.Fatalf("got %d %v, want %d %q", status, body, tt.wantStatus, tt.wantError)
			}
			for name, v := range map[string]string{"access": tok.AccessToken, "refresh": tok.RefreshToken, "old access": old.AccessToken} {
				if got := s.Active(v); got == tt.wantRevoked {
					t.Errorf("%s token active = %v, want %v", name, got, !tt.wantRevoked)
				}
			}
			want := Stats{Refreshes: 1, TokenRequests: 1}
			if tt.wantError == "" {
				want.Revocations = 1
			}
			if tt.wantRevoked {
				want.RevokedGrants = 1
			}
			if got := s.Stats(); got != want {
				t.Errorf("Stats = %+v, want %+v", got, want)
			}
		})
	}
}

func TestIntrospection(t *testing.T) {
	t.Parallel()
	clk := testkit.NewClock()
	s := newTestServer(t, WithClock(clk), WithAccessTokenTTL(10*time.Minute))
	live := s.IssueGrant("write")
	revoked := s.IssueGrant("write")
	s.RevokeGrant(revoked.AccessToken)
	expiring := s.IssueGrant("write")
	clk.Advance(10 * time.Minute)
	fresh := s.IssueGrant("read")
	exp := clk.Now().Add(10 * time.Minute).Unix()

	tests := []struct {
		name       string
		token      string
		wantActive bool
		wantType   string
		wantScope  string
		wantExp    int64 // 0: absent
	}{
		{"access token", fresh.AccessToken, true, "Bearer", "read", exp},
		{"refresh token", live.RefreshToken, true, "refresh_token", "write", 0},
		{"expired access token", expiring.AccessToken, false, "", "", 0},
		{"refresh token of an expired access token", expiring.RefreshToken, true, "refresh_token", "write", 0},
		{"revoked access token", revoked.AccessToken, false, "", "", 0},
		{"revoked refresh token", revoked.RefreshToken, false, "", "", 0},
		{"unknown", "test-at-nope", false, "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := postForm(t, s, s.IntrospectionURL(), url.Values{"token": {tt.token}})
			if status != http.StatusOK {
				t.Fatalf("status %d, want 200", status)
			}
			if body["active"] != tt.wantActive {
				t.Fatalf("active = %v, want %v", body["active"], tt.wantActive)
			}
			if !tt.wantActive {
				if len(body) != 1 {
					t.Errorf("inactive answer %v says more than active:false", body)
				}
				return
			}
			if body["client_id"] != DefaultClientID || body["token_type"] != tt.wantType || body["scope"] != tt.wantScope {
				t.Errorf("body = %v, want client %s, type %s, scope %s", body, DefaultClientID, tt.wantType, tt.wantScope)
			}
			gotExp, _ := body["exp"].(float64)
			if int64(gotExp) != tt.wantExp {
				t.Errorf("exp = %v, want %d", body["exp"], tt.wantExp)
			}
		})
	}

	status, body := postForm(t, s, s.IntrospectionURL(), url.Values{})
	if status != http.StatusBadRequest || body["error"] != "invalid_request" {
		t.Errorf("no token: %d %v, want 400 invalid_request", status, body)
	}
}
