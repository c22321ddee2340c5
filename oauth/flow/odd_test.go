package flow_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/memconnect/memconnect/internal/testsupport/honchofake"
	"github.com/memconnect/memconnect/internal/testsupport/oauthfake"
	"github.com/memconnect/memconnect/oauth/flow"
)

// oddExpiry rewrites the expires_in of token endpoint answers into a fraction,
// which x/oauth2 refuses: "expires_in": 3600.5.
type oddExpiry struct{ base http.RoundTripper }

var expiresIn = regexp.MustCompile(`"expires_in":(\d+)`)

func (o oddExpiry) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := o.base.RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusOK || !strings.HasSuffix(r.URL.Path, "/token") {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	b = expiresIn.ReplaceAll(b, []byte(`"expires_in":$1.5`))
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	return resp, nil
}

// The code and the device code are spent once the server answered 2xx: an
// answer whose expires_in x/oauth2 refuses still completes the sign-in.
func TestSignInKeepsAnOddAnswer(t *testing.T) {
	t.Parallel()
	for _, method := range []flow.Method{flow.MethodBrowser, flow.MethodDevice} {
		t.Run(string(method), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) { // device polling waits on the fake clock
				var e *flowEnv
				e = newFlowEnv(t, []honchofake.Option{honchofake.WithAutoApprove(), oauthfake.WithInMemoryNetwork()}, func(c *flow.Config) {
					c.HTTPClient = &http.Client{Transport: oddExpiry{base: c.HTTPClient.Transport}}
				})
				req := e.request(flowKeyDefault, flow.RedirectCallback)
				if method == flow.MethodDevice {
					req = e.deviceRequest(t, flowKeyDefault)
				}
				f := e.start(req)
				if method == flow.MethodBrowser {
					back := e.consent(f, true)
					if _, err := e.m.Callback(context.Background(), flowKeyDefault, back.Query()); err != nil {
						t.Fatalf("Callback: %v", err)
					}
				} else if err := e.srv.ApproveDevice(f.UserCode); err != nil {
					t.Fatal(err)
				}
				got, err := waitFlow(t, e.m, flowKeyDefault)
				if err != nil || got.State != flow.StateConnected {
					t.Fatalf("flow = %s, %v; want connected", got.State, err)
				}
				if n := e.done.Calls(); n != 1 {
					t.Fatalf("Complete called %d times", n)
				}
				tok := e.done.toks[0]
				if tok.AccessToken == "" || tok.RefreshToken == "" || tok.ExpiresIn != 3600 || !e.srv.Active(tok.RefreshToken) {
					t.Errorf("token = %+v; want the server's tokens, expiring in 3600 s", tok)
				}
			})
		})
	}
}
