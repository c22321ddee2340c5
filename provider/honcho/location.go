package honcho

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

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
	write, chain, host, err := p.chain(prof)
	if err != nil {
		return provider.GrantLocation{}, err
	}
	read := write
	for _, c := range chain {
		if exists(c) {
			read = c
			break
		}
	}
	return provider.GrantLocation{ReadPath: read, WritePath: write, Host: host, Layout: p.layout()}, nil
}

// chain returns where prof's grants are written, the files they are read
// from in order of preference, and the host key. The answer depends only on
// the profile, so it is remembered.
func (p *Provider) chain(prof provider.Profile) (write string, chain []string, host string, err error) {
	p.chainMu.Lock()
	c, ok := p.chains[prof]
	p.chainMu.Unlock()
	if ok {
		return c.write, c.chain, c.host, nil
	}
	write, chain, host, err = p.buildChain(prof)
	if err != nil {
		return "", nil, "", err
	}
	p.chainMu.Lock()
	if p.chains == nil || len(p.chains) >= maxChains {
		p.chains = make(map[provider.Profile]grantChain) // profiles that are only names are many
	}
	p.chains[prof] = grantChain{write, chain, host}
	p.chainMu.Unlock()
	return write, chain, host, nil
}

// maxChains bounds the answers of chain remembered.
const maxChains = 4096

// grantChain is a remembered answer of chain; its slice is never modified.
type grantChain struct {
	write string
	chain []string
	host  string
}

func (p *Provider) buildChain(prof provider.Profile) (write string, chain []string, host string, err error) {
	host = p.host
	if host == "" {
		host = HostKey(prof.Name)
	}
	if p.configFile != "" {
		return p.configFile, []string{p.configFile}, host, nil
	}
	if prof.Home == "" {
		return "", nil, "", errors.New("honcho: the profile has no home directory")
	}
	write = filepath.Join(prof.Home, ConfigFileName)
	chain = []string{write}
	if prof.DefaultHome != "" && prof.DefaultHome != prof.Home {
		chain = append(chain, filepath.Join(prof.DefaultHome, ConfigFileName))
	}
	if p.userHome != "" {
		chain = append(chain, filepath.Join(p.userHome, ".honcho", "config.json"))
	}
	return write, chain, host, nil
}

// exists reports whether something is at path. An error other than "does
// not exist" counts as existing, so that reading it reports the error
// instead of silently falling back to another file.
func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
