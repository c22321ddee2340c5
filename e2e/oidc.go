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
	dir := npmPackage(t, OIDCProviderEnv, "scripts/install-oidc-provider.sh")
	said := runNode(t, "e2e/testdata/oidc/server.mjs", []string{"OIDC_PROVIDER_DIR=" + dir, "RESOURCE=" + resource}, "issuer")
	return &OIDC{Issuer: said["issuer"]}
}

// npmPackage returns the directory of an npm package the tests run: the
// one env names, else the one script installs (once, into the user's
// cache) and prints last.
func npmPackage(t *testing.T, env, script string) string {
	t.Helper()
	if dir := os.Getenv(env); dir != "" {
		return dir
	}
	path, err := findUp(script)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bash", path).Output()
	if err != nil {
		t.Fatalf("e2e: %s: %v", path, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// runNode runs the node script (a path from the repository's root) with
// env added, stopped with the test, and returns the value of each line
// "<key> <value>" it prints for keys, once it printed them all.
func runNode(t *testing.T, script string, env []string, keys ...string) map[string]string {
	t.Helper()
	path, err := findUp(script)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "node", path)
	cmd.Env = append(os.Environ(), env...)
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
	said := make(chan map[string]string, 1)
	go func() {
		got := map[string]string{}
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			for _, k := range keys {
				if v, ok := strings.CutPrefix(sc.Text(), k+" "); ok {
					got[k] = v
				}
			}
			if len(got) == len(keys) {
				said <- got
				for sc.Scan() { // drain
				}
				return
			}
		}
		close(said)
	}()
	select {
	case got, ok := <-said:
		if !ok {
			t.Fatalf("e2e: %s ended before it listened:\n%s", script, stderr.String())
		}
		return got
	case <-time.After(60 * time.Second):
		t.Fatalf("e2e: %s did not listen within 60 s:\n%s", script, stderr.String())
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
		resp, page := browse(t, browser, method, next, form)
		req := resp.Request
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

// browse sends one request of a browser (a form POST when form is not
// nil) and returns the answer, its body read (at most 1 MiB) and closed.
func browse(t *testing.T, browser *http.Client, method, target string, form url.Values) (*http.Response, []byte) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatalf("e2e: %s %s: %v", method, target, err)
	}
	page, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp, page
}
