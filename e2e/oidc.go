package e2e

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// OIDCProviderEnv names the environment variable that overrides the
// directory [StartOIDC] takes oidc-provider from. When it is empty,
// StartOIDC runs scripts/install-oidc-provider.sh, which installs it once
// into the user's cache and prints the directory.
const OIDCProviderEnv = "MEMCONNECT_OIDC_PROVIDER"

// OIDC is a running oidc-provider: panva's certified OpenID provider,
// configured by testdata/oidc/server.mjs with dynamic registration,
// resource indicators for one resource, rotating refresh tokens,
// revocation and the device flow.
type OIDC struct {
	Issuer string
}

// StartOIDC starts an oidc-provider whose one resource is resource, and
// stops it with the test. It skips the test under -short, and fails it
// when Node.js or the package cannot be had.
func StartOIDC(t *testing.T, resource string) *OIDC {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipping the oidc-provider test in -short mode (it runs Node.js)")
	}
	dir := os.Getenv(OIDCProviderEnv)
	if dir == "" {
		script, err := findUp("scripts/install-oidc-provider.sh")
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("bash", script).Output()
		if err != nil {
			t.Fatalf("e2e: %s: %v", script, err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		dir = lines[len(lines)-1]
	}
	server, err := findUp("e2e/testdata/oidc/server.mjs")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "node", server)
	cmd.Env = append(os.Environ(), "OIDC_PROVIDER_DIR="+dir, "RESOURCE="+resource)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("e2e: node: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	issuer := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if iss, ok := strings.CutPrefix(sc.Text(), "issuer "); ok {
				issuer <- iss
			}
		}
		close(issuer)
	}()
	select {
	case iss, ok := <-issuer:
		if !ok {
			t.Fatalf("e2e: oidc-provider ended before it listened:\n%s", stderr.String())
		}
		return &OIDC{Issuer: iss}
	case <-time.After(30 * time.Second):
		t.Fatalf("e2e: oidc-provider did not listen within 30 s:\n%s", stderr.String())
	}
	return nil
}

var (
	formRE  = regexp.MustCompile(`(?s)<form[^>]*action="([^"]*)"[^>]*>(.*?)</form>`)
	inputRE = regexp.MustCompile(`<input[^>]*>`)
	attrRE  = regexp.MustCompile(`(\w+)="([^"]*)"`)
)

// Consent plays the person in a browser from link on: it follows the
// provider's redirects, signs in on its development login form (any name
// and password) and confirms every form (consent, a device code), and
// returns the first location outside the provider (the redirect URI with
// the code), or nil when the interaction ends on the provider's own page
// (a device sign-in).
func (o *OIDC) Consent(t *testing.T, link string) *url.URL {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	issuer, _ := url.Parse(o.Issuer)
	method, next, form := http.MethodGet, link, url.Values(nil)
	for range 20 {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequest(method, next, body)
		if err != nil {
			t.Fatal(err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatalf("e2e: oidc-provider %s %s: %v", method, next, err)
		}
		page, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 && loc != "" {
			u, err := req.URL.Parse(loc)
			if err != nil {
				t.Fatal(err)
			}
			if u.Host != issuer.Host {
				return u
			}
			method, next, form = http.MethodGet, u.String(), nil
			continue
		}
		m := formRE.FindSubmatch(page)
		if resp.StatusCode != http.StatusOK || m == nil {
			if resp.StatusCode == http.StatusOK {
				return nil // the provider's own last page
			}
			t.Fatalf("e2e: oidc-provider answered %s at %s:\n%s", resp.Status, next, page)
		}
		action, err := req.URL.Parse(string(m[1]))
		if err != nil {
			t.Fatal(err)
		}
		form = url.Values{}
		for _, in := range inputRE.FindAll(m[2], -1) {
			attrs := map[string]string{}
			for _, a := range attrRE.FindAllSubmatch(in, -1) {
				attrs[string(a[1])] = string(a[2])
			}
			switch name := attrs["name"]; name {
			case "":
			case "login":
				form.Set(name, "alice")
			case "password":
				form.Set(name, "any")
			default:
				form.Set(name, attrs["value"])
			}
		}
		method, next = http.MethodPost, action.String()
	}
	t.Fatalf("e2e: oidc-provider: no end after 20 steps from %s", link)
	return nil
}
