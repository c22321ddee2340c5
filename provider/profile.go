package provider

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"

	"github.com/memconnect/memconnect/errkind"
)

// ErrInvalidProfile reports a profile name that is not valid: it does not
// match ^[a-z0-9][a-z0-9_-]{0,63}$ and is not "default" or "current".
var ErrInvalidProfile = errkind.New(errkind.InvalidProfile, "provider: invalid profile name", "")

// ErrProfileNotFound reports a well-formed profile name for which no profile
// exists.
var ErrProfileNotFound = errkind.New(errkind.ProfileNotFound, "provider: profile not found",
	"There is no profile with this name. Use \"default\", or create the profile first.")

// DefaultProfile is the name of the default profile. The name "current" is
// an alias for it.
const DefaultProfile = "default"

// profileNameRE is the grammar of a named profile.
var profileNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Profile is a resolved profile: the unit that owns its own memory-provider
// configuration and grants.
type Profile struct {
	// Name is the canonical name: "default" for the default profile
	// (also when it was asked for as "current"), else the profile's name.
	Name string
	// Home is the profile's home directory.
	Home string
	// DefaultHome is the default profile's home directory; configuration
	// not found in Home may be read from there.
	DefaultHome string
}

// ProfileResolver turns a profile name, as given in a URL or on a command
// line, into a [Profile].
//
// Resolve returns an error wrapping [ErrInvalidProfile] when the name is not
// well-formed and one wrapping [ErrProfileNotFound] when no such profile
// exists. Implementations must be safe for concurrent use.
type ProfileResolver interface {
	Resolve(name string) (Profile, error)
}

// HermesProfiles is the Hermes agent's profile layout: the default profile's
// home is Root, and profile "work" lives in Root/profiles/work.
//
// The caller supplies Root ($HERMES_HOME, else ~/.hermes); HermesProfiles
// never reads the environment. It is safe for concurrent use.
type HermesProfiles struct {
	// Root is the default profile's home directory.
	Root string
}

var _ ProfileResolver = HermesProfiles{}

// Validate reports a HermesProfiles that cannot resolve any profile: one
// without a Root.
func (h HermesProfiles) Validate() error {
	if h.Root == "" {
		return errors.New("provider: HermesProfiles.Root is empty; set it to $HERMES_HOME or ~/.hermes")
	}
	return nil
}

// Resolve implements [ProfileResolver]. "default" and "current" name the
// default profile, which always exists. Any other name must match
// ^[a-z0-9][a-z0-9_-]{0,63}$ and be a directory under Root/profiles.
func (h HermesProfiles) Resolve(name string) (Profile, error) {
	if err := h.Validate(); err != nil {
		return Profile{}, err
	}
	root := filepath.Clean(h.Root)
	if name == DefaultProfile || name == "current" {
		return Profile{Name: DefaultProfile, Home: root, DefaultHome: root}, nil
	}
	if err := ValidateProfileName(name); err != nil {
		return Profile{}, err
	}
	home := filepath.Join(root, "profiles", name)
	fi, err := os.Stat(home)
	switch {
	case errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.IsDir()):
		return Profile{}, fmt.Errorf("%w: %s", ErrProfileNotFound, name)
	case err != nil:
		return Profile{}, fmt.Errorf("provider: profile %s: %w", name, err)
	}
	return Profile{Name: name, Home: home, DefaultHome: root}, nil
}

// NamedProfiles is the profile resolver of instances that keep everything
// in a shared store (a Connector with a GrantStore): a profile is a name.
// Every well-formed name resolves, with the homes HermesProfiles would
// give it under Root, which need not exist: nothing of a connection is
// written there. The host's own [ProfileResolver] or its authorization
// hook decides who exists; without either, any name may be connected.
// It is safe for concurrent use.
type NamedProfiles struct {
	// Root is where homes would be; it is never written by the Connector.
	Root string
}

var _ ProfileResolver = NamedProfiles{}

// Resolve implements [ProfileResolver]: "default" and "current" name the
// default profile; any other name must match ^[a-z0-9][a-z0-9_-]{0,63}$.
func (n NamedProfiles) Resolve(name string) (Profile, error) {
	root := filepath.Clean(n.Root)
	if name == DefaultProfile || name == "current" {
		return Profile{Name: DefaultProfile, Home: root, DefaultHome: root}, nil
	}
	if err := ValidateProfileName(name); err != nil {
		return Profile{}, err
	}
	return Profile{Name: name, Home: filepath.Join(root, "profiles", name), DefaultHome: root}, nil
}

// ProfileLister is a [ProfileResolver] that can name every profile, for
// [Connector.Connections] over config files.
type ProfileLister interface {
	// ProfileNames returns the names of every profile, sorted, the
	// default one as "default".
	ProfileNames() ([]string, error)
}

var _ ProfileLister = HermesProfiles{}

// ProfileNames implements [ProfileLister]: "default" and every directory
// under Root/profiles whose name is a valid profile name.
func (h HermesProfiles) ProfileNames() ([]string, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	names := []string{DefaultProfile}
	entries, err := os.ReadDir(filepath.Join(filepath.Clean(h.Root), "profiles"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("provider: list the profiles: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() && ValidateProfileName(e.Name()) == nil && e.Name() != DefaultProfile && e.Name() != "current" {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// ValidateProfileName reports whether name is a well-formed profile name:
// "default", "current", or a match of ^[a-z0-9][a-z0-9_-]{0,63}$. The error
// wraps [ErrInvalidProfile] and quotes a shortened form of the bad value, so
// it is safe to show to a person and to log.
func ValidateProfileName(name string) error {
	if name == DefaultProfile || name == "current" || profileNameRE.MatchString(name) {
		return nil
	}
	return fmt.Errorf("%w %s: use lowercase letters, digits, '-' and '_' (at most 64)", ErrInvalidProfile, quoteShort(name))
}

// quoteShort quotes s for an error message, escaping control and non-ASCII
// characters and cutting it to a bounded length.
func quoteShort(s string) string {
	const maxRunes = 40
	r := []rune(s)
	if len(r) > maxRunes {
		return strconv.QuoteToASCII(string(r[:maxRunes])) + "..."
	}
	return strconv.QuoteToASCII(s)
}
