package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect/internal/wire"
	"github.com/memconnect/memconnect/oauth/pgstore"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
	"github.com/memconnect/memconnect/provider/mcp"
)

// Exit statuses.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitReauth      = 3   // not signed in, or the sign-in is no longer valid
	exitInterrupted = 130 // Ctrl-C, as a shell reports SIGINT
)

const usage = `usage: memconnect <command> [flags]

commands:
  login    connect a memory provider in a browser (or --device on another
           device, --paste from a machine without a browser, or --api-key
           with the key on stdin)
  status   show how the profile authenticates (--json for the status body)
  token    print a fresh access token (refreshing it if needed)
  logout   revoke the grant at the server and remove it (or the API key)

every command takes:
  --provider NAME      honcho (the default), supermemory, or NAME=URL for any
                       server behind the MCP authorization model
  --profile P          Hermes profile ("default"; "work" lives in $HERMES_HOME/profiles/work)
  --config FILE        Honcho: use this honcho.json instead of the profile's (not with --profile)
  --host HOST          Honcho: host key in the config (default "hermes" or "hermes_<profile>")
  -v                   say what happens underneath (log lines on stderr)

Endpoints come from the HONCHO_OAUTH_* variables; login and logout also take
them as flags. status, token and logout can use a server's shared PostgreSQL
store (--store, --store-key); token can ask a running server instead
(--server, --session-token), with no store key. Run "memconnect <command> -h"
for the flags of one command.

exit status:
  0    done (logout when not signed in, too)
  1    failed
  2    usage error
  3    not signed in, or the sign-in is no longer valid: run memconnect login
  130  interrupted (Ctrl-C)
`

// usageError is a mistake on the command line; it exits with status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// silentExit ends the command with its exit status and no further message:
// what happened was already printed.
type silentExit int

func (e silentExit) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// codedError ends the command with its message and exit status.
type codedError struct {
	code int
	msg  string
}

func (e *codedError) Error() string { return e.msg }

// errInterrupted is a command stopped by Ctrl-C.
var errInterrupted = errors.New("interrupted")

// cli is one invocation of the command.
type cli struct {
	lookupEnv func(string) (string, bool)
	stdin     io.Reader
	// stdout and stderr show a server's text (a user code, an error's
	// description, a name) with nothing in it acting on the terminal
	// ([wire.Terminal]); rawStderr is stderr itself, for the countdown's
	// own "\r".
	stdout    io.Writer
	stderr    io.Writer
	rawStderr io.Writer

	interactive bool // stdin is a terminal: a person can answer a prompt
	stderrTTY   bool // stderr is a terminal: a line can be rewritten in place
	verbose     bool // -v: log lines and whole error chains on stderr

	profileHint string // " --profile P" (and " --provider NAME") for messages, "" for the defaults
	display     string // the provider's name for people; "" until setup

	readOnce sync.Once   // starts the one reader of stdin, at the first prompt
	lines    chan answer // the lines it read

	// client reaches the provider's servers; nil is http.DefaultClient.
	// Tests put a network in memory here.
	client *http.Client
}

// displayName is the provider's name for messages.
func (c *cli) displayName() string { return orElse(c.display, "Honcho") }

// common are the flags of the commands; each registers the ones it uses.
type common struct {
	provider                                         string // "" = honcho; a name, or NAME=URL
	profile, config, host                            string
	authorizeURL, tokenURL, deviceAuthURL, revokeURL string
	clientID, scope                                  string
	store, storeKey                                  string // status, token and logout
}

// registerStore adds --store and --store-key, for the commands that can read
// a grant from a server's shared store.
func (c *common) registerStore(fs *flag.FlagSet, env func(string) string) {
	fs.StringVar(&c.store, "store", env("MEMCONNECT_STORE"), "PostgreSQL URL of a server's shared store to read the grant from (default $MEMCONNECT_STORE)")
	fs.StringVar(&c.storeKey, "store-key", env("MEMCONNECT_STORE_KEY"), `key that seals the tokens in --store, "<id>:<base64>", the sealing key first when several (default $MEMCONNECT_STORE_KEY)`)
}

// register adds the flags every command takes.
func (c *common) register(fs *flag.FlagSet, verbose *bool) {
	fs.StringVar(&c.provider, "provider", "", `memory provider: honcho (default), supermemory, or NAME=URL for any MCP-style server`)
	fs.StringVar(&c.profile, "profile", "", "Hermes profile (default: the default profile)")
	fs.StringVar(&c.config, "config", "", "honcho.json to use instead of the profile's")
	fs.StringVar(&c.host, "host", "", `host key in the config (default "hermes" or "hermes_<profile>")`)
	fs.BoolVar(verbose, "v", false, "say what happens underneath: log lines and whole errors on stderr")
}

// registerEndpoints adds the endpoint flags a command uses.
func (c *common) registerEndpoints(fs *flag.FlagSet, names ...string) {
	flags := map[string]struct {
		p     *string
		usage string
	}{
		"authorize-url":   {&c.authorizeURL, "authorization endpoint (default $HONCHO_OAUTH_AUTHORIZE_URL)"},
		"token-url":       {&c.tokenURL, "token endpoint (default $HONCHO_OAUTH_TOKEN_URL)"},
		"device-auth-url": {&c.deviceAuthURL, "device authorization endpoint (default $HONCHO_OAUTH_DEVICE_AUTH_URL)"},
		"revocation-url":  {&c.revokeURL, "token revocation endpoint (default $HONCHO_OAUTH_REVOCATION_URL, else discovered)"},
		"client-id":       {&c.clientID, "OAuth client id registered with the provider's authorization server (Honcho: default $HONCHO_OAUTH_CLIENT_ID, else hermes-agent; others: default a dynamic registration)"},
		"scope":           {&c.scope, "space-separated scopes (default $HONCHO_OAUTH_SCOPE, else write)"},
	}
	for _, name := range names {
		f, ok := flags[name]
		if !ok {
			panic("cli: no endpoint flag " + name)
		}
		fs.StringVar(f.p, name, "", f.usage)
	}
}

// run is the whole command: main only supplies the process's arguments,
// environment, streams and a context cancelled by Ctrl-C.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer) int {
	return newCLI(lookupEnv, stdin, stdout, stderr).run(ctx, args, stdout, stderr)
}

// newCLI is one invocation's command on these streams.
func newCLI(lookupEnv func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer) *cli {
	return &cli{lookupEnv: lookupEnv, stdin: stdin, stdout: wire.Terminal(stdout), stderr: wire.Terminal(stderr), rawStderr: stderr,
		interactive: isTerminal(stdin), stderrTTY: isTerminal(stderr)}
}

// run runs the command args name; stdout and stderr are c's, raw, for
// the usage.
func (c *cli) run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
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
	if err != nil && ctx.Err() != nil && !errors.Is(err, errInterrupted) {
		err = fmt.Errorf("%w: %w", errInterrupted, err)
	}
	return c.exit(err)
}

// isTerminal reports whether f is a terminal. A test stands one in with a
// value whose Terminal method says so.
func isTerminal(f any) bool {
	switch f := f.(type) {
	case interface{ Terminal() bool }:
		return f.Terminal()
	case *os.File:
		return isatty.IsTerminal(f.Fd())
	}
	return false
}

// env returns the value of the environment variable k, or "".
func (c *cli) env(k string) string {
	v, _ := c.lookupEnv(k)
	return v
}

// parse parses a command's flags. It takes no positional arguments.
func parse(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	fs.SetOutput(io.Discard) // the problem is said below, in the CLI's own style
	err := fs.Parse(args)
	fs.SetOutput(out)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return err
	case err != nil:
		fmt.Fprintf(out, "memconnect: %s: %v\n\n", fs.Name(), err)
		fs.Usage()
		return &usageError{} // said above, with the usage
	}
	if fs.NArg() > 0 {
		return &usageError{msg: fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

// newFlagSet returns a command's flag set writing to stderr, whose -h says
// what the command does before its flags.
func (c *cli) newFlagSet(name, does string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: memconnect %s [flags]\n\n%s.\n\nflags:\n", name, does)
		fs.PrintDefaults()
	}
	return fs
}

// setup is what a command works with once its flags are parsed.
type setup struct {
	close    func()         // releases the store's connections
	store    *pgstore.Store // --store; nil for the config files
	conn     *provider.Connector
	provider provider.Provider
	name     string // the provider's name
	profile  string // as given; "default" when none was
	home     string // the user's home, for display paths
}

// chooseProvider returns the provider --provider names, given the Honcho
// provider the other flags configured.
// A clientID, when not empty, is the client registered beforehand with the
// provider's authorization server (Honcho's is set by the caller).
func chooseProvider(flag string, hp *honcho.Provider, clientID string, client *http.Client) (provider.Provider, error) {
	var opts []mcp.Option
	if clientID != "" {
		opts = append(opts, mcp.WithClientID(clientID))
	}
	if client != nil {
		opts = append(opts, mcp.WithHTTPClient(client))
	}
	switch flag {
	case "", honcho.Name:
		return hp, nil
	case "supermemory":
		return mcp.Supermemory(opts...), nil
	}
	name, u, ok := strings.Cut(flag, "=")
	if !ok {
		return nil, &usageError{msg: fmt.Sprintf("--provider %q: use honcho, supermemory, or NAME=URL for another server", flag)}
	}
	p, err := mcp.New(name, name, u, append([]mcp.Option{mcp.WithAPIKeys()}, opts...)...)
	if err != nil {
		return nil, &usageError{msg: "--provider: " + strings.TrimPrefix(err.Error(), "mcp: ")}
	}
	return p, nil
}

// setup builds the provider and service for the common flags. flows may be
// nil for commands that start no flow.
func (c *cli) setup(cf *common) (*setup, error) {
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
	if cf.provider != "" && cf.provider != honcho.Name {
		c.profileHint = " --provider " + cf.provider
		if cf.config != "" || cf.host != "" {
			return nil, &usageError{msg: "--config and --host apply to Honcho only"}
		}
	}
	if profile != provider.DefaultProfile && profile != "current" {
		c.profileHint += " --profile " + profile
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
	pv, err := chooseProvider(cf.provider, honcho.New(opts...), cf.clientID, c.client)
	if err != nil {
		return nil, err
	}
	c.display = pv.DisplayName()
	reg, err := provider.NewRegistry(pv)
	if err != nil {
		return nil, err
	}
	var profiles provider.ProfileResolver
	root := c.env("HERMES_HOME")
	if cf.config != "" {
		profiles = fileProfile{}
	} else {
		if root == "" {
			if home == "" {
				return nil, errors.New("neither HERMES_HOME nor HOME is set; use --config FILE")
			}
			root = filepath.Join(home, ".hermes")
		}
		profiles = provider.HermesProfiles{Root: root}
		if cf.store != "" {
			profiles = provider.NamedProfiles{Root: root} // in the shared store, a profile is a name
		}
	}
	conn := &provider.Connector{Registry: reg, Profiles: profiles, Logger: c.logger(), HTTPClient: c.client}
	closeStore := func() {}
	var shared *pgstore.Store
	if cf.store != "" {
		if cf.config != "" {
			return nil, &usageError{msg: "use either --store or --config, not both"}
		}
		// The spill directory examples/server uses, so that an answer one
		// kept is committed by the other.
		spillDir := filepath.Join(root, "memconnect-spill")
		st, closeFn, err := openStore(cf.store, cf.storeKey, spillDir)
		if err != nil {
			return nil, err
		}
		conn.GrantStore, closeStore, shared = st, closeFn, st
	}
	return &setup{
		close:    closeStore,
		store:    shared,
		conn:     conn,
		provider: pv,
		name:     pv.Name(),
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

// where says for people where the profile's sign-in is read from: the
// shared store, or the config file and the key in it.
func (s *setup) where() (string, error) {
	if s.store != nil {
		return s.store.String(), nil
	}
	loc, err := s.location()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s (%s %s)", loc.ReadPath, keyWord(s.provider), loc.Host), nil
}

// apiKey returns the API key the profile connects with, from its config
// or, for Honcho, the environment; "" when it has none. A shared store
// holds no API keys.
func (s *setup) apiKey(ctx context.Context, env func(string) string) (string, error) {
	if s.store != nil {
		return "", nil
	}
	loc, err := s.location()
	if err != nil {
		return "", err
	}
	creds, err := s.conn.Stores().File(loc.ReadPath, loc.Layout).Credentials(ctx, loc.Host)
	if err != nil || creds.APIKey != "" || s.name != honcho.Name {
		return creds.APIKey, err
	}
	return strings.TrimSpace(env(honcho.EnvAPIKey)), nil
}

// location returns where the profile's grant lives.
func (s *setup) location() (provider.GrantLocation, error) {
	p, err := s.conn.Profiles.Resolve(s.profile)
	if err != nil {
		return provider.GrantLocation{}, err
	}
	return s.provider.GrantLocation(p)
}

// logger returns the command's logger: with -v, everything from debug up on
// stderr; else nothing, since the command's own message says what matters.
func (c *cli) logger() zerolog.Logger {
	if !c.verbose {
		return zerolog.Nop()
	}
	return zerolog.New(zerolog.ConsoleWriter{Out: c.stderr, NoColor: true}).Level(zerolog.DebugLevel).With().Timestamp().Logger()
}

// openStore opens a server's shared PostgreSQL store of grants.
func openStore(url, key, spillDir string) (*pgstore.Store, func(), error) {
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
	st, err := pgstore.New(ctx, pool, pgstore.Config{Keys: keys, SpillDir: spillDir})
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return st, pool.Close, nil
}
