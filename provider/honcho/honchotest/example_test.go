package honchotest_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/oauth/oauthtest"
	"github.com/memconnect/memconnect/provider/honcho/honchotest"
)

// A browser sign-in end to end: the consent page is approved by
// [honchotest.Server.Consent], the code is exchanged with PKCE, and the grant
// rotates on refresh.
func ExampleServer() {
	srv := honchotest.NewServer(honchotest.WithGrantConfig(map[string]any{"workspace": "hermes"}))
	defer srv.Close()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, srv.Client())

	cfg := srv.OAuth2Config("http://127.0.0.1:8765/callback", "write")
	verifier := oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(verifier))

	// A person approves on the consent page; the browser would now go to:
	callback, err := srv.Consent(ctx, srv.Client(), authURL, true)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("state:", callback.Query().Get("state"))

	tok, err := cfg.Exchange(ctx, callback.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("access token:", strings.HasPrefix(tok.AccessToken, "hch-at-"))
	fmt.Println("config:", tok.Extra("config"))

	tok.Expiry = tok.Expiry.Add(-2 * oauthtest.DefaultAccessTokenTTL) // force a refresh
	refreshed, err := cfg.TokenSource(ctx, tok).Token()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("rotated:", refreshed.RefreshToken != tok.RefreshToken, "old refresh token active:", srv.Active(tok.RefreshToken))
	fmt.Printf("%+v\n", srv.Stats())
	// Output:
	// state: state-0123456789
	// access token: true
	// config: map[workspace:hermes]
	// rotated: true old refresh token active: false
	// {AuthorizationCodes:1 Refreshes:1 Replays:0 RevokedGrants:0 Revocations:0 DeviceGrants:0 TokenRequests:2}
}

// A device sign-in (RFC 8628): the test plays the person who enters the
// user code. x/oauth2 waits one interval (1 s) before its poll, so this
// example is compiled, not run: the module's own tests check the same
// steps in a testing/synctest bubble, where the interval takes no time.
func ExampleServer_ApproveDevice() {
	srv := honchotest.NewServer()
	defer srv.Close()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, srv.Client())
	cfg := srv.OAuth2Config("", "write")

	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("verify at:", strings.TrimPrefix(da.VerificationURI, srv.URL))
	if err := srv.ApproveDevice(da.UserCode); err != nil {
		log.Fatal(err)
	}
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("scope:", tok.Extra("scope"), "active:", srv.Active(tok.AccessToken))
	// It prints:
	//	verify at: /device
	//	scope: write active: true
}
