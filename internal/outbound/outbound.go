// Package outbound holds the rules every request to an authorization or
// resource server follows: which redirects it may follow, and how long one
// step may take.
//
// A request that carries a secret (a code and its verifier, a refresh
// token, an API key, a registration) never follows a redirect: a server
// that answers 307 would otherwise receive the same body at whatever
// origin it names. A metadata GET follows at most [MaxRedirects], each to
// the same origin over https (http on a loopback host). The rules, and a
// User-Agent naming the module, are put on a copy of the caller's client,
// never on the client itself.
package outbound

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// StepTimeout bounds one outbound step (a probe, a metadata document, a
// registration, a device authorization, a revocation, a key check) when
// the caller's context allows longer. It includes reading the answer's
// body, so a server that trickles its answer is cut off too.
const StepTimeout = 10 * time.Second

// MaxRedirects is how many redirects a metadata GET follows at most.
const MaxRedirects = 3

// RedirectError reports a redirect that was not followed. It names the
// origins only: the location may hold whatever the server put there.
type RedirectError struct {
	From string // the URL that answered, without query
	To   string // the origin it redirected to
	// Secret reports a request that carries a secret, which follows no
	// redirect at all.
	Secret bool
}

func (e *RedirectError) Error() string {
	if e.Secret {
		return fmt.Sprintf("%s answered with a redirect to %s, which is not followed: a request that carries a secret never follows a redirect", e.From, e.To)
	}
	return fmt.Sprintf("%s answered with a redirect to %s, which is not followed: a metadata request follows at most %d redirects, each to the same https origin", e.From, e.To, MaxRedirects)
}

// Secret returns a copy of c (nil: [http.DefaultClient]) that follows no
// redirect: a redirect is an error wrapping a [*RedirectError].
func Secret(c *http.Client) *http.Client {
	cc := copyOf(c)
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		return &RedirectError{From: bare(via[len(via)-1].URL), To: origin(req.URL), Secret: true}
	}
	return cc
}

// Metadata returns a copy of c (nil: [http.DefaultClient]) that follows at
// most [MaxRedirects] redirects, each to the origin of the first request
// and over https (http only on a loopback host).
func Metadata(c *http.Client) *http.Client {
	cc := copyOf(c)
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		first := via[0].URL
		if len(via) > MaxRedirects || !strings.EqualFold(origin(req.URL), origin(first)) || !Secure(req.URL) {
			return &RedirectError{From: bare(via[len(via)-1].URL), To: origin(req.URL)}
		}
		return nil
	}
	return cc
}

func copyOf(c *http.Client) *http.Client {
	if c == nil {
		c = http.DefaultClient
	}
	cc := *c
	if _, ok := cc.Transport.(*agent); !ok {
		cc.Transport = &agent{base: c.Transport}
	}
	return &cc
}

// UserAgent is the User-Agent of every outbound request that does not set
// one: the module and its version, as the build records it ("devel" in
// the module's own builds). Some servers sit behind firewalls that refuse
// Go's default.
var UserAgent = sync.OnceValue(func() string {
	const module = "github.com/memconnect/memconnect"
	version := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range append([]*debug.Module{&bi.Main}, bi.Deps...) {
			if m.Path == module && m.Version != "" && m.Version != "(devel)" {
				version = m.Version
			}
		}
	}
	return "memconnect/" + version + " (+https://" + module + ")"
})

// agent sets [UserAgent] on requests without one.
type agent struct{ base http.RoundTripper }

func (a *agent) RoundTrip(req *http.Request) (*http.Response, error) {
	base := a.base
	if base == nil {
		base = http.DefaultTransport
	}
	if req.Header.Get("User-Agent") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("User-Agent", UserAgent())
	}
	return base.RoundTrip(req)
}

// Step returns ctx bounded to [StepTimeout] (a shorter deadline of ctx
// wins).
func Step(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, StepTimeout)
}

// origin is u's scheme://host.
func origin(u *url.URL) string { return u.Scheme + "://" + u.Host }

// bare is u without user information, query or fragment.
func bare(u *url.URL) string { return u.Scheme + "://" + u.Host + u.EscapedPath() }

// Secure reports whether u is https, or http on a loopback host
// ("localhost" or a loopback IP: local development and tests).
func Secure(u *url.URL) bool {
	if u.Scheme == "https" {
		return true
	}
	if u.Scheme != "http" {
		return false
	}
	h := u.Hostname()
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// TimedOut reports whether err is a deadline that passed (the context's or
// the transport's).
func TimedOut(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
