package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/handlers"
	"github.com/memconnect/memconnect/internal/browser"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

// loginTimeout bounds the wait for consent in a browser.
const loginTimeout = 5 * time.Minute

// login connects the profile to the provider with a browser flow over a
// loopback redirect, with the device flow, or with an API key.
func (c *cli) login(ctx context.Context, args []string) error {
	var cf common
	fs := c.newFlagSet("login", "connect the profile to a memory provider: in a browser on this machine, with --device on any device, or with --api-key and the key on stdin, then store the grant in the config")
	cf.register(fs, &c.verbose)
	cf.registerEndpoints(fs, "authorize-url", "token-url", "device-auth-url", "client-id", "scope")
	device := fs.Bool("device", false, "sign in on another device with a code (RFC 8628)")
	noBrowser := fs.Bool("no-browser", false, "print the link without opening a browser")
	paste := fs.Bool("paste", false, "sign in from a machine without a browser: open the link on any machine, then paste back the address the browser ended at (or its code and state)")
	port := &portFlag{}
	fs.Var(port, "port", "loopback `port` for the browser's redirect: 0 for any free one (default: the provider's, 8765 for Honcho, else any)")
	apiKey := fs.Bool("api-key", false, "store an API key instead of signing in: the key is read from stdin (asked for, without echo, on a terminal), never from the command line")
	force := fs.Bool("force", false, "replace a sign-in that still works without asking")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *apiKey {
		if *device || *paste {
			return &usageError{msg: "login: --api-key goes with neither --device nor --paste"}
		}
		return c.loginAPIKey(ctx, &cf, *force)
	}
	if *device && *paste {
		return &usageError{msg: "login: use either --device or --paste"}
	}
	if port.bad != "" {
		return &usageError{msg: fmt.Sprintf("login: --port %s is not a port", port.bad)}
	}
	s, err := c.setup(&cf)
	if err != nil {
		return err
	}
	defer s.close()
	// The flow manager is wired as the router's is.
	s.conn.Flows = s.conn.NewFlows(flow.Config{Page: handlers.WriteCallbackPage, Words: handlers.FlowWords})
	defer s.conn.Flows.Close()
	if port.set {
		s.conn.LoopbackAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port.n))
	}
	if err := c.confirmReplace(ctx, s, *force); err != nil {
		return err
	}

	installed := make(chan *oauth2.Token, 1)
	s.conn.OnInstalled = func(_ connid.ID, in *oauth2.Token) {
		select {
		case installed <- in:
		default:
		}
	}
	req := provider.ConnectRequest{
		Method:   flow.MethodBrowser,
		Source:   "hermes-cli",
		Redirect: flow.RedirectLoopback,
		// The CLI asks for the peer name itself; the rest of the consent's
		// config is merged as the router merges it.
		ConfigExcept: []string{"peerName"},
	}
	if *device {
		req.Method, req.Redirect = flow.MethodDevice, ""
	}
	rep, err := s.conn.Connect(ctx, s.profile, s.name, req)
	if err != nil {
		return err
	}
	if rep.Flow == nil {
		return errors.New("the sign-in flow did not start")
	}
	f := *rep.Flow
	timeout := loginTimeout
	if *device {
		fmt.Fprintf(c.stdout, "To connect %s, open\n\n    %s\n\nand enter the code\n\n    %s\n\n", c.displayName(), orElse(f.VerificationURI, f.AuthorizeURL), f.UserCode)
		if f.AuthorizeURL != "" && f.AuthorizeURL != f.VerificationURI {
			fmt.Fprintf(c.stdout, "or open this link, which fills the code in:\n\n    %s\n\n", f.AuthorizeURL)
		}
		if !f.ExpiresAt.IsZero() {
			timeout = time.Until(f.ExpiresAt) + 5*time.Second
		}
	} else {
		c.sayMovedPort(s, f.RedirectURI)
		fmt.Fprintf(c.stdout, "Open this link to connect %s:\n\n    %s\n\n", c.displayName(), f.AuthorizeURL)
		if !*noBrowser && !*paste {
			if err := browser.Open(f.AuthorizeURL); err != nil {
				// No browser here (a machine reached over SSH): a server
				// without the device flow is signed in by pasting back.
				*paste = c.interactive && !slices.Contains(s.conn.MethodsContext(ctx, []provider.Provider{s.provider})[0], provider.AuthDevice)
				if *paste {
					fmt.Fprintln(c.stderr, "Could not open a browser here. Open the link on any machine; this one waits for you to paste back where the browser ends up.")
				} else {
					fmt.Fprintln(c.stderr, "Could not open a browser; open the link yourself.")
				}
			}
		}
	}

	waitCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stopCountdown := func() {}
	if *device && !f.ExpiresAt.IsZero() {
		stopCountdown = c.countdown(waitCtx, f.ExpiresAt)
	} else if !*paste {
		fmt.Fprintln(c.stderr, "Waiting for consent in the browser (Ctrl-C to cancel)...")
	}
	var done flow.Flow
	if *paste {
		done, err = c.waitOrPaste(waitCtx, s, f)
	} else {
		done, err = s.conn.Wait(waitCtx, s.profile, s.name)
	}
	stopCountdown()
	if err != nil || done.State != flow.StateConnected {
		// Free the loopback port and end device polling whatever happened.
		_, _ = s.conn.Cancel(context.WithoutCancel(ctx), s.profile, s.name)
		switch {
		case errors.Is(err, errInterrupted) || (*paste && ctx.Err() != nil):
			return fmt.Errorf("%w; nothing was stored", errInterrupted) // Ctrl-C at the paste prompt
		case ctx.Err() != nil:
			return errors.New("sign-in cancelled")
		case waitCtx.Err() != nil:
			if f.RedirectURI != "" {
				return fmt.Errorf("no sign-in answer came back to %s in time; if the browser shows an error from the authorization server (it may not accept that redirect URI or the client), that is the cause; run memconnect login again", f.RedirectURI)
			}
			return errors.New("timed out waiting for consent; run memconnect login again")
		case err != nil:
			return err // a *flow.Failure says it for a person
		}
		return fmt.Errorf("sign-in did not finish: %s", orElse(done.Detail, string(done.State)))
	}
	fmt.Fprintf(c.stdout, "Connected to %s.\n", c.displayName())
	if s.name != honcho.Name {
		return nil // the peer name is Honcho's
	}

	var tok *oauth2.Token
	select {
	case tok = <-installed:
	default:
	}
	consent := consentPeerName(tok)
	if consent == "" {
		return nil
	}
	loc, err := s.location()
	if err != nil {
		return err
	}
	current := currentPeerName(loc)
	switch {
	case c.interactive:
		return c.askPeerName(ctx, s, loc, orElse(current, consent))
	case current != "":
		// Nobody can answer a prompt: the name the user set stays.
		fmt.Fprintf(c.stdout, "Peer name %q kept.\n", current)
		return nil
	}
	if err := checkPeerName(consent); err != nil {
		fmt.Fprintf(c.stdout, "The peer name given at consent was not saved: %s.\n", err)
		return nil
	}
	return c.savePeerName(ctx, s, loc, consent)
}

// confirmReplace asks before login replaces a sign-in that still works.
// With force it does not ask; without a terminal it refuses and says how
// to go on. Ctrl-C or any answer but yes changes nothing.
func (c *cli) confirmReplace(ctx context.Context, s *setup, force bool) error {
	if force {
		return nil
	}
	rep, err := s.conn.Status(ctx, s.profile, s.name)
	if err != nil {
		return err
	}
	if !rep.Connected || rep.ReauthRequired {
		return nil
	}
	how := "OAuth"
	if rep.Auth == provider.AuthAPIKey {
		how = "an API key"
	}
	already := fmt.Sprintf("This profile is already signed in to %s with %s.", c.displayName(), how)
	if !c.interactive {
		return &codedError{code: exitFailed, msg: already + " Nothing was changed; to replace the sign-in, run the same command with --force."}
	}
	answer, err := c.ask(ctx, c.stdout, false, already+" Replace it? [y/N]: ")
	switch {
	case errors.Is(err, errInterrupted):
		return fmt.Errorf("%w; nothing was changed", errInterrupted)
	case err != nil && !errors.Is(err, io.EOF):
		return err
	}
	if a := strings.ToLower(strings.TrimSpace(answer)); a == "y" || a == "yes" {
		return nil
	}
	return &codedError{code: exitFailed, msg: "Kept the current sign-in; nothing was changed."}
}

// loginAPIKey reads an API key from stdin and stores it for the profile.
func (c *cli) loginAPIKey(ctx context.Context, cf *common, force bool) error {
	s, err := c.setup(cf)
	if err != nil {
		return err
	}
	defer s.close()
	if err := c.confirmReplace(ctx, s, force); err != nil {
		return err
	}
	var key string
	if c.interactive {
		key, err = c.ask(ctx, c.stderr, true, fmt.Sprintf("API key for %s (not shown): ", c.displayName()))
		if errors.Is(err, errInterrupted) {
			return fmt.Errorf("%w; no API key was stored", errInterrupted)
		}
		fmt.Fprintln(c.stderr)
	} else {
		var b []byte
		b, err = io.ReadAll(io.LimitReader(c.stdin, 64<<10))
		key = string(b)
	}
	if err != nil {
		return fmt.Errorf("reading the API key: %w", err)
	}
	key = strings.TrimRight(key, "\r\n")
	if key == "" {
		return &usageError{msg: "login --api-key: no key on stdin; pipe it in, such as: memconnect login --api-key < key.txt"}
	}
	if _, err := s.conn.ConnectAPIKey(ctx, s.profile, s.name, key); err != nil {
		return err
	}
	loc, err := s.location()
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "Connected to %s with an API key, stored in %s.\n", c.displayName(), honcho.DisplayPath(loc.WritePath, s.home))
	return nil
}

// currentPeerName is the "peerName" already set in the config, in the host
// block or at the root; "" for none.
func currentPeerName(loc provider.GrantLocation) string {
	b, err := os.ReadFile(loc.WritePath)
	if err != nil {
		return ""
	}
	var cfg struct {
		PeerName string                     `json:"peerName"`
		Hosts    map[string]json.RawMessage `json:"hosts"`
	}
	if json.Unmarshal(b, &cfg) != nil {
		return ""
	}
	var host struct {
		PeerName string `json:"peerName"`
	}
	if raw, ok := cfg.Hosts[loc.Host]; ok && json.Unmarshal(raw, &host) == nil && host.PeerName != "" {
		return host.PeerName
	}
	return cfg.PeerName
}

// consentPeerName is the "peerName" of the config object Honcho returns
// with the token: the name the person gave at consent; "" for none.
func consentPeerName(tok *oauth2.Token) string {
	if tok == nil {
		return ""
	}
	cfg, _ := tok.Extra("config").(map[string]any)
	name, _ := cfg["peerName"].(string)
	return name
}

// askPeerName asks a person for the peer name, offering def, and stores the
// answer as the root "peerName" of the config. A name checkPeerName
// refuses is asked again; Ctrl-C leaves the config as it is.
func (c *cli) askPeerName(ctx context.Context, s *setup, loc provider.GrantLocation, def string) error {
	if checkPeerName(def) != nil {
		def = ""
	}
	for {
		line, err := c.ask(ctx, c.stdout, false, fmt.Sprintf("Peer name [%s]: ", def))
		switch {
		case errors.Is(err, errInterrupted):
			return fmt.Errorf("%w; you are signed in, and the peer name was not changed", errInterrupted)
		case errors.Is(err, io.EOF):
			fmt.Fprintln(c.stdout) // no more input: the default, if any
			if def == "" {
				fmt.Fprintln(c.stdout, "No peer name was saved.")
				return nil
			}
			return c.savePeerName(ctx, s, loc, def)
		case err != nil:
			return err
		}
		name := strings.TrimSpace(line)
		if name == "" {
			name = def
		}
		if name == "" {
			fmt.Fprintln(c.stdout, "Type a peer name: the name Honcho knows you by.")
			continue
		}
		if err := checkPeerName(name); err != nil {
			fmt.Fprintf(c.stdout, "That peer name cannot be used: %s. Type another.\n", err)
			continue
		}
		return c.savePeerName(ctx, s, loc, name)
	}
}

// savePeerName stores name as the root "peerName" of the config.
func (c *cli) savePeerName(ctx context.Context, s *setup, loc provider.GrantLocation, name string) error {
	if err := s.conn.Stores().File(loc.WritePath, loc.Layout).MergeConfig(ctx, loc.Host, map[string]any{"peerName": name}); err != nil {
		return fmt.Errorf("storing the peer name: %w", err)
	}
	fmt.Fprintf(c.stdout, "Peer name %q saved to %s.\n", name, honcho.DisplayPath(loc.WritePath, s.home))
	return nil
}

// countdown shows on stderr how long the device code stays valid until stop
// is called or ctx ends: on a terminal it rewrites one line every second,
// elsewhere (a log) it writes a line a minute.
func (c *cli) countdown(ctx context.Context, expires time.Time) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	finished := make(chan struct{})
	every, format := time.Minute, "Waiting for approval (Ctrl-C to cancel)... code expires in %d:%02d\n"
	if c.stderrTTY {
		every, format = time.Second, "\rWaiting for approval (Ctrl-C to cancel)... code expires in %d:%02d "
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			left := max(time.Until(expires).Round(time.Second), 0)
			fmt.Fprintf(c.rawStderr, format, int(left/time.Minute), int(left%time.Minute/time.Second))
			select {
			case <-ctx.Done():
				if c.stderrTTY {
					fmt.Fprintln(c.stderr)
				}
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-finished }
}

// orElse returns s, or def when s is empty.
func orElse(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// portFlag is --port: a port from 0 to 65535, when set. Its help shows no
// default, which is the provider's.
type portFlag struct {
	n   int
	set bool
	bad string // what was given when it is not a port
}

func (p *portFlag) String() string {
	if p == nil || !p.set {
		return ""
	}
	return strconv.Itoa(p.n)
}

func (p *portFlag) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 65535 {
		p.bad = v // reported as a usage error with the command's words
		return nil
	}
	p.n, p.set, p.bad = n, true, ""
	return nil
}

// sayMovedPort says so when the loopback listener could not take the port
// asked for (another sign-in, or another program, holds it) and took
// another: the server must then accept that port too.
func (c *cli) sayMovedPort(s *setup, redirectURI string) {
	asked := s.conn.LoopbackAddr
	if la, ok := s.provider.(provider.LoopbackAddresser); ok && asked == "" {
		asked = la.LoopbackAddr()
	}
	_, want, err := net.SplitHostPort(asked)
	u, uerr := url.Parse(redirectURI)
	if err != nil || uerr != nil || want == "0" || want == "" || u.Port() == want {
		return
	}
	fmt.Fprintf(c.stderr, "Port %s is taken, so the sign-in listens on port %s instead; if the server refuses that port, free %s and run memconnect login again.\n", want, u.Port(), want)
}
