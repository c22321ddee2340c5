package authserver

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/memconnect/memconnect/internal/outbound"
)

// ResourceMetadata is OAuth 2.0 protected resource metadata (RFC 9728
// section 2): what a resource server, such as an MCP server, says of the
// authorization servers that issue its tokens.
type ResourceMetadata struct {
	// Resource is the resource identifier: the value of the resource
	// indicator (RFC 8707) of every request for a token to it.
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers,omitempty"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported,omitempty"`
	ResourceName           string   `json:"resource_name,omitempty"`
}

// Challenge is what a 401 answer's "WWW-Authenticate: Bearer" challenge
// says (RFC 6750 section 3, RFC 9728 section 5.1).
type Challenge struct {
	// ResourceMetadata is the URL of the protected resource metadata.
	ResourceMetadata string
	// Scope is the scope the resource asks for; "" for none named.
	Scope string
	// Error is the error code, such as "invalid_token"; "" for none.
	Error string
}

// ParseChallenge reads the Bearer challenge of WWW-Authenticate header
// values; ok is false when there is none. Parameters of other schemes are
// ignored.
func ParseChallenge(headers []string) (c Challenge, ok bool) {
	for _, h := range headers {
		params, found := bearerParams(h)
		if !found {
			continue
		}
		return Challenge{ResourceMetadata: params["resource_metadata"], Scope: params["scope"], Error: params["error"]}, true
	}
	return Challenge{}, false
}

// bearerParams finds the Bearer challenge in one WWW-Authenticate value
// (which may hold several challenges) and returns its auth-params.
func bearerParams(h string) (map[string]string, bool) {
	var params map[string]string
	in := false
	for rest := strings.TrimSpace(h); rest != ""; {
		// A token: a scheme, or a parameter name followed by '='.
		i := strings.IndexAny(rest, " \t,=")
		if i < 0 {
			i = len(rest)
		}
		tok := rest[:i]
		rest = strings.TrimLeft(rest[i:], " \t")
		if tok == "" {
			// A separator or a stray '=' where a name belongs: skip it.
			if rest != "" {
				rest = rest[1:]
			}
			rest = strings.TrimLeft(rest, ", \t")
			continue
		}
		if !strings.HasPrefix(rest, "=") {
			// A new scheme begins.
			if in {
				return params, true
			}
			in = strings.EqualFold(tok, "Bearer")
			if in {
				params = map[string]string{}
			}
			continue
		}
		rest = strings.TrimLeft(rest[1:], " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			j := 1
			for ; j < len(rest) && rest[j] != '"'; j++ {
				if rest[j] == '\\' && j+1 < len(rest) {
					j++
				}
				b.WriteByte(rest[j])
			}
			val = b.String()
			rest = rest[min(j+1, len(rest)):]
		} else {
			j := strings.IndexAny(rest, " \t,")
			if j < 0 {
				j = len(rest)
			}
			val, rest = rest[:j], rest[j:]
		}
		if in {
			params[strings.ToLower(tok)] = val
		}
		rest = strings.TrimLeft(rest, ", \t")
	}
	return params, in
}

// DiscoverResource finds the protected resource metadata of the resource
// at resourceURL (RFC 9728), as an MCP client does: it sends one request
// without a token and follows the resource_metadata of the 401 answer's
// Bearer challenge; without one it tries the well-known URL
// ("/.well-known/oauth-protected-resource" inserted before the path), then
// the one at the root. It returns the metadata and the challenge, if any
// (its scope is the scope the resource asks for).
//
// The metadata must name at least one authorization server, and its
// resource must be resourceURL or a prefix of it on the same origin (RFC
// 9728 section 3.3 asks for identity; servers that name their origin are
// accepted, never another origin). Every URL must be https (http on a
// loopback host only). A server at fault is an [*UpstreamError] naming
// the URL and the step; each request has [StepTimeout] (a shorter deadline
// of ctx wins), and a redirect is followed only to the same https origin,
// three at most. c nil means [http.DefaultClient].
func DiscoverResource(ctx context.Context, c *http.Client, resourceURL string) (*ResourceMetadata, Challenge, error) {
	c = outbound.Metadata(c)
	u, err := parseResourceURL(resourceURL)
	if err != nil {
		return nil, Challenge{}, fmt.Errorf("oauth: resource discovery: %w", err)
	}
	_, ch, err := Probe(ctx, c, resourceURL, "")
	if ctx.Err() != nil || outbound.TimedOut(err) {
		return nil, Challenge{}, upstream(StepProbe, resourceURL, cmp.Or(err, ctx.Err()))
	}
	var candidates []string
	if ch.ResourceMetadata != "" {
		candidates = append(candidates, ch.ResourceMetadata)
	}
	root := u.Scheme + "://" + u.Host
	path := strings.TrimRight(u.EscapedPath(), "/")
	if path != "" {
		candidates = append(candidates, root+"/.well-known/oauth-protected-resource"+path)
	}
	candidates = append(candidates, root+"/.well-known/oauth-protected-resource")

	var errs []error
	for _, loc := range candidates {
		lu, err := url.Parse(loc)
		if err != nil || !secureURL(lu) {
			return nil, ch, upstream(StepProbe, resourceURL, fmt.Errorf("the challenge names resource_metadata %q, not an https URL", loc))
		}
		var md ResourceMetadata
		if err := getJSON(ctx, c, loc, &md); err != nil {
			if ctx.Err() != nil || outbound.TimedOut(err) {
				return nil, ch, upstream(StepResourceMetadata, loc, err)
			}
			errs = append(errs, err)
			continue
		}
		if err := md.check(u); err != nil {
			return nil, ch, upstream(StepResourceMetadata, loc, err)
		}
		return &md, ch, nil
	}
	return nil, ch, upstream(StepResourceMetadata, resourceURL, fmt.Errorf("found no protected resource metadata (RFC 9728): %w", joinCauses(errs)))
}

// check reports what makes the metadata unusable for the resource at u.
func (m *ResourceMetadata) check(u *url.URL) error {
	ru, err := url.Parse(m.Resource)
	if m.Resource == "" || err != nil {
		return errors.New("the metadata name no resource")
	}
	want := strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/")
	got := strings.TrimRight(m.Resource, "/")
	if ru.Scheme != u.Scheme || !strings.EqualFold(ru.Host, u.Host) || ru.RawQuery != "" || ru.Fragment != "" ||
		!(got == want || strings.HasPrefix(want, got+"/")) {
		return fmt.Errorf("the metadata name resource %q, which is not %s", m.Resource, want)
	}
	if len(m.AuthorizationServers) == 0 {
		return errors.New("the metadata name no authorization_servers")
	}
	for _, as := range m.AuthorizationServers {
		au, err := url.Parse(as)
		if err != nil || !secureURL(au) {
			return fmt.Errorf("its authorization server %q is not an https URL", as)
		}
	}
	return nil
}

// Probe sends the resource at resourceURL an MCP initialize request, with
// token as its Bearer token when not empty, and returns the answer's
// status and, for a 401, its Bearer challenge. The body is not read
// beyond 4 KiB. The request has [StepTimeout] (a shorter deadline of ctx
// wins) and follows no redirect: the token goes to resourceURL only. c nil
// means [http.DefaultClient].
func Probe(ctx context.Context, c *http.Client, resourceURL, token string) (status int, ch Challenge, err error) {
	c = outbound.Secret(c) // the token, when there is one, goes to resourceURL only
	ctx, cancel := outbound.Step(ctx)
	defer cancel()
	body := []byte(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"memconnect","version":"1"}}}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, resourceURL, bytes.NewReader(body))
	if err != nil {
		return 0, Challenge{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, Challenge{}, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode == http.StatusUnauthorized {
		ch, _ = ParseChallenge(resp.Header.Values("WWW-Authenticate"))
	}
	return resp.StatusCode, ch, nil
}

// getJSON GETs one JSON document of at most 1 MiB into v, within
// [StepTimeout] (body included).
func getJSON(ctx context.Context, c *http.Client, loc string, v any) error {
	ctx, cancel := outbound.Step(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("%s: %s", loc, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return fmt.Errorf("%s: %w", loc, err)
	}
	if len(body) > maxMetadataBytes {
		return fmt.Errorf("%s: document larger than %d bytes", loc, maxMetadataBytes)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s: not a metadata document: %w", loc, err)
	}
	return nil
}

// CheckResourceURL reports what makes raw unusable as a protected
// resource's URL for [DiscoverResource]: it must be an https URL (http on a
// loopback host only) with a host, without user information, query or
// fragment. The error quotes raw.
func CheckResourceURL(raw string) error {
	_, err := parseResourceURL(raw)
	return err
}

func parseResourceURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || !secureURL(u) || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, fmt.Errorf("%q is not an https URL without query or fragment", raw)
	}
	return u, nil
}

// secureURL reports whether u is an absolute https URL with a host and no
// user information, or http on a loopback host.
func secureURL(u *url.URL) bool {
	return u.Host != "" && u.User == nil && outbound.Secure(u)
}
