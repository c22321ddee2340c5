package oauthfake

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// Consent drives the consent page as a person would: it GETs authorizeURL
// (an authorization request, usually from [oauth2.Config.AuthCodeURL]),
// finds the page's form and its Approve or Deny button, submits the
// decision, and returns where the server redirects the browser without
// following it: the client's redirect_uri with code and state, or with
// error=access_denied and state. With [WithAutoApprove] or [WithAutoDeny],
// or when the request is refused with a redirect, it returns the first
// redirect's target. A page that is not a redirect nor a consent form (an
// invalid client or redirect URI) is an error.
//
// c is the client to use, nil meaning [http.DefaultClient]; Consent does
// not modify it.
func (s *Server) Consent(ctx context.Context, c *http.Client, authorizeURL string, approve bool) (*url.URL, error) {
	if c == nil {
		c = http.DefaultClient
	}
	nc := *c
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authorizeURL, nil)
	if err != nil {
		return nil, fmt.Errorf("oauthtest: consent: %w", err)
	}
	resp, err := nc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("oauthtest: consent: %w", err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("oauthtest: consent: reading the page: %w", err)
	}
	if isRedirect(resp.StatusCode) {
		return location(resp)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("oauthtest: consent: authorization request answered %s: %s", resp.Status, pageText(body))
	}

	action, fields, err := consentForm(string(body), approve)
	if err != nil {
		return nil, err
	}
	target, err := resp.Request.URL.Parse(action)
	if err != nil {
		return nil, fmt.Errorf("oauthtest: consent: form action: %w", err)
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, target.String(), strings.NewReader(fields.Encode()))
	if err != nil {
		return nil, fmt.Errorf("oauthtest: consent: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = nc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("oauthtest: consent: %w", err)
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("oauthtest: consent: reading the answer: %w", err)
	}
	if !isRedirect(resp.StatusCode) {
		return nil, fmt.Errorf("oauthtest: consent: decision answered %s: %s", resp.Status, pageText(body))
	}
	return location(resp)
}

var (
	formRE   = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	inputRE  = regexp.MustCompile(`(?is)<input\b([^>]*)>`)
	buttonRE = regexp.MustCompile(`(?is)<button\b([^>]*)>(.*?)</button>`)
	attrRE   = regexp.MustCompile(`(?is)\b([a-z-]+)\s*=\s*"([^"]*)"`)
	tagRE    = regexp.MustCompile(`(?s)<[^>]*>`)
)

// consentForm finds the form with the decision button and returns its action
// and the fields a browser would submit when the person clicks the button.
func consentForm(page string, approve bool) (action string, fields url.Values, err error) {
	want, label := "deny", "Deny"
	if approve {
		want, label = "approve", "Approve"
	}
	for _, f := range formRE.FindAllStringSubmatch(page, -1) {
		fa := attrs(f[1])
		if !strings.EqualFold(fa["method"], "post") {
			continue
		}
		for _, b := range buttonRE.FindAllStringSubmatch(f[2], -1) {
			ba := attrs(b[1])
			if ba["name"] != "decision" || ba["value"] != want || strings.TrimSpace(pageText([]byte(b[2]))) != label {
				continue
			}
			fields = url.Values{}
			for _, in := range inputRE.FindAllStringSubmatch(f[2], -1) {
				ia := attrs(in[1])
				if ia["name"] != "" {
					fields.Set(ia["name"], ia["value"])
				}
			}
			fields.Set("decision", want)
			return fa["action"], fields, nil
		}
	}
	return "", nil, fmt.Errorf("oauthtest: consent: no form with a %q button on the page", label)
}

// attrs parses double-quoted attributes, unescaping their values.
func attrs(s string) map[string]string {
	m := make(map[string]string)
	for _, a := range attrRE.FindAllStringSubmatch(s, -1) {
		m[strings.ToLower(a[1])] = html.UnescapeString(a[2])
	}
	return m
}

// pageText is the visible text of an HTML fragment, whitespace collapsed and
// cut to a readable length, for error messages.
func pageText(b []byte) string {
	s := string(b)
	if i := strings.Index(strings.ToLower(s), "<main>"); i >= 0 {
		s = s[i:]
	}
	s = strings.Join(strings.Fields(html.UnescapeString(tagRE.ReplaceAllString(s, " "))), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

func location(resp *http.Response) (*url.URL, error) {
	u, err := resp.Location()
	if err != nil {
		if errors.Is(err, http.ErrNoLocation) {
			return nil, fmt.Errorf("oauthtest: consent: %s without a Location", resp.Status)
		}
		return nil, fmt.Errorf("oauthtest: consent: %w", err)
	}
	return u, nil
}
