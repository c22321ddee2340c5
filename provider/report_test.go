package provider_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/provider"
)

func TestStatusReportJSON(t *testing.T) {
	t.Parallel()
	exp := time.Date(2026, 11, 28, 22, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		rep  provider.StatusReport
		want string
	}{
		{
			name: "not connected",
			rep:  provider.StatusReport{Provider: "honcho", Profile: "default", Supported: true},
			want: `{"provider":"honcho","profile":"default","supported":true,"connected":false,"auth":null,"reauth_required":false,"token":null,"flow":null}`,
		},
		{
			name: "api key hint stays out",
			rep:  provider.StatusReport{Provider: "honcho", Profile: "work", Supported: true, Connected: true, Auth: "apikey", APIKeyHint: "…cdef"},
			want: `{"provider":"honcho","profile":"work","supported":true,"connected":true,"auth":"apikey","reauth_required":false,"token":null,"flow":null}`,
		},
		{
			name: "a zero flow is idle with null fields",
			rep:  provider.StatusReport{Provider: "honcho", Profile: "default", Flow: &flow.Flow{}},
			want: `{"provider":"honcho","profile":"default","supported":false,"connected":false,"auth":null,"reauth_required":false,"token":null,` +
				`"flow":{"id":null,"state":"idle","method":null,"detail":null,"authorize_url":null,"redirect_uri":null,"user_code":null,"verification_uri":null,"expires_at":null}}`,
		},
		{
			name: "oauth with a pending flow, times in UTC seconds",
			rep: provider.StatusReport{
				Provider: "honcho", Profile: "default", Supported: true, Connected: true, Auth: "oauth",
				Token: &provider.TokenReport{ClientID: "hermes-agent", Scope: "write", ExpiresAt: exp.In(time.FixedZone("x", 3600)), ExpiresIn: 3412, Refreshable: true},
				Flow: &flow.Flow{ID: "f1", State: flow.StatePending, Method: flow.MethodBrowser, Detail: "Waiting for browser consent",
					AuthorizeURL: "https://a/authorize", RedirectURI: "http://127.0.0.1:8765/callback", ExpiresAt: exp.Add(500).In(time.FixedZone("y", -7200))},
			},
			want: `{"provider":"honcho","profile":"default","supported":true,"connected":true,"auth":"oauth","reauth_required":false,` +
				`"token":{"client_id":"hermes-agent","scope":"write","expires_at":"2026-11-28T22:00:00Z","expires_in":3412,"refreshable":true},` +
				`"flow":{"id":"f1","state":"pending","method":"browser","detail":"Waiting for browser consent","authorize_url":"https://a/authorize",` +
				`"redirect_uri":"http://127.0.0.1:8765/callback","user_code":null,"verification_uri":null,"expires_at":"2026-11-28T22:00:00Z"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.rep)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("got  %s\nwant %s", b, tt.want)
			}
			var back provider.StatusReport
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			b2, err := json.Marshal(back)
			if err != nil {
				t.Fatal(err)
			}
			if string(b2) != tt.want {
				t.Errorf("round trip got %s", b2)
			}
		})
	}
}
