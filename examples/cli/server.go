package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/memconnect/memconnect/internal/wire"
	"github.com/memconnect/memconnect/provider"
)

// tokenFromServer asks a router's token route for the profile's token and
// prints it: a script or an agent's host then needs the router's session
// token, not the store's key.
func (c *cli) tokenFromServer(ctx context.Context, server, sessionToken string, cf common, force bool) error {
	u, err := url.Parse(strings.TrimSuffix(server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &usageError{msg: fmt.Sprintf("token: --server %q is not an http(s) URL", server)}
	}
	profile := cf.profile
	if profile == "" {
		profile = provider.DefaultProfile
	}
	if err := provider.ValidateProfileName(profile); err != nil {
		return &usageError{msg: "token: --profile: " + err.Error()}
	}
	name := cf.provider
	if name == "" {
		name = "honcho"
	}
	if strings.Contains(name, "=") {
		return &usageError{msg: "token: with --server, --provider is the name the server registered"}
	}
	body, _ := json.Marshal(map[string]bool{"force": force})
	target := u.String() + "/profiles/" + url.PathEscape(profile) + "/providers/" + url.PathEscape(name) + "/token"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if sessionToken != "" {
		req.Header.Set("Authorization", "Bearer "+sessionToken)
	}
	client := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("the server %s could not be reached: %w", u.Redacted(), errors.Unwrap(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("the server %s: %w", u.Redacted(), err)
	}
	var answer struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Message     string `json:"message"`
	}
	_ = json.Unmarshal(raw, &answer)
	switch {
	case resp.StatusCode == http.StatusOK && answer.AccessToken != "":
		_, err = fmt.Fprintln(c.stdout, answer.AccessToken)
		return err
	case answer.Error == "not_connected" || answer.Error == "reauth_required":
		return &codedError{code: exitReauth, msg: fmt.Sprintf("%s Sign in: memconnect login%s", wire.Printable(answer.Message, 300), c.profileHint)}
	case answer.Message != "":
		return fmt.Errorf("the server %s answered %d: %s", u.Redacted(), resp.StatusCode, wire.Printable(answer.Message, 300))
	}
	return fmt.Errorf("the server %s answered %d, not a token: is it a memconnect router (the URL where the host mounts it)?", u.Redacted(), resp.StatusCode)
}
