package mcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/internal/testsupport/oauthfake"
	"github.com/memconnect/memconnect/oauth/authserver"
	"github.com/memconnect/memconnect/provider"
)

// TestClientIDMetadataDocument: with an https callback base URL and an
// authorization server that takes Client ID Metadata Documents, the client
// is the document the router serves (without the session token): no
// registration.
func TestClientIDMetadataDocument(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mux := http.NewServeMux()
	host := httptest.NewTLSServer(mux)
	defer host.Close()
	srv := oauthfake.NewMCPServer(oauthfake.WithAuthServer(oauthfake.WithClientIDMetadataDocuments(host.Client())))
	defer srv.Close()
	reg := registry(t, srv.URL)
	r, err := memconnect.New(memconnect.Config{
		Registry: reg, Profiles: provider.HermesProfiles{Root: t.TempDir()},
		CallbackBaseURL: host.URL + "/api/memory", SessionToken: "session-0123456789",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	mux.Handle("/api/memory/", http.StripPrefix("/api/memory", r))
	docURL := host.URL + "/api/memory/profiles/default/providers/memdev/client-metadata"

	resp, err := host.Client().Get(docURL)
	if err != nil {
		t.Fatal(err)
	}
	var doc authserver.ClientMetadataDocument
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || doc.ClientID != docURL || doc.TokenEndpointAuthMethod != "none" ||
		len(doc.RedirectURIs) == 0 || doc.RedirectURIs[0] != strings.TrimSuffix(docURL, "/client-metadata")+"/callback" {
		t.Fatalf("document = %d %+v (%v)", resp.StatusCode, doc, err)
	}

	rep, err := r.Connector().Connect(ctx, "default", "memdev", provider.ConnectRequest{})
	if err != nil {
		t.Fatal(err)
	}
	target, err := srv.AS.Consent(ctx, nil, rep.Flow.AuthorizeURL, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.AS.LastAuthorizeQuery().Get("client_id"); got != docURL {
		t.Errorf("client_id = %q, want the document's URL", got)
	}
	cb, err := host.Client().Get(target.String())
	if err != nil {
		t.Fatal(err)
	}
	cb.Body.Close()
	st, err := r.Connector().Status(ctx, "default", "memdev")
	if err != nil || !st.Connected || st.Token == nil || st.Token.ClientID != docURL {
		t.Fatalf("status = %+v, %v; want connected with the document's client", st, err)
	}
	if srv.AS.Registrations() != 0 || srv.AS.DocumentsFetched() != 1 {
		t.Errorf("registrations %d, documents fetched %d; want 0 and 1", srv.AS.Registrations(), srv.AS.DocumentsFetched())
	}
}

// TestNoDocumentWithoutHTTPS: a plain-http callback base URL serves no
// document (404 unsupported), and a server that takes documents gets a
// registration instead.
func TestNoDocumentWithoutHTTPS(t *testing.T) {
	t.Parallel()
	c := newChain(t, []oauthfake.MCPOption{oauthfake.WithAuthServer(oauthfake.WithClientIDMetadataDocuments(http.DefaultClient))})
	if _, err := c.conn.ClientMetadata("default", "memdev"); err == nil || !strings.Contains(err.Error(), "https callback base URL") {
		t.Errorf("ClientMetadata = %v, want unsupported", err)
	}
	c.signIn(t)
	if c.srv.AS.Registrations() != 1 {
		t.Errorf("registrations = %d, want 1", c.srv.AS.Registrations())
	}
}

// TestRefusedDocumentRemembered: an authorization server that announces
// metadata documents but does not take ours (it cannot fetch it, and shows
// the person an error instead of redirecting) is remembered: the next
// sign-in registers a client instead of offering the document again.
func TestRefusedDocumentRemembered(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mux := http.NewServeMux()
	host := httptest.NewTLSServer(mux)
	defer host.Close()
	cannotFetch := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("unreachable") })}
	srv := oauthfake.NewMCPServer(oauthfake.WithAuthServer(oauthfake.WithClientIDMetadataDocuments(cannotFetch)))
	defer srv.Close()
	r, err := memconnect.New(memconnect.Config{Registry: registry(t, srv.URL), Profiles: provider.HermesProfiles{Root: t.TempDir()},
		CallbackBaseURL: host.URL + "/api/memory"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	mux.Handle("/api/memory/", http.StripPrefix("/api/memory", r))
	docURL := host.URL + "/api/memory/profiles/default/providers/memdev/client-metadata"

	rep, err := r.Connector().Connect(ctx, "default", "memdev", provider.ConnectRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustClientID(t, rep.Flow.AuthorizeURL); got != docURL {
		t.Fatalf("first sign-in's client_id = %q; want the document's URL", got)
	}
	if _, err := srv.AS.Consent(ctx, nil, rep.Flow.AuthorizeURL, true); err == nil {
		t.Fatal("the server took a document it could not fetch")
	}
	if _, err := r.Connector().Cancel(ctx, "default", "memdev"); err != nil { // the person gives up
		t.Fatal(err)
	}
	// The next sign-in registers (the fake takes loopback redirect URIs
	// only, so it refuses this https one: the registration was tried).
	_, err = r.Connector().Connect(ctx, "default", "memdev", provider.ConnectRequest{})
	var ue *authserver.UpstreamError
	if !errors.As(err, &ue) || ue.Step != authserver.StepRegistration {
		t.Errorf("second sign-in: %v; want a registration instead of the document", err)
	}
}

func mustClientID(t *testing.T, authorizeURL string) string {
	t.Helper()
	u, err := url.Parse(authorizeURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("client_id")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
