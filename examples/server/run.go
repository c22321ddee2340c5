package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/examples/desktop"
	"github.com/memconnect/memconnect/internal/browser"
	"github.com/memconnect/memconnect/internal/testsupport/honchofake"
	"github.com/memconnect/memconnect/internal/testsupport/oauthfake"
	"github.com/memconnect/memconnect/internal/wire"
	"github.com/memconnect/memconnect/oauth/pgstore"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
	"github.com/memconnect/memconnect/provider/mcp"
)

// errUsage reports a command line the flag package already complained about.
var errUsage = errors.New("usage error")

// shutdownTimeout bounds how long a stopping server waits for the requests
// in flight.
const shutdownTimeout = 10 * time.Second

// options are the command's flags.
type options struct {
	addr         string
	dev          bool
	home         string
	sessionToken string
	sessionKeys  [][]byte // -session-key, newest first
	callbackBase string
	allowedHosts string
	store        string // a postgres:// URL; "" keeps grants in honcho.json
	storeKey     string // "<id>:<base64 of 32 bytes>", comma-separated, the sealing key first
	migrate      bool
	rekey        bool
	openBrowser  bool
	providers    []namedURL        // -provider, in order
	clientIDs    map[string]string // -client-id, by provider name
	watch        watchOptions      // -keep-fresh, -webhook, -webhook-secret
}

// namedURL is one -provider NAME=URL.
type namedURL struct{ name, url string }

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address (port 0 picks a free one)")
	fs.BoolVar(&o.dev, "dev", false, "run a development authorization server and a temporary Hermes home")
	fs.StringVar(&o.home, "home", "", "Hermes home (default: temporary with -dev, else $HERMES_HOME, else ~/.hermes)")
	fs.StringVar(&o.sessionToken, "session-token", "", `require "Authorization: Bearer <token>" on the API (not on the callback)`)
	fs.Func("session-key", "keys that sign connect sessions, comma-separated, newest first, each at least 32 characters; enables POST /admin/connect-sessions (needs -session-token)", func(v string) error {
		for k := range strings.SplitSeq(v, ",") {
			if k = strings.TrimSpace(k); len(k) < 32 {
				return fmt.Errorf("each key is at least 32 characters")
			}
			o.sessionKeys = append(o.sessionKeys, []byte(k))
		}
		return nil
	})
	fs.StringVar(&o.callbackBase, "callback-base-url", "", "URL where the API is reachable, for the callback redirect mode (default with -dev: http://<addr>/api/memory)")
	fs.StringVar(&o.allowedHosts, "allowed-hosts", "", "comma-separated host names the API answers (default: localhost, 127.0.0.1, ::1)")
	fs.StringVar(&o.store, "store", os.Getenv("MEMCONNECT_STORE"), "postgres:// URL of a database that instances share for grants and sign-ins (default $MEMCONNECT_STORE; none: honcho.json)")
	fs.StringVar(&o.storeKey, "store-key", os.Getenv("MEMCONNECT_STORE_KEY"), `key that seals the tokens in -store, "<id>:<32 bytes in base64>"; to replace a key, "<new>,<old>" (default $MEMCONNECT_STORE_KEY)`)
	fs.BoolVar(&o.migrate, "migrate", false, "create or upgrade the schema of -store, then exit")
	fs.BoolVar(&o.openBrowser, "open-browser", false, "open sign-in pages in this desktop's browser when a Hermes desktop asks (POST /providers/{provider}/oauth/start)")
	fs.BoolVar(&o.rekey, "rekey", false, "seal everything in -store again with the first -store-key, then exit")
	fs.Func("provider", "add an MCP-style memory server as provider NAME, signed in through its OAuth discovery: NAME=URL (repeatable)", func(v string) error {
		name, u, ok := strings.Cut(v, "=")
		if !ok || name == "" || u == "" {
			return fmt.Errorf("want NAME=URL, such as zep=https://mcp.example.com/mcp")
		}
		o.providers = append(o.providers, namedURL{name, u})
		return nil
	})
	fs.Func("client-id", "use the client NAME's authorization server registered beforehand instead of registering one: NAME=ID (repeatable; NAME is honcho, supermemory, devmemory or a -provider NAME)", func(v string) error {
		name, id, ok := strings.Cut(v, "=")
		if !ok || name == "" || strings.TrimSpace(id) == "" {
			return fmt.Errorf("want NAME=ID, such as zep=memconnect-desktop")
		}
		if o.clientIDs == nil {
			o.clientIDs = make(map[string]string)
		}
		o.clientIDs[name] = id
		return nil
	})
	o.watch.addFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "server: unexpected argument %q\n", fs.Arg(0))
		return o, errUsage
	}
	if err := o.watch.check(os.Getenv); err != nil {
		fmt.Fprintf(stderr, "server: %v\n", err)
		return o, errUsage
	}
	for name, set := range map[string]bool{"-migrate": o.migrate, "-rekey": o.rekey} {
		if set && o.store == "" {
			fmt.Fprintf(stderr, "server: %s needs -store (or MEMCONNECT_STORE)\n", name)
			return o, errUsage
		}
	}
	return o, nil
}

// run is the whole command; main supplies the arguments, the streams and a
// context that ends on SIGINT or SIGTERM. It returns once the server has
// shut down.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logger := zerolog.New(zerolog.ConsoleWriter{Out: wire.Terminal(stderr), NoColor: true, TimeFormat: time.TimeOnly}).
		With().Timestamp().Logger()
	// Where profiles live. A temporary home is laid out like a user's:
	// <tmp>/.hermes, with <tmp> as the user home the consent page's
	// "~/.hermes/honcho.json" is relative to.
	home, userHome, tempHome := o.home, "", false
	switch {
	case home == "" && o.dev:
		tmp, err := os.MkdirTemp("", "memconnect-dev-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		home, userHome, tempHome = filepath.Join(tmp, ".hermes"), tmp, true
	case home == "":
		if h, ok := os.LookupEnv("HERMES_HOME"); ok && h != "" {
			home = h
		} else {
			userHome, err := os.UserHomeDir()
			if err != nil {
				return fmt.Errorf("no Hermes home: set HERMES_HOME or pass -home (%w)", err)
			}
			home = filepath.Join(userHome, ".hermes")
		}
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}

	shared, closeStore, err := openStore(ctx, o, filepath.Join(home, spillDirName), logger, stdout)
	if err != nil || o.migrate {
		return err
	}
	defer closeStore()
	if o.rekey {
		newest := strings.SplitN(strings.TrimSpace(o.storeKey), ":", 2)[0]
		// Once values are sealed with the new key, an instance that does
		// not have it cannot open them: it answers 503 naming the key.
		fmt.Fprintf(stdout, "-rekey: every instance must already run with key %q (first in -store-key); one that lacks it cannot open what is sealed again now\n", newest)
		n, err := shared.Rekey(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key %q now seals every value in -store (%d sealed again); the other keys can go\n", strings.SplitN(strings.TrimSpace(o.storeKey), ":", 2)[0], n)
		return nil
	}

	// The Honcho provider, pointed at the development server or the real one.
	var honchoOpts []honcho.Option
	var (
		client *http.Client
		as     *honchofake.Server
	)
	if userHome != "" {
		honchoOpts = append(honchoOpts, honcho.WithUserHome(userHome))
	}
	if o.dev {
		asOpts := []honchofake.Option{honchofake.WithGrantConfig(map[string]any{"peerName": "you", "workspace": "hermes"}), honchofake.WithAPIKey(devAPIKey)}
		if userHome != "" {
			// The consent page then names the file really written, in
			// the temporary home, not a "~/.hermes/honcho.json" that
			// reads as the person's own.
			asOpts = append(asOpts, honchofake.WithUserHome(userHome))
		}
		as = honchofake.NewServer(asOpts...)
		defer as.Close()
		client = as.Client()
		honchoOpts = append(honchoOpts,
			honcho.WithAuthorizeURL(as.AuthorizeURL()),
			honcho.WithTokenURL(as.TokenURL()),
			honcho.WithDeviceAuthURL(as.DeviceAuthURL()),
			honcho.WithRevocationURL(as.RevocationURL()),
			honcho.WithIssuer(as.URL),
			honcho.WithAPIKeyCheckURL(as.WhoAmIURL(), client),
		)
	} else {
		envOpts, err := honcho.FromEnv(os.LookupEnv)
		if err != nil {
			return err
		}
		honchoOpts = append(honchoOpts, envOpts...)
		if userHome, err := os.UserHomeDir(); err == nil {
			honchoOpts = append(honchoOpts, honcho.WithUserHome(userHome))
		}
	}
	// -client-id: a client registered beforehand, for any provider.
	used := make(map[string]bool)
	mcpOpts := func(name string, opts ...mcp.Option) []mcp.Option {
		if id, ok := o.clientIDs[name]; ok {
			used[name] = true
			opts = append(opts, mcp.WithClientID(id))
		}
		return opts
	}
	if id, ok := o.clientIDs[honcho.Name]; ok {
		used[honcho.Name] = true
		honchoOpts = append(honchoOpts, honcho.WithClientID(id))
	}
	providers := []provider.Provider{honcho.New(honchoOpts...), mcp.Supermemory(mcpOpts("supermemory")...)}
	var dev *oauthfake.MCPServer
	if o.dev {
		// A memory server behind the MCP authorization model, to try the
		// generic provider offline (dynamic registration, resource
		// indicators); it also takes the development API key.
		dev = oauthfake.NewMCPServer(oauthfake.WithAuthServer(oauthfake.WithAPIKey(devAPIKey)))
		defer dev.Close()
		p, err := mcp.New("devmemory", "Development memory (MCP)", dev.URL, mcpOpts("devmemory", mcp.WithAPIKeys())...)
		if err != nil {
			return err
		}
		providers = append(providers, p)
	}
	for _, nu := range o.providers {
		p, err := mcp.New(nu.name, nu.name, nu.url, mcpOpts(nu.name, mcp.WithAPIKeys())...)
		if err != nil {
			return fmt.Errorf("-provider %s=%s: %w", nu.name, nu.url, err)
		}
		providers = append(providers, p)
	}
	for name := range o.clientIDs {
		if !used[name] {
			return fmt.Errorf("-client-id %s=...: there is no provider %q (honcho, supermemory, devmemory with -dev, or one added with -provider)", name, name)
		}
	}
	registry, err := provider.NewRegistry(providers...)
	if err != nil {
		return fmt.Errorf("-provider: %w", err)
	}
	ln, err := net.Listen("tcp", o.addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s is taken, by another server or another copy of this one: choose another with -addr, such as -addr 127.0.0.1:0 for any free port", o.addr)
	}
	if err != nil {
		return fmt.Errorf("-addr %s: %w", o.addr, err)
	}
	origin := "http://" + displayAddr(ln.Addr())
	callbackBase := o.callbackBase
	if callbackBase == "" && o.dev {
		callbackBase = origin + "/api/memory"
	}
	var hosts []string
	for h := range strings.SplitSeq(o.allowedHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	if len(o.sessionKeys) > 0 && o.sessionToken == "" {
		ln.Close()
		return errors.New("-session-key needs -session-token: it guards the route that mints connect sessions, and without it every request passes")
	}
	m, err := newMetrics()
	if err != nil {
		ln.Close()
		return err
	}
	mc := memconnect.Config{
		KeepFresh:       o.watch.keepFresh,
		Observer:        m,
		Registry:        registry,
		Profiles:        provider.HermesProfiles{Root: home},
		Logger:          logger,
		SessionToken:    o.sessionToken,
		SessionKeys:     o.sessionKeys,
		AllowedHosts:    hosts,
		CallbackBaseURL: callbackBase,
		HTTPClient:      client,
	}
	if shared != nil {
		// Stateless over the shared store: a profile is a name, and
		// nothing of a connection is written into the Hermes home.
		mc.GrantStore, mc.FlowStore = shared, shared.Flows()
		mc.Profiles = provider.NamedProfiles{Root: home}
	}
	if o.openBrowser {
		mc.OpenBrowser = func(_ context.Context, u string) error { return browser.Open(u) }
	}
	memory, err := memconnect.New(mc)
	if err != nil {
		ln.Close()
		return err
	}
	defer memory.Close() // after the HTTP server's shutdown: ends pending flows, frees their ports
	stopWebhooks, err := o.watch.startWebhooks(memory, m, logger)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopWebhooks()

	// The host's own routes that tell about the deployment, or act on
	// it, have the API's guards: the Host allow-list and the token.
	var admin http.Handler
	if len(o.sessionKeys) > 0 {
		admin = memory.Guard(connectSessions(memory))
	}
	srv := newHTTPServer(hostRouter(memory, admin, memory.Guard(m.handler())), defaultTimeouts)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	printBanner(stdout, o, origin, home, tempHome, callbackBase, as, dev, shared)

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(stdout, "shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	memory.Close()
	fmt.Fprintln(stdout, "stopped")
	return nil
}

// openStore connects to the -store database: with -migrate it brings the
// schema up to date and says so; otherwise it opens the store, which
// needs the -store-key. Without -store it returns nil: grants stay in
// honcho.json.
// spillDirName is the directory, in the Hermes home, where the PostgreSQL
// store keeps a token answer the database could not take.
const spillDirName = "memconnect-spill"

func openStore(ctx context.Context, o options, spillDir string, logger zerolog.Logger, stdout io.Writer) (*pgstore.Store, func(), error) {
	if o.store == "" {
		return nil, func() {}, nil
	}
	pool, err := pgxpool.New(ctx, o.store)
	if err != nil {
		return nil, nil, fmt.Errorf("-store: %w", err)
	}
	if o.migrate {
		defer pool.Close()
		if err := pgstore.Migrate(ctx, pool); err != nil {
			return nil, nil, err
		}
		fmt.Fprintf(stdout, "schema at version %d\n", pgstore.SchemaVersion)
		return nil, nil, nil
	}
	if o.storeKey == "" {
		pool.Close()
		return nil, nil, errors.New("-store needs -store-key (or MEMCONNECT_STORE_KEY): the tokens are sealed at rest, with no plaintext fallback")
	}
	keys, err := pgstore.ParseKeys(o.storeKey)
	if err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("-store-key: %w", err)
	}
	st, err := pgstore.New(ctx, pool, pgstore.Config{Keys: keys, Logger: logger, SpillDir: spillDir})
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return st, pool.Close, nil
}

// timeouts bound how long a connection may take over each part of a
// request, so that a client that declares more than it sends (a body of
// 1 MB, 10 bytes sent) is cut off in seconds, not held for minutes.
type timeouts struct {
	readHeader, read, write, idle time.Duration
}

// defaultTimeouts suit this server's answers, which are small and quick.
var defaultTimeouts = timeouts{readHeader: 5 * time.Second, read: 10 * time.Second, write: 30 * time.Second, idle: 60 * time.Second}

// newHTTPServer is the server every host should run: every timeout set,
// and net/http's own messages kept out of the log, since they could quote
// a request line; the access log has what is safe to log.
func newHTTPServer(h http.Handler, t timeouts) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.readHeader,
		ReadTimeout:       t.read,
		WriteTimeout:      t.write,
		IdleTimeout:       t.idle,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
}

// hostRouter is the existing web server's route table: its own routes, the
// memconnect API at /api/memory and the desktop Connect page at /.
func hostRouter(memory, admin, metrics http.Handler) http.Handler {
	r := chi.NewRouter()
	if metrics != nil {
		r.Handle("/metrics", metrics)
	}
	if admin != nil {
		r.Post("/admin/connect-sessions", admin.ServeHTTP)
	}
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	r.Get("/api/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"hello":"world","memory_api":"/api/memory"}`+"\n")
	})
	r.Mount("/api/memory", memory)
	r.Handle("/*", http.FileServerFS(desktop.FS()))
	// chi answers a method it does not know (BREW, PROPFIND) in this
	// router, before the mount is reached: hand those under /api/memory to
	// memconnect, which answers them with its JSON 405 as any other.
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/api/memory" || strings.HasPrefix(req.URL.Path, "/api/memory/") {
			http.StripPrefix("/api/memory", memory).ServeHTTP(w, req)
			return
		}
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
	})
	return r
}

// displayAddr is a bound address as a person types it: an unspecified IP
// (0.0.0.0, ::) becomes 127.0.0.1.
func displayAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := tcp.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(tcp.Port))
}

// printBanner says what runs where, what to open and which curl to try.
// It never prints the session token.
// devAPIKey is the one API key the development server accepts. It guards
// nothing: the development server runs on loopback and holds no data.
const devAPIKey = "hch-v2-dev-0123456789abcdef"

func printBanner(w io.Writer, o options, origin, home string, tempHome bool, callbackBase string, as *honchofake.Server, dev *oauthfake.MCPServer, shared *pgstore.Store) {
	mode := "Honcho"
	if o.dev {
		mode = "development mode"
	}
	fmt.Fprintf(w, "memconnect example server (%s)\n", mode)
	fmt.Fprintf(w, "listening on %s\n", origin)
	note := ""
	if tempHome {
		note = " (temporary, removed on exit)"
	}
	fmt.Fprintf(w, "Hermes home: %s%s\n", home, note)
	if shared != nil {
		fmt.Fprintf(w, "grants and pending sign-ins: %s (not in the Hermes home's config files)\n", shared)
	}
	if as != nil {
		fmt.Fprintf(w, "development authorization server: %s (consent page to click; device codes at %s)\n", as.URL, as.DeviceVerificationURL())
		fmt.Fprintf(w, "development API key (accepted by the apikey method): %s\n", devAPIKey)
	}
	if dev != nil {
		fmt.Fprintf(w, "development MCP memory server: %s (provider devmemory: discovery, dynamic registration, resource indicators)\n", dev.URL)
		fmt.Fprintf(w, "  its authorization server: %s (consent page to click; device codes at %s)\n", dev.AS.URL, dev.AS.DeviceVerificationURL())
	}
	if callbackBase != "" {
		fmt.Fprintf(w, "browser sign-ins return to: %s/profiles/{profile}/providers/{provider}/callback\n", callbackBase)
	} else {
		fmt.Fprintf(w, "browser sign-ins return to: a one-shot listener on %s/callback (Honcho; other providers: any free port)\n", honcho.LoopbackAddr)
	}
	o.watch.banner(w, origin)
	page, auth := origin+"/", ""
	if o.sessionToken != "" {
		page += "?token=TOKEN"
		auth = ` -H "Authorization: Bearer TOKEN"`
		fmt.Fprintln(w, "session token: required (TOKEN below stands for it)")
	}
	fmt.Fprintf(w, "\nOpen the Connect page:  %s\n", page)
	fmt.Fprintf(w, "Or try:  curl -s%s %s/api/memory/providers\n", auth, origin)
	fmt.Fprintf(w, "         curl -s%s -X POST %s/api/memory/profiles/default/providers/honcho/connect\n", auth, origin)
	fmt.Fprintf(w, "         curl -s%s %s/api/memory/profiles/default/providers/honcho/status\n", auth, origin)
	fmt.Fprintln(w, "More in examples/curl.md. Press Ctrl-C to stop.")
	if as != nil {
		fmt.Fprintln(w, "\nPoint the CLI (go build -o memconnect ./examples/cli) at the same home and server:")
		fmt.Fprint(w, devExports(home, as))
	}
}

// devExports is the shell line that points the CLI, through HERMES_HOME and
// the variables honcho.FromEnv reads, at the development server.
func devExports(home string, as *honchofake.Server) string {
	vars := [][2]string{
		{"HERMES_HOME", home},
		{honcho.EnvAuthorizeURL, as.AuthorizeURL()},
		{honcho.EnvTokenURL, as.TokenURL()},
		{honcho.EnvDeviceAuthURL, as.DeviceAuthURL()},
		{honcho.EnvRevocationURL, as.RevocationURL()},
		{honcho.EnvIssuer, as.URL},
		{honcho.EnvAPIKeyCheckURL, as.WhoAmIURL()},
	}
	var b strings.Builder
	b.WriteString("  export")
	for i, v := range vars {
		b.WriteString(" " + v[0] + "=" + shellQuote(v[1]))
		if i < len(vars)-1 {
			b.WriteString(" \\\n        ")
		}
	}
	b.WriteString("\n")
	return b.String()
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
