package handlers

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/memconnect/memconnect/oauth/flow"
)

// The callback page tells the page that started the sign-in how it ended
// (its main element names the outcome, for the page's one script), and its
// policy allows that script by its hash and nothing else.
func TestCallbackPageHandoff(t *testing.T) {
	for _, tt := range []struct {
		name    string
		f       flow.Flow
		err     error
		outcome string
	}{
		{"connected", flow.Flow{State: flow.StateConnected}, nil, "connected"},
		{"denied", flow.Flow{State: flow.StateError}, &flow.Failure{Code: flow.CodeAccessDenied, Detail: "Sign-in was denied"}, "access_denied"},
		{"invalid state", flow.Flow{}, flow.ErrInvalidState, "invalid_state"},
	} {
		rec := httptest.NewRecorder()
		callbackOutcome(tt.f, tt.err, "Honcho").write(rec)
		body := rec.Body.String()
		if !strings.Contains(body, `<main data-outcome="`+tt.outcome+`">`) {
			t.Errorf("%s: the page does not name the outcome %q", tt.name, tt.outcome)
		}
		scripts := regexp.MustCompile(`(?s)<script>(.*?)</script>`).FindAllStringSubmatch(body, -1)
		if len(scripts) != 1 {
			t.Fatalf("%s: %d scripts, want 1", tt.name, len(scripts))
		}
		sum := sha256.Sum256([]byte(scripts[0][1]))
		csp := rec.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") || !strings.HasPrefix(csp, "default-src 'none'") {
			t.Errorf("%s: policy %q does not allow exactly the page's script", tt.name, csp)
		}
		for _, want := range []string{`"memconnect:signin"`, `new BroadcastChannel("memconnect")`, `postMessage(msg,location.origin)`} {
			if !strings.Contains(scripts[0][1], want) {
				t.Errorf("%s: the script lacks %s", tt.name, want)
			}
		}
	}
}

// The page escapes what a server sent: an error description is text, never
// markup.
func TestCallbackPageEscapes(t *testing.T) {
	rec := httptest.NewRecorder()
	fe := &flow.Failure{Code: flow.CodeAuthorization, Detail: "The authorization server refused the sign-in: x (<script>alert(1)</script>)"}
	callbackOutcome(flow.Flow{State: flow.StateError}, fe, "").write(rec)
	body := rec.Body.String()
	if rec.Code != http.StatusBadRequest || strings.Contains(body, "<script>alert") {
		t.Errorf("page = %d, unescaped server text:\n%s", rec.Code, body)
	}
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("page lacks the escaped error: %s", body)
	}
}
