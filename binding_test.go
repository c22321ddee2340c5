package memconnect_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/memconnect/memconnect/internal/connsession"
	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/provider"
)

// sessionEnv is an Env with a static token and session keys, and a
// connect session for the default profile.
func sessionEnv(t *testing.T) (*fixture.Env, map[string]string) {
	t.Helper()
	e := fixture.NewEnv(t, fixture.WithCallback(), fixture.WithSessionToken("host-token-0123456789"),
		fixture.WithSessionKeys(bytes.Repeat([]byte("k"), 32)))
	tok, _, err := e.Router.MintConnectSession("default", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return e, map[string]string{"Authorization": "Bearer " + tok}
}

// connectFor posts connect with header and body, and returns the answer,
// its binding cookie (nil for none) and the status report.
func connectFor(t *testing.T, e *fixture.Env, header map[string]string, body string) (fixture.Exchange, *http.Cookie, provider.StatusReport) {
	t.Helper()
	x := e.Do(fixture.Request{Method: "POST", Path: "/profiles/default/providers/honcho/connect", Header: header, Body: body,
		NoAuth: header["Authorization"] != ""})
	var rep provider.StatusReport
	_ = json.Unmarshal(x.Body, &rep)
	for _, c := range (&http.Response{Header: x.Header}).Cookies() {
		if c.Name == "memconnect_flow" {
			return x, c, rep
		}
	}
	return x, nil, rep
}

// TestLoginCSRFWithConnectSession: a flow started under a connect session
// is bound to whoever started it, whatever headers the request carried: a
// connect session used from curl (no Origin, no Sec-Fetch-Site) gets the
// cookie, and the link it hands to someone else is refused at the callback
// (403 page, no code exchanged, nothing stored); the starter's own cookie
// completes it. Flows that cannot be bound are refused for a session.
func TestLoginCSRFWithConnectSession(t *testing.T) {
	t.Parallel()
	e, session := sessionEnv(t)
	x, cookie, rep := connectFor(t, e, session, "")
	if x.Status != http.StatusAccepted || cookie == nil || rep.Flow == nil {
		t.Fatalf("connect with a session from curl = %d %s, cookie %v; want 202 and a binding cookie", x.Status, x.Body, cookie)
	}
	target, err := e.AS.Consent(t.Context(), e.AS.Client(), rep.Flow.AuthorizeURL, true)
	if err != nil {
		t.Fatal(err)
	}
	cb := strings.TrimPrefix(target.String(), e.Base)
	victim := e.Do(fixture.Request{Method: "GET", Path: cb}) // the victim's browser: its own jar, no such cookie
	callbackHTML(t, victim, http.StatusForbidden, "started in another browser")
	if st := e.Status("default", "honcho"); st.Connected || e.AS.Stats().AuthorizationCodes != 0 {
		t.Fatalf("status = %+v, server %+v; want nothing exchanged or stored", st, e.AS.Stats())
	}

	// The starter, with the cookie, completes a new one.
	_, cookie, rep = connectFor(t, e, session, "")
	if target, err = e.AS.Consent(t.Context(), e.AS.Client(), rep.Flow.AuthorizeURL, true); err != nil {
		t.Fatal(err)
	}
	x = e.Do(fixture.Request{Method: "GET", Path: strings.TrimPrefix(target.String(), e.Base),
		Header: map[string]string{"Cookie": cookie.Name + "=" + cookie.Value}})
	callbackHTML(t, x, http.StatusOK, "Connected to Honcho")

	// Nothing that cannot be bound starts under a session.
	for _, body := range []string{`{"method":"device"}`, `{"redirect":"loopback"}`} {
		if x, _, _ := connectFor(t, e, session, body); x.Status != http.StatusForbidden || !strings.Contains(string(x.Body), "this browser") {
			t.Errorf("connect %s with a session = %d %s; want 403 saying why", body, x.Status, x.Body)
		}
	}
	x = e.Do(fixture.Request{Method: "POST", Path: "/providers/honcho/oauth/start?profile=default", Header: session, NoAuth: true})
	if x.Status != http.StatusForbidden {
		t.Errorf("the Hermes start route with a session = %d %s; want 403", x.Status, x.Body)
	}
	// The host's own credential still starts an unbound flow.
	if x, cookie, _ := connectFor(t, e, nil, `{"redirect":"loopback"}`); x.Status != http.StatusAccepted || cookie != nil {
		t.Errorf("the host's loopback connect = %d %s, cookie %v; want 202 without a cookie", x.Status, x.Body, cookie)
	}
}

// TestPlantedBindingCookie: the nonce is always the server's. A browser
// that presents a memconnect_flow cookie of the right form (planted by
// someone who knows its value) gets a new one, and the planted value does
// not complete the flow. A browser that joins its own pending flow keeps
// its cookie, which still completes it.
func TestPlantedBindingCookie(t *testing.T) {
	t.Parallel()
	e := fixture.NewEnv(t, fixture.WithCallback())
	planted := strings.Repeat("A", 43)
	page := map[string]string{"Sec-Fetch-Site": "same-origin", "Cookie": "memconnect_flow=" + planted}
	_, cookie, rep := connectFor(t, e, page, "")
	if cookie == nil || cookie.Value == planted {
		t.Fatalf("cookie = %v; want a new nonce minted by the server", cookie)
	}
	// The same browser, now holding the server's nonce, connects again:
	// it joins its flow and keeps its cookie.
	again := map[string]string{"Sec-Fetch-Site": "same-origin", "Cookie": "memconnect_flow=" + cookie.Value}
	if _, c2, rep2 := connectFor(t, e, again, ""); c2 != nil || rep2.Flow == nil || rep2.Flow.ID != rep.Flow.ID {
		t.Fatalf("joining: cookie %v, flow %+v; want the same flow and the cookie kept", c2, rep2.Flow)
	}
	target, err := e.AS.Consent(t.Context(), e.AS.Client(), rep.Flow.AuthorizeURL, true)
	if err != nil {
		t.Fatal(err)
	}
	cb := strings.TrimPrefix(target.String(), e.Base)
	x := e.Do(fixture.Request{Method: "GET", Path: cb, Header: map[string]string{"Cookie": "memconnect_flow=" + planted}})
	callbackHTML(t, x, http.StatusForbidden, "started in another browser")

	_, cookie, rep = connectFor(t, e, page, "")
	if target, err = e.AS.Consent(t.Context(), e.AS.Client(), rep.Flow.AuthorizeURL, true); err != nil {
		t.Fatal(err)
	}
	x = e.Do(fixture.Request{Method: "GET", Path: strings.TrimPrefix(target.String(), e.Base),
		Header: map[string]string{"Cookie": "memconnect_flow=" + cookie.Value}})
	callbackHTML(t, x, http.StatusOK, "Connected to Honcho")
}

// TestConnectSessionBoundsWhenVerified: the maximum lifetime is enforced
// when a session is used, not only when it is minted: one signed with the
// real key but living longer than MaxConnectSessionTTL is refused (401).
// A session is not minted for a profile that does not exist.
func TestConnectSessionBoundsWhenVerified(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte("k"), 32)
	clock := testkit.NewClock()
	e := fixture.NewEnv(t, fixture.WithSessionToken("host-token-0123456789"), fixture.WithSessionKeys(key), fixture.WithClock(clock))
	keys, err := connsession.New([][]byte{key})
	if err != nil {
		t.Fatal(err)
	}
	now := clock.Now().Unix()
	for _, tt := range []struct {
		name   string
		claims connsession.Claims
		want   int
	}{
		{"within the maximum", connsession.Claims{Profile: "default", Issued: now, Expires: now + 3600}, 200},
		{"far beyond the maximum", connsession.Claims{Profile: "default", Issued: now, Expires: now + 365*24*3600}, 401},
		{"no issue time", connsession.Claims{Profile: "default", Expires: now + 3600}, 401},
	} {
		x := e.Do(fixture.Request{Method: "GET", Path: "/profiles/default/providers/honcho/status",
			Header: map[string]string{"Authorization": "Bearer " + keys.Mint(tt.claims)}, NoAuth: true})
		if x.Status != tt.want {
			t.Errorf("%s: %d %s; want %d", tt.name, x.Status, x.Body, tt.want)
		}
	}
	if _, _, err := e.Router.MintConnectSession("nosuchprofile", nil, 0); !errors.Is(err, provider.ErrProfileNotFound) {
		t.Errorf("minting for a missing profile: %v; want ErrProfileNotFound", err)
	}
}

// TestProvidersUnderAConnectSession: GET /providers with a connect session
// for some providers lists those only, so a Connect page offers nothing
// the session cannot connect; the host's credential sees them all.
func TestProvidersUnderAConnectSession(t *testing.T) {
	t.Parallel()
	e, _ := sessionEnv(t)
	tok, _, err := e.Router.MintConnectSession("default", []string{"honcho"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	x := e.Do(fixture.Request{Method: "GET", Path: "/providers", Header: map[string]string{"Authorization": "Bearer " + tok}, NoAuth: true})
	if x.Status != 200 || !strings.Contains(string(x.Body), `"honcho"`) || strings.Contains(string(x.Body), `"nooauth"`) {
		t.Errorf("providers with a session for honcho = %d %s; want honcho alone", x.Status, x.Body)
	}
	if x := e.Do(fixture.Request{Method: "GET", Path: "/providers"}); !strings.Contains(string(x.Body), `"nooauth"`) {
		t.Errorf("providers with the host's token = %s; want every provider", x.Body)
	}
}
