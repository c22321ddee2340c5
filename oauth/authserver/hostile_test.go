package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/memconnect/memconnect/internal/outbound"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
)

// TestMetadataRedirects: a metadata GET follows a redirect to the same
// origin, and refuses one to another origin.
func TestMetadataRedirects(t *testing.T) {
	t.Parallel()
	var issuer string
	mux := http.NewServeMux()
	mux.HandleFunc("/moved/.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%q,"authorization_endpoint":"%s/a","token_endpoint":"%s/t"}`, issuer, issuer, issuer)
	})
	mux.HandleFunc("/.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/moved/.well-known/oauth-authorization-server", http.StatusFound)
	})
	same := httptest.NewServer(mux)
	defer same.Close()
	issuer = same.URL
	if md, err := Discover(context.Background(), nil, same.URL); err != nil || md.TokenEndpoint != same.URL+"/t" {
		t.Fatalf("same-origin redirect: Discover = %+v, %v", md, err)
	}

	other := testkit.Redirecting(t, same.URL+"/moved")
	_, err := Discover(context.Background(), nil, other.URL)
	var re *outbound.RedirectError
	if !errors.As(err, &re) || re.Secret {
		t.Fatalf("cross-origin redirect: err = %v; want a metadata *RedirectError", err)
	}
}

// TestStepDeadlines: a server that never answers, or trickles its answer
// a byte at a time, fails the step at its deadline as an *UpstreamError
// naming the server and the step.
func TestStepDeadlines(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so that a client going away is noticed
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	trickle := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		for _, b := range []byte(`{"issuer":"x","padding":"` + strings.Repeat("x", 1000) + `"}`) {
			if _, err := w.Write([]byte{b}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-time.After(20 * time.Millisecond):
			case <-release:
				return
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(trickle.Close)
	t.Cleanup(func() { close(release) }) // before the servers close

	tests := []struct {
		name string
		step string
		call func(ctx context.Context) error
	}{
		{"server metadata never answers", StepServerMetadata, func(ctx context.Context) error {
			_, err := Discover(ctx, nil, hang.URL)
			return err
		}},
		{"server metadata trickles", StepServerMetadata, func(ctx context.Context) error {
			_, err := Discover(ctx, nil, trickle.URL)
			return err
		}},
		{"probe never answers", StepProbe, func(ctx context.Context) error {
			_, _, err := DiscoverResource(ctx, nil, hang.URL+"/mcp")
			return err
		}},
		{"registration never answers", StepRegistration, func(ctx context.Context) error {
			_, err := Register(ctx, nil, hang.URL+"/register", ClientMetadata{RedirectURIs: []string{"http://127.0.0.1/cb"}})
			return err
		}},
		{"revocation never answers", StepRevocation, func(ctx context.Context) error {
			return Revoke(ctx, nil, hang.URL+"/revoke", "c", "tok", "")
		}},
	}
	// Every step starts at once and waits out its deadline; the subtests
	// then read what each came to.
	done := make([]chan error, len(tests))
	for i, tt := range tests {
		done[i] = make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			done[i] <- tt.call(ctx)
		}()
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			select {
			case err = <-done[i]:
			case <-time.After(time.Minute):
				t.Fatal("the step did not end at its deadline")
			}
			var ue *UpstreamError
			if !errors.As(err, &ue) || ue.Step != tt.step || !ue.Timeout() {
				t.Fatalf("err = %v; want a timed-out *UpstreamError of step %q", err, tt.step)
			}
			if !strings.Contains(err.Error(), "127.0.0.1") || !strings.Contains(ue.Reason(), "did not answer in time") {
				t.Errorf("err = %v; want the server and the timeout named", err)
			}
		})
	}
}

// TestRegisteredClientIDChecked: a registration answer's client_id must be
// a printable string of sane length.
func TestRegisteredClientIDChecked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, id, want string
	}{
		{"missing", ``, "names no client_id"},
		{"null", `null`, "names no client_id"},
		{"number", `12345`, "not a string"},
		{"empty", `""`, "empty"},
		{"blank", `"   "`, "empty"},
		{"long", `"` + strings.Repeat("a", 256) + `"`, "longer than 255"},
		{"control", `"abc\u0007"`, "U+0007"},
		{"newline", `"abc\ndef"`, "U+000A"},
		{"bidi", `"abc\u202edef"`, "U+202E"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusCreated)
				if tt.id == "" {
					fmt.Fprint(w, `{"redirect_uris":["http://127.0.0.1/cb"]}`)
					return
				}
				fmt.Fprintf(w, `{"client_id":%s,"redirect_uris":["http://127.0.0.1/cb"]}`, tt.id)
			}))
			defer srv.Close()
			ci, err := Register(context.Background(), nil, srv.URL, ClientMetadata{RedirectURIs: []string{"http://127.0.0.1/cb"}})
			var ue *UpstreamError
			if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Register = %+v, %v; want an *UpstreamError saying %q", ci, err, tt.want)
			}
		})
	}
}

// TestLoopbackClientsRegisterAsNative: a client whose redirect URIs are
// all loopback registers with application_type "native", so that the
// server accepts any loopback port; one with a web redirect does not.
func TestLoopbackClientsRegisterAsNative(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		uris []string
		want string
	}{
		{[]string{"http://127.0.0.1:8765/callback"}, "native"},
		{[]string{"http://127.0.0.1:8765/callback", "http://[::1]:9/cb"}, "native"},
		{[]string{"https://memory.example/api/memory/callback", "http://127.0.0.1:8765/callback"}, ""},
	} {
		t.Run(strings.Join(tt.uris, " "), func(t *testing.T) {
			var got map[string]any
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = json.NewDecoder(r.Body).Decode(&got)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusCreated)
				uris, _ := json.Marshal(tt.uris)
				fmt.Fprintf(w, `{"client_id":"c1","redirect_uris":%s}`, uris)
			}))
			defer srv.Close()
			if _, err := Register(context.Background(), nil, srv.URL, ClientMetadata{RedirectURIs: tt.uris}); err != nil {
				t.Fatal(err)
			}
			if at, _ := got["application_type"].(string); at != tt.want {
				t.Errorf("application_type = %q, want %q", at, tt.want)
			}
		})
	}
}
