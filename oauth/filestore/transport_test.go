package filestore

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth"
)

// TestStepUpBounded: an insufficient_scope challenge within the bounds is
// followed (the grant needs its scopes); one asking for too many scopes,
// for a scope too long or not of RFC 6749's syntax, or one that would grow
// what the grant needs past MaxNeededScopes, is a plain 403, logged cut
// short, and adds nothing. A 60,000-scope challenge costs one linear pass.
func TestStepUpBounded(t *testing.T) {
	t.Parallel()
	many := func(n int, prefix string) string {
		s := make([]string, n)
		for i := range s {
			s[i] = fmt.Sprintf("%s%d", prefix, i)
		}
		return strings.Join(s, " ")
	}
	tests := []struct {
		name      string
		scopes    []string // the challenges, in order
		wantErr   bool     // the last one is an *oauth.InsufficientScopeError
		wantNeeds int
	}{
		{"within the bounds", []string{"memory.write admin"}, true, 2},
		{"repeated scopes count once", []string{"a b", "b a", "a"}, true, 2},
		{"too many at once", []string{many(oauth.MaxNeededScopes+1, "s")}, false, 0},
		{"60,000 scopes", []string{many(60000, "scope.")}, false, 0},
		{"too long", []string{strings.Repeat("x", oauth.MaxScopeLen+1)}, false, 0},
		{"not a scope-token", []string{"ok caf\u00e9"}, false, 0},
		{"bidi override", []string{"ok \u202ebad"}, false, 0},
		{"growing past the bound", []string{many(oauth.MaxNeededScopes, "a"), "b0"}, false, oauth.MaxNeededScopes},
		{"up to the bound", []string{many(oauth.MaxNeededScopes-1, "a"), "b0"}, true, oauth.MaxNeededScopes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := testkit.NewClock()
			_, _, path := serverGrant(t, clock.Now().Add(time.Hour))
			log := &testkit.SyncBuffer{}
			s := fastStore(path, clock, log)
			challenge := ""
			res := newFakeTokenEndpoint(t, func(n int, w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+challenge+`"`)
				w.WriteHeader(http.StatusForbidden)
			})
			c := &http.Client{Transport: &oauth.Transport{Source: s.TokenSource("hermes")}}
			var err error
			for _, challenge = range tt.scopes {
				var resp *http.Response
				resp, err = c.Get(res.URL + "/tools")
				if err == nil {
					if resp.StatusCode != http.StatusForbidden {
						t.Errorf("status %d; want the 403 as it came", resp.StatusCode)
					}
					resp.Body.Close()
				}
			}
			var ise *oauth.InsufficientScopeError
			if got := errors.As(err, &ise); got != tt.wantErr {
				t.Fatalf("err = %v; want an *InsufficientScopeError: %v", err, tt.wantErr)
			}
			if ise != nil && len(ise.Error()) > 8<<10 {
				t.Errorf("the error is %d bytes long", len(ise.Error()))
			}
			if got := len(s.NeedsScopes("hermes")); got != tt.wantNeeds {
				t.Errorf("NeedsScopes has %d; want %d", got, tt.wantNeeds)
			}
			if !tt.wantErr {
				if !strings.Contains(log.String(), "beyond the bounds") {
					t.Errorf("nothing logged of the refused challenge:\n%s", log)
				}
				if n := len(log.String()); n > 4<<10 {
					t.Errorf("the log is %d bytes long; want the challenge cut short", n)
				}
				if strings.Contains(log.String(), "\u202e") {
					t.Error("the log holds the bidi override")
				}
			}
		})
	}
}
