package honcho

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/provider"
)

// ConfigFileName is the name of a profile's Honcho configuration file.
const ConfigFileName = "honcho.json"

// DefaultHost is the host key of the default profile.
const DefaultHost = "hermes"

// HostKey returns the host key of the profile named profile: "hermes" for
// the default profile, else "hermes_<profile>" with every character outside
// [A-Za-z0-9_-] replaced by "_".
func HostKey(profile string) string {
	if profile == "" || profile == provider.DefaultProfile {
		return DefaultHost
	}
	var b strings.Builder
	b.Grow(len(DefaultHost) + 1 + len(profile))
	b.WriteString(DefaultHost)
	b.WriteByte('_')
	for _, r := range profile {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// GrantLocation implements [provider.Provider]. The grant is read from the
// first file of this chain that exists:
//
//  1. <profile home>/honcho.json
//  2. <default profile home>/honcho.json
//  3. <user home>/.honcho/config.json (only with [WithUserHome])
//
// and written to <profile home>/honcho.json. When no file exists, both
// paths are the profile's own file. [WithConfigFile] replaces the chain with
// one file and [WithHost] the host key.
func (p *Provider) GrantLocation(prof provider.Profile) (provider.GrantLocation, error) {
	host := p.host
	if host == "" {
		host = HostKey(prof.Name)
	}
	if p.configFile != "" {
		return provider.GrantLocation{ReadPath: p.configFile, WritePath: p.configFile, Host: host, DisplayPath: p.displayPath(p.configFile)}, nil
	}
	if prof.Home == "" {
		return provider.GrantLocation{}, errors.New("honcho: the profile has no home directory")
	}
	write := filepath.Join(prof.Home, ConfigFileName)
	read := write
	chain := []string{write}
	if prof.DefaultHome != "" {
		chain = append(chain, filepath.Join(prof.DefaultHome, ConfigFileName))
	}
	if p.userHome != "" {
		chain = append(chain, filepath.Join(p.userHome, ".honcho", "config.json"))
	}
	for _, c := range chain {
		if exists(c) {
			read = c
			break
		}
	}
	return provider.GrantLocation{ReadPath: read, WritePath: write, Host: host, DisplayPath: p.displayPath(write)}, nil
}

// exists reports whether something is at path. An error other than "does
// not exist" counts as existing, so that reading it reports the error
// instead of silently falling back to another file.
func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// displayPath is path as a consent page shows it: see [oauth.DisplayPath].
func (p *Provider) displayPath(path string) string { return oauth.DisplayPath(path, p.userHome) }
