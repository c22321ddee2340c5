package outbound

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestUserAgent: every request through a client of this package names the
// module, unless it sets its own User-Agent; the caller's client is not
// changed.
func TestUserAgent(t *testing.T) {
	got := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.UserAgent() }))
	defer srv.Close()
	host := &http.Client{}
	for name, c := range map[string]*http.Client{"secret": Secret(host), "metadata": Metadata(host), "twice": Secret(Metadata(nil))} {
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if ua := <-got; !strings.HasPrefix(ua, "memconnect/") || !strings.Contains(ua, "github.com/memconnect/memconnect") {
			t.Errorf("%s: User-Agent %q; want the module named", name, ua)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("User-Agent", "host/1")
	resp, err := Secret(host).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ua := <-got; ua != "host/1" {
		t.Errorf("User-Agent %q; want the request's own", ua)
	}
	if host.Transport != nil || host.CheckRedirect != nil {
		t.Error("the caller's client was changed")
	}
}

// TestRedirectRules: a request through Secret follows no redirect at all,
// not even to its own origin, and the body never reaches the location; a
// metadata GET follows a few, each to the same origin (http only on a
// loopback host), and no more than MaxRedirects.
func TestRedirectRules(t *testing.T) {
	reached := make(chan string, 16)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached <- "other " + r.URL.Path }))
	defer other.Close()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/to-other":
			http.Redirect(w, r, other.URL+"/stolen", http.StatusTemporaryRedirect)
		case strings.HasPrefix(r.URL.Path, "/hops/"):
			n := len(strings.TrimPrefix(r.URL.Path, "/hops/"))
			if n == 0 {
				reached <- "done"
				return
			}
			http.Redirect(w, r, "/hops/"+strings.Repeat("x", n-1), http.StatusFound)
		case r.URL.Path == "/to-self":
			http.Redirect(w, r, "/landed", http.StatusTemporaryRedirect)
		default:
			reached <- "self " + r.URL.Path
		}
	}))
	defer srv.Close()
	tests := []struct {
		name    string
		client  *http.Client
		method  string
		path    string
		follows bool
	}{
		{"secret POST to another origin", Secret(nil), http.MethodPost, "/to-other", false},
		{"secret POST to its own origin", Secret(nil), http.MethodPost, "/to-self", false},
		{"secret GET", Secret(nil), http.MethodGet, "/to-self", false},
		{"metadata to another origin", Metadata(nil), http.MethodGet, "/to-other", false},
		{"metadata within its origin", Metadata(nil), http.MethodGet, "/to-self", true},
		{"metadata, MaxRedirects hops", Metadata(nil), http.MethodGet, "/hops/" + strings.Repeat("x", MaxRedirects), true},
		{"metadata, one hop too many", Metadata(nil), http.MethodGet, "/hops/" + strings.Repeat("x", MaxRedirects+1), false},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader("refresh_token=secret"))
		resp, err := tt.client.Do(req)
		if resp != nil {
			resp.Body.Close()
		}
		var re *RedirectError
		if tt.follows {
			if err != nil {
				t.Errorf("%s: %v; want the redirect followed", tt.name, err)
			}
		} else if !errors.As(err, &re) || strings.Contains(re.Error(), "stolen") {
			t.Errorf("%s: %v; want a *RedirectError naming origins only", tt.name, err)
		}
		select {
		case where := <-reached:
			if !tt.follows || strings.HasPrefix(where, "other") {
				t.Errorf("%s: the request reached %s", tt.name, where)
			}
		default:
			if tt.follows {
				t.Errorf("%s: the redirect's target was not reached", tt.name)
			}
		}
	}
}
