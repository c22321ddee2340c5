package authserver_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/memconnect/memconnect/oauth/authserver"
)

func TestParseChallenge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		headers []string
		want    authserver.Challenge
		ok      bool
	}{
		{"quoted", []string{`Bearer resource_metadata="https://r.example/.well-known/oauth-protected-resource/mcp", scope="a b"`},
			authserver.Challenge{ResourceMetadata: "https://r.example/.well-known/oauth-protected-resource/mcp", Scope: "a b"}, true},
		{"token values and error", []string{`Bearer error=invalid_token, scope=memory`}, authserver.Challenge{Scope: "memory", Error: "invalid_token"}, true},
		{"after another scheme", []string{`Basic realm="x", Bearer scope="s"`}, authserver.Challenge{Scope: "s"}, true},
		{"before another scheme", []string{`Bearer scope="s", Basic realm="x"`}, authserver.Challenge{Scope: "s"}, true},
		{"second header", []string{`Basic realm="x"`, `bearer scope="s"`}, authserver.Challenge{Scope: "s"}, true},
		{"escaped quote", []string{`Bearer scope="a\"b"`}, authserver.Challenge{Scope: `a"b`}, true},
		{"bare scheme", []string{`Bearer`}, authserver.Challenge{}, true},
		{"no bearer", []string{`Basic realm="x"`}, authserver.Challenge{}, false},
		{"unterminated quote", []string{`Bearer scope="abc`}, authserver.Challenge{Scope: "abc"}, true},
		{"none", nil, authserver.Challenge{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := authserver.ParseChallenge(tt.headers)
			if got != tt.want || ok != tt.ok {
				t.Errorf("ParseChallenge = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// fakeResource is a resource at /mcp answering 401 with challenge (when
// not empty) and serving docs; "{url}" in either is the server's URL.
func fakeResource(t *testing.T, challenge string, docs map[string]string) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/mcp" {
			if challenge != "" {
				w.Header().Set("WWW-Authenticate", strings.ReplaceAll(challenge, "{url}", srv.URL))
			}
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		body, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(strings.ReplaceAll(body, "{url}", srv.URL)))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestDiscoverResource(t *testing.T) {
	t.Parallel()
	const good = `{"resource":"{url}/mcp","authorization_servers":["https://as.example"],"scopes_supported":["memory"]}`
	const wk = "/.well-known/oauth-protected-resource/mcp"
	tests := []struct {
		name      string
		challenge string
		docs      map[string]string
		wantScope string // of the challenge
		wantErr   string // "" = success; else a part of the error, which also names a URL
	}{
		{"from the challenge", `Bearer resource_metadata="{url}/prm", scope="memory write"`, map[string]string{"/prm": good}, "memory write", ""},
		{"well-known with the path", `Bearer scope="s"`, map[string]string{wk: good}, "s", ""},
		{"well-known at the root", "", map[string]string{"/.well-known/oauth-protected-resource": `{"resource":"{url}","authorization_servers":["https://as.example"]}`}, "", ""},
		{"challenge document missing, well-known found", `Bearer resource_metadata="{url}/gone"`, map[string]string{wk: good}, "", ""},
		{"nothing anywhere", "", nil, "", "found no protected resource metadata"},
		{"another origin's resource", "", map[string]string{wk: `{"resource":"https://evil.example/mcp","authorization_servers":["https://as.example"]}`}, "", "which is not"},
		{"another path's resource", "", map[string]string{wk: `{"resource":"{url}/other","authorization_servers":["https://as.example"]}`}, "", "which is not"},
		{"no resource", "", map[string]string{wk: `{"authorization_servers":["https://as.example"]}`}, "", "name no resource"},
		{"no authorization server", "", map[string]string{wk: `{"resource":"{url}/mcp"}`}, "", "no authorization_servers"},
		{"http authorization server", "", map[string]string{wk: `{"resource":"{url}/mcp","authorization_servers":["http://as.example"]}`}, "", "is not an https URL"},
		{"http metadata URL in the challenge", `Bearer resource_metadata="http://evil.example/prm"`, nil, "", "not an https URL"},
		{"not JSON", "", map[string]string{wk: `<html>`}, "", "not a metadata document"},
		{"oversized", "", map[string]string{wk: `{"resource":"` + strings.Repeat("a", 1<<20) + `"}`}, "", "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeResource(t, tt.challenge, tt.docs)
			md, ch, err := authserver.DiscoverResource(context.Background(), srv.Client(), srv.URL+"/mcp")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "http") {
					t.Fatalf("err = %v, want one with %q naming a URL", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if md.AuthorizationServers[0] != "https://as.example" || ch.Scope != tt.wantScope {
				t.Errorf("metadata %+v, challenge %+v", md, ch)
			}
		})
	}
}

func TestDiscoverResourceBadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"http://example.com/mcp", "https://x.example/mcp?a=1", "mcp", "https://u:p@x.example/"} {
		if _, _, err := authserver.DiscoverResource(context.Background(), nil, u); err == nil || !strings.Contains(err.Error(), "not an https URL") {
			t.Errorf("DiscoverResource(%q) = %v, want a refusal", u, err)
		}
	}
}

func TestRegister(t *testing.T) {
	t.Parallel()
	md := authserver.ClientMetadata{RedirectURIs: []string{"http://127.0.0.1/callback"}, ClientName: "memconnect"}
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr string // "" = success
		code    string // of a *RegistrationError
	}{
		{"registered", 201, `{"client_id":"c1","redirect_uris":["http://127.0.0.1/callback"],"token_endpoint_auth_method":"none"}`, "", ""},
		{"echo left out", 201, `{"client_id":"c1"}`, "", ""},
		{"refused", 400, `{"error":"invalid_redirect_uri","error_description":"no"}`, "invalid_redirect_uri", "invalid_redirect_uri"},
		{"refused without JSON", 403, `nope`, "403", ""},
		{"a confidential client", 201, `{"client_id":"c1","client_secret":"s3cret","token_endpoint_auth_method":"client_secret_basic"}`, "public client", ""},
		{"no client id", 201, `{"redirect_uris":["http://127.0.0.1/callback"]}`, "no client_id", ""},
		{"redirect URI dropped", 201, `{"client_id":"c1","redirect_uris":["http://127.0.0.1/other"]}`, "did not register the redirect URI", ""},
		{"not JSON", 201, `<html>`, "not client information", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Content-Type") != "application/json" || r.Method != http.MethodPost {
					w.WriteHeader(http.StatusBadRequest)
					return
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			ci, err := authserver.Register(context.Background(), srv.Client(), srv.URL+"/register", md)
			if tt.wantErr == "" {
				if err != nil || ci.ClientID != "c1" {
					t.Fatalf("Register = %+v, %v", ci, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), srv.URL) {
				t.Fatalf("err = %v, want one with %q naming the endpoint", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error holds the secret: %v", err)
			}
			if re, ok := errors.AsType[*authserver.RegistrationError](err); tt.code != "" && (!ok || re.ErrorCode != tt.code) {
				t.Errorf("err = %#v, want a RegistrationError %s", err, tt.code)
			}
		})
	}
}

// FuzzParseChallenge: any header value parses without a panic, and a
// parsed challenge's parameters come from the value.
func FuzzParseChallenge(f *testing.F) {
	for _, s := range []string{`Bearer resource_metadata="https://r/x", scope="a b"`, `Basic realm="x", Bearer`, `Bearer scope="a\"`, `=,=, Bearer ==`, `Bearer a="`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		ch, ok := authserver.ParseChallenge([]string{h})
		if !ok && ch != (authserver.Challenge{}) {
			t.Errorf("no challenge, but %+v", ch)
		}
		if len(ch.Scope) > len(h) || len(ch.ResourceMetadata) > len(h) {
			t.Errorf("parameters longer than the header: %+v", ch)
		}
	})
}
