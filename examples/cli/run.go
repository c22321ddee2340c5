package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/oauth/pgstore"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
	exitReauth = 3
)

const usage = `usage: memconnect <command> [flags]

commands:
  login    connect Honcho in a browser (or --device on another device)
  status   show how the profile authenticates to Honcho (--json for the status body)
  token    print a fresh access token (refreshing it if needed)
  logout   revoke the grant at the server and remove it from the config

common flags:
  --profile P          Hermes profile ("default"; "work" lives in $HERMES_HOME/profiles/work)
  --config FILE        use this honcho.json instead of the profile's (not with --profile)
  --host HOST          host key in the config (default "hermes" or "hermes_<profile>")
  --authorize-url, --token-url, --device-auth-url, --revocation-url, --client-id, --scope
                       override the endpoints (defaults from HONCHO_OAUTH_* variables)

status and token also take:
  --store URL          read the grant from this PostgreSQL (postgres://...), shared by
                       the server's instances, instead of honcho.json ($MEMCONNECT_STORE)
  --store-key ID:KEY   the key that seals the tokens there ($MEMCONNECT_STORE_KEY)

Run "memconnect <command> -h" for the flags of one command.
`

// usageError is a mistake on the command line; it exits with status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// silentExit ends the command with its exit status and no further message:
// what happened was already printed.
type silentExit int

func (e silentExit) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// cli is one invocation of the command.
type cli struct {
	lookupEnv func(string) (string, bool)
	stdin     io.Reader
	stdout    io.Writer
	stderr    io.Writer

	profileHint string // " --profile P" for messages, "" for the default profile
}

// common are the flags every command takes.
type common struct {
	profile, config, host                            string
	authorizeURL, tokenURL, deviceAuthURL, revokeURL string
	clientID, scope                                  string
	store, storeKey                                  string // status and token only
}

// registerStore adds --store and --store-key, for the commands that can read
// a grant from a server's shared store.
func (c *common) registerStore(fs *flag.FlagSet, env func(string) string) {
	fs.StringVar(&c.store, "store", env("MEMCONNECT_STORE"), "PostgreSQL URL of a server's shared store to read the grant from (default $MEMCONNECT_STORE)")
	fs.StringVar(&c.storeKey, "store-key", env("MEMCONNECT_STORE_KEY"), `key that seals the tokens in --store, "<id>:<base64>", the sealing key first when several (default $MEMCONNECT_STORE_KEY)`)
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.profile, "profile", "", "Hermes profile (default: the default profile)")
	fs.StringVar(&c.config, "config", "", "honcho.json to use instead of the profile's")
	fs.StringVar(&c.host, "host", "", `host key in the config (default "hermes" or "hermes_<profile>")`)
	fs.StringVar(&c.authorizeURL, "authorize-url", "", "authorization endpoint (default $HONCHO_OAUTH_AUTHORIZE_URL)")
	fs.StringVar(&c.tokenURL, "token-url", "", "token endpoint (default $HONCHO_OAUTH_TOKEN_URL)")
	fs.StringVar(&c.deviceAuthURL, "device-auth-url", "", "device authorization endpoint (default $HONCHO_OAUTH_DEVICE_AUTH_URL)")
	fs.StringVar(&c.revokeURL, "revocation-url", "", "token revocation endpoint (default $HONCHO_OAUTH_REVOCATION_URL, else discovered)")
	fs.StringVar(&c.clientID, "client-id", "", "OAuth client id (default $HONCHO_OAUTH_CLIENT_ID, else hermes-agent)")
	fs.StringVar(&c.scope, "scope", "", "space-separated scopes (default $HONCHO_OAUTH_SCOPE, else write)")
}

// run is the whole command: main only supplies the process's arguments,
// environment, streams and a context cancelled by Ctrl-C.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{lookupEnv: lookupEnv, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "login":
		err = c.login(ctx, rest)
	case "status":
		err = c.status(ctx, rest)
	case "token":
		err = c.token(ctx, rest)
	case "logout":
		err = c.logout(ctx, rest)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "memconnect: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
	return c.exit(err)
}

// exit reports err on stderr and returns the exit status it calls for.
func (c *cli) exit(err error) int {
	var (
		ue     *usageError
		silent silentExit
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &silent):
		return int(silent)
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		if ue.msg != "" {
			fmt.Fprintf(c.stderr, "memconnect: %s\n", ue.msg)
		}
		return exitUsage
	case errors.Is(err, provider.ErrInvalidProfile):
		fmt.Fprintf(c.stderr, "memconnect: %v\n", err)
		return exitUsage
	case errors.Is(err, oauth.ErrReauthRequired):
		fmt.Fprintf(c.stderr, "memconnect: the Honcho sign-in is no longer valid; run: memconnect login%s\n", c.profileHint)
		return exitReauth
	case errors.Is(err, provider.ErrAPIKeyConnection):
		fmt.Fprintln(c.stderr, "memconnect: not signed in to Honcho with OAuth (it uses an API key, which logout does not remove); nothing to remove")
		return exitFailed
	}
	fmt.Fprintf(c.stderr, "memconnect: %v\n", err)
	return exitFailed
}

// env returns the value of the environment variable k, or "".
func (c *cli) env(k string) string {
	v, _ := c.lookupEnv(k)
	return v
}

// parse parses a command's flags. It takes no positional arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{} // the flag package has printed the problem
	}
	if fs.NArg() > 0 {
		return &usageError{msg: fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

// newFlagSet returns a command's flag set writing to stderr.
func (c *cli) newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	return fs
}

// setup is what a command works with once its flags are parsed.
type setup struct {
	close    func() // releases the store's connections
	conn     *provider.Connector
	provider *honcho.Provider
	profile  string // as given; "default" when none was
	home     string // the user's home, for display paths
}

// providerName is the one provider this command serves.
const providerName = honcho.Name

// setup builds the provider and service for the common flags. flows may be
// nil for commands that start no flow.
func (c *cli) setup(cf *common, flows *flow.Manager) (*setup, error) {
	if cf.config != "" && cf.profile != "" {
		return nil, &usageError{msg: "use either --profile or --config, not both"}
	}
	profile := cf.profile
	if profile == "" {
		profile = provider.DefaultProfile
	}
	if err := provider.ValidateProfileName(profile); err != nil {
		return nil, err
	}
	if profile != provider.DefaultProfile && profile != "current" {
		c.profileHint = " --profile " + profile
	}
	opts, err := honcho.FromEnv(c.lookupEnv)
	if err != nil {
		return nil, &usageError{msg: err.Error()}
	}
	home := c.env("HOME")
	if home != "" {
		opts = append(opts, honcho.WithUserHome(home))
	}
	for _, o := range []struct {
		v   string
		opt func(string) honcho.Option
	}{
		{cf.authorizeURL, honcho.WithAuthorizeURL},
		{cf.tokenURL, honcho.WithTokenURL},
		{cf.deviceAuthURL, honcho.WithDeviceAuthURL},
		{cf.revokeURL, honcho.WithRevocationURL},
		{cf.clientID, honcho.WithClientID},
		{cf.config, honcho.WithConfigFile},
		{cf.host, honcho.WithHost},
	} {
		if o.v != "" {
			opts = append(opts, o.opt(o.v))
		}
	}
	if cf.scope != "" {
		opts = append(opts, honcho.WithScopes(strings.Fields(cf.scope)...))
	}
	hp := honcho.New(opts...)
	reg, err := provider.NewRegistry(hp)
	if err != nil {
		return nil, err
	}
	var profiles provider.ProfileResolver
	if cf.config != "" {
		profiles = fileProfile{}
	} else {
		root := c.env("HERMES_HOME")
		if root == "" {
			if home == "" {
				return nil, errors.New("neither HERMES_HOME nor HOME is set; use --config FILE")
			}
			root = filepath.Join(home, ".hermes")
		}
		profiles = provider.HermesProfiles{Root: root}
	}
	conn := &provider.Connector{Registry: reg, Profiles: profiles, Flows: flows, Logger: c.logger()}
	closeStore := func() {}
	if cf.store != "" {
		if cf.config != "" {
			return nil, &usageError{msg: "use either --store or --config, not both"}
		}
		st, closeFn, err := openStore(cf.store, cf.storeKey)
		if err != nil {
			return nil, err
		}
		conn.GrantStore, closeStore = st, closeFn
	}
	return &setup{
		close:    closeStore,
		conn:     conn,
		provider: hp,
		profile:  profile,
		home:     home,
	}, nil
}

// fileProfile resolves every name to the default profile; with --config the
// file and host are fixed, so the profile only names the flow.
type fileProfile struct{}

func (fileProfile) Resolve(string) (provider.Profile, error) {
	return provider.Profile{Name: provider.DefaultProfile}, nil
}

// location returns where the profile's grant lives.
func (s *setup) location() (provider.GrantLocation, error) {
	p, err := s.conn.Profiles.Resolve(s.profile)
	if err != nil {
		return provider.GrantLocation{}, err
	}
	return s.provider.GrantLocation(p)
}

// logger returns the command's logger: warnings and errors, on stderr.
func (c *cli) logger() zerolog.Logger {
	return zerolog.New(zerolog.ConsoleWriter{Out: c.stderr, NoColor: true}).Level(zerolog.WarnLevel).With().Timestamp().Logger()
}

// openStore opens a server's shared PostgreSQL store of grants.
func openStore(url, key string) (*pgstore.Store, func(), error) {
	if key == "" {
		return nil, nil, &usageError{msg: "--store needs --store-key (or MEMCONNECT_STORE_KEY): the tokens there are sealed"}
	}
	keys, err := pgstore.ParseKeys(key)
	if err != nil {
		return nil, nil, &usageError{msg: "--store-key: " + strings.TrimPrefix(err.Error(), "pgstore: ")}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, nil, fmt.Errorf("--store: %w", err)
	}
	st, err := pgstore.New(ctx, pool, pgstore.Config{Keys: keys})
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return st, pool.Close, nil
}
