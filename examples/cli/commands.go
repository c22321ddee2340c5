package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

// status prints how the profile authenticates to the provider.
func (c *cli) status(ctx context.Context, args []string) error {
	var cf common
	fs := c.newFlagSet("status", "show how the profile authenticates to a memory provider, from its config (or --store); exits 3 when a sign-in is needed")
	cf.register(fs, &c.verbose)
	cf.registerStore(fs, c.env)
	asJSON := fs.Bool("json", false, "print the status body as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	s, err := c.setup(&cf)
	if err != nil {
		return err
	}
	defer s.close()
	rep, err := s.conn.Status(ctx, s.profile, s.name)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		where, err := s.where()
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "%s, profile %s: %s\n", c.displayName(), rep.Profile, where)
		fmt.Fprintln(c.stdout, c.authLine(rep))
	}
	if rep.ReauthRequired || !rep.Connected {
		return silentExit(exitReauth) // the status said it already
	}
	return nil
}

// authLine is the "Auth:" line of status.
func (c *cli) authLine(rep provider.StatusReport) string {
	switch rep.Auth {
	case provider.AuthOAuth:
		client := "unknown client"
		var expiresIn int64
		if rep.Token != nil {
			client, expiresIn = rep.Token.ClientID, rep.Token.ExpiresIn
		}
		switch {
		case rep.ReauthRequired:
			return fmt.Sprintf("Auth: OAuth (%s, re-authentication required — run: memconnect login%s)", client, c.profileHint)
		case expiresIn <= 0:
			return fmt.Sprintf("Auth: OAuth (%s, token expired, refreshes on next use)", client)
		default:
			return fmt.Sprintf("Auth: OAuth (%s, token valid %s)", client, shortDuration(time.Duration(expiresIn)*time.Second))
		}
	case provider.AuthAPIKey:
		if rep.APIKeyHint == "" {
			return "Auth: API key"
		}
		return fmt.Sprintf("Auth: API key (%s)", rep.APIKeyHint)
	}
	return "Auth: not connected"
}

// shortDuration formats d in whole minutes: "57m", "1h05m", "<1m".
func shortDuration(d time.Duration) string {
	if d < time.Minute {
		return "<1m"
	}
	h, m := d/time.Hour, (d%time.Hour)/time.Minute
	if h == 0 {
		return fmt.Sprintf("%dm", m)
	}
	return fmt.Sprintf("%dh%02dm", h, m)
}

// token prints a fresh access token.
func (c *cli) token(ctx context.Context, args []string) error {
	var cf common
	fs := c.newFlagSet("token", "print a fresh access token on stdout, refreshing it first if it is about to expire; exits 3 when not signed in")
	cf.register(fs, &c.verbose)
	cf.registerStore(fs, c.env)
	server := fs.String("server", c.env("MEMCONNECT_SERVER"), "URL of a memconnect router (where the host mounts it, such as http://127.0.0.1:8080/api/memory) to ask for the token, with --session-token: no store key needed (default $MEMCONNECT_SERVER)")
	sessionToken := fs.String("session-token", c.env("MEMCONNECT_SESSION_TOKEN"), "the router's session token, for --server (default $MEMCONNECT_SESSION_TOKEN)")
	force := fs.Bool("force", false, "with --server: refresh even when the token is not due (a request was refused with it)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *server != "" {
		if cf.store != "" || cf.config != "" {
			return &usageError{msg: "token: use --server alone, or --store or --config, not both"}
		}
		return c.tokenFromServer(ctx, *server, *sessionToken, cf, *force)
	}
	s, err := c.setup(&cf)
	if err != nil {
		return err
	}
	defer s.close()
	rotated := false
	ts, err := s.conn.TokenSource(s.profile, s.name, oauth.OnTokenChange(func(*oauth2.Token) { rotated = true }))
	if err != nil {
		return err
	}
	tok, err := ts.TokenContext(ctx)
	if errors.Is(err, oauth.ErrNoGrant) {
		// A profile connected with an API key uses the key as its token.
		if key, err := s.apiKey(ctx, c.env); err != nil || key != "" {
			if err == nil {
				_, err = fmt.Fprintln(c.stdout, key)
			}
			return err
		}
		return &codedError{code: exitReauth, msg: fmt.Sprintf("Not signed in to %s. Sign in: memconnect login%s", c.displayName(), c.profileHint)}
	}
	if err != nil {
		return err
	}
	// A run this short must not end holding a rotation the config file
	// does not have: the next run would replay the spent token.
	if err := ts.Sync(ctx); err != nil {
		return err
	}
	// The token source fails open for long-running agents; a person asking
	// for a token must not be handed one that is already dead.
	if !tok.Expiry.IsZero() && !time.Now().Before(tok.Expiry) {
		if rotated {
			return errors.New("the server issued a new token that had already expired (a negative expires_in); it was stored, but there is no valid token to print; try again, or report it to the server's operator")
		}
		return errors.New("the access token has expired and could not be refreshed; try again in a minute (-v says why)")
	}
	_, err = fmt.Fprintln(c.stdout, tok.AccessToken)
	return err
}

// keyWord names what a provider's grant is keyed by in its file.
func keyWord(p provider.Provider) string {
	if p.Name() == honcho.Name {
		return "host"
	}
	return "server"
}

// logout revokes the grant at the server and removes it from the config.
func (c *cli) logout(ctx context.Context, args []string) error {
	var cf common
	fs := c.newFlagSet("logout", "revoke the grant at the server and remove it from the config (or --store), keeping every other key; not signed in is not an error")
	cf.register(fs, &c.verbose)
	cf.registerEndpoints(fs, "token-url", "revocation-url")
	cf.registerStore(fs, c.env)
	if err := parse(fs, args); err != nil {
		return err
	}
	s, err := c.setup(&cf)
	if err != nil {
		return err
	}
	defer s.close()
	from := "the config"
	if s.store != nil {
		from = "the shared store"
	}
	res, err := s.conn.Disconnect(ctx, s.profile, s.name)
	if err != nil {
		return err
	}
	switch {
	case !res.Removed:
		fmt.Fprintf(c.stdout, "Not signed in to %s; nothing to remove.\n", c.displayName())
	case res.Revoked:
		fmt.Fprintf(c.stdout, "Signed out of %s: the grant was revoked at the server and removed from %s.\n", c.displayName(), from)
	case res.RevokeError != "":
		fmt.Fprintln(c.stdout, res.NotRevokedSentence(c.displayName()))
	case res.APIKey:
		fmt.Fprintf(c.stdout, "Signed out of %s: the API key was removed from %s.\n", c.displayName(), from)
	default:
		fmt.Fprintf(c.stdout, "Signed out of %s: the sign-in was removed from %s.\n", c.displayName(), from)
	}
	return nil
}
