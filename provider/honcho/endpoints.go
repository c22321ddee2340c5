package honcho

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/memconnect/memconnect/oauth/filestore"
	"github.com/memconnect/memconnect/provider"
)

// rootConfig is what endpoint selection reads from honcho.json.
type rootConfig struct {
	Environment string
	BaseURL     string
}

// readRootConfig reads the root "environment" and "baseUrl" of the file at
// path. A missing or empty file is the zero value; a file that does not
// parse is an [*filestore.ConfigError].
func readRootConfig(path string) (rootConfig, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return rootConfig{}, nil
	}
	if err != nil {
		return rootConfig{}, &filestore.ConfigError{Path: path, Err: err}
	}
	data = bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})
	if len(bytes.TrimSpace(data)) == 0 {
		return rootConfig{}, nil
	}
	var root map[string]json.RawMessage
	if err := json.Unmarshal(data, &root); err != nil {
		return rootConfig{}, &filestore.ConfigError{Path: path, Err: err}
	}
	var rc rootConfig
	// Values of the wrong type are treated as absent, like the Python agent.
	_ = json.Unmarshal(root["environment"], &rc.Environment)
	_ = json.Unmarshal(root["baseUrl"], &rc.BaseURL)
	return rc, nil
}

// isLoopbackURL reports whether raw is an absolute URL whose host is a
// loopback name: "localhost" (or a subdomain of .localhost), an address in
// 127.0.0.0/8, or ::1. The host is parsed, never matched as a substring, so
// "https://localhost.evil.example" is not loopback.
func isLoopbackURL(raw string) bool {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Scheme == "" {
		return false
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isLocal reports whether rc describes a local development setup.
func (rc rootConfig) isLocal() bool {
	return strings.EqualFold(strings.TrimSpace(rc.Environment), "local") || isLoopbackURL(rc.BaseURL)
}

// Endpoints implements [provider.Provider]. Without overrides it picks, from
// the root of the profile's honcho.json:
//
//   - local development ("environment": "local", or a "baseUrl" on a
//     loopback host): [LocalAuthorizeURL] and [LocalTokenURL];
//   - self-hosted (any other "baseUrl"): "<baseUrl>/oauth/token";
//   - otherwise the Honcho cloud: [CloudAuthorizeURL] and [CloudTokenURL].
//
// The device authorization endpoint defaults to "device_authorization" next
// to the token endpoint, and the issuer to the token endpoint's origin.
func (p *Provider) Endpoints(ctx context.Context, prof provider.Profile) (provider.Endpoints, error) {
	ep := provider.Endpoints{
		AuthorizeURL:  CloudAuthorizeURL,
		TokenURL:      CloudTokenURL,
		RevocationURL: p.revocationURL,
		ClientID:      p.clientID,
		Scopes:        slices.Clone(p.scopes),
	}
	loc, err := p.GrantLocation(prof)
	if err != nil {
		return provider.Endpoints{}, err
	}
	// The consent page shows where the grant will be written, never as an
	// absolute path: the server learns nothing of the directory layout.
	if dp := DisplayPath(loc.WritePath, p.userHome); dp != "" {
		ep.AuthParams = url.Values{"config_path": {dp}}
	}
	if p.authorizeURL == "" || p.tokenURL == "" {
		rc, err := readRootConfig(loc.ReadPath)
		if err != nil {
			return provider.Endpoints{}, err
		}
		switch base := strings.TrimRight(strings.TrimSpace(rc.BaseURL), "/"); {
		case rc.isLocal():
			ep.AuthorizeURL, ep.TokenURL = LocalAuthorizeURL, LocalTokenURL
		case base != "":
			u, err := url.Parse(base)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return provider.Endpoints{}, fmt.Errorf("honcho: %s: baseUrl %q is not an http(s) URL", loc.ReadPath, base)
			}
			ep.TokenURL = base + "/oauth/token"
		}
	}
	if p.authorizeURL != "" {
		ep.AuthorizeURL = p.authorizeURL
	}
	if p.tokenURL != "" {
		ep.TokenURL = p.tokenURL
	}
	ep.DeviceAuthURL = p.deviceAuthURL
	if ep.DeviceAuthURL == "" {
		ep.DeviceAuthURL = siblingURL(ep.TokenURL, "device_authorization")
	}
	ep.Issuer = p.issuer
	if ep.Issuer == "" {
		if u, err := url.Parse(ep.TokenURL); err == nil && u.Host != "" {
			ep.Issuer = u.Scheme + "://" + u.Host
		}
	}
	return ep, nil
}

// siblingURL returns the URL named name in the same directory as raw:
// siblingURL("https://h/oauth/token", "x") is "https://h/oauth/x".
func siblingURL(raw, name string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	dir := path.Dir(u.Path)
	if dir == "." {
		dir = "/"
	}
	u.Path = path.Join(dir, name)
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	return u.String()
}
