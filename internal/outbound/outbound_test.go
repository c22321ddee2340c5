package outbound

import (
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
