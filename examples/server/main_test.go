package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/events"
	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/oauth/pgstore"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

// Several parallel tests of this package wait out a server's timeouts.
func TestMain(m *testing.M) { testkit.RunWaiting(m) }

// lines is an io.Writer that hands every complete line to a channel, so a
// test can wait for what the server prints.
type lines struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
	ch  chan string
}

func newLines() *lines { return &lines{ch: make(chan string, 1000)} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadString('\n')
		if err != nil {
			l.buf.WriteString(line) // an incomplete line: keep it
			return len(p), nil
		}
		select {
		case l.ch <- strings.TrimSuffix(line, "\n"):
		default:
		}
	}
}

// waitFor returns the submatches of the first line matching re.
func (l *lines) waitFor(t *testing.T, re *regexp.Regexp, done <-chan error) []string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case line := <-l.ch:
			if m := re.FindStringSubmatch(line); m != nil {
				return m
			}
		case err := <-done:
			t.Fatalf("run returned %v before printing a line matching %s", err, re)
		case <-timeout:
			t.Fatalf("no line matching %s", re)
		}
	}
}

// server runs the command with args and returns its base URL and a
// function that stops it and returns run's error.
func server(t *testing.T, args ...string) (base string, stop func() error) {
	t.Helper()
	base, stop, _ = serverBanner(t, args...)
	return base, stop
}

// serverBanner is server that also returns the lines printed after the
// "listening on" line.
func serverBanner(t *testing.T, args ...string) (base string, stop func() error, banner *lines) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	out := newLines()
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, out, io.Discard) }()
	base = out.waitFor(t, regexp.MustCompile(`^listening on (http://127\.0\.0\.1:\d+)$`), done)[1]
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				err = errors.New("run did not return after its context ended")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return base, stop, out
}

func get(t *testing.T, target string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("GET", target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestRunDev(t *testing.T) {
	t.Parallel()
	base, stop := server(t, "-dev", "-addr", "127.0.0.1:0")
	tests := []struct {
		path       string
		wantStatus int
		wantBody   string // substring
	}{
		{"/healthz", 200, "ok"},
		{"/api/hello", 200, `"hello":"world"`},
		{"/", 200, "<html"},
		{"/app.js", 200, "memconnect"},
		{"/api/memory/providers", 200, `{"providers":[{"name":"honcho","display_name":"Honcho","auth_methods":["browser","device","apikey"]},` + // Honcho first
			`{"name":"supermemory","display_name":"Supermemory","auth_methods":["browser","apikey"]},` +
			`{"name":"devmemory","display_name":"Development memory (MCP)","auth_methods":["browser","device","apikey"]}]}`},
		{"/api/memory/profiles/default/providers/honcho/status", 200, `"connected":false`},
		{"/api/memory/nope", 404, `"error":"not_found"`},
		{"/metrics", 200, "memconnect_keeper_runs_total 0"},
	}
	for _, tt := range tests {
		status, _, body := get(t, base+tt.path)
		if status != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
			t.Errorf("GET %s = %d %.200q, want %d with %q", tt.path, status, body, tt.wantStatus, tt.wantBody)
		}
	}
	if err := stop(); err != nil {
		t.Errorf("run = %v, want a clean exit", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the server still answers after its context ended")
	}
}

// TestRunDevSignIn signs in through the development server the way a person
// (or examples/curl.md) does: connect, open authorize_url, click Approve,
// follow the redirect to the callback; then disconnect.
func TestRunDevSignIn(t *testing.T) {
	t.Parallel()
	for _, p := range []struct{ name, display string }{{"honcho", "Honcho"}, {"devmemory", "Development memory (MCP)"}} {
		t.Run(p.name, func(t *testing.T) { testRunDevSignIn(t, p.name, p.display) })
	}
}

func testRunDevSignIn(t *testing.T, name, display string) {
	base, stop := server(t, "-dev", "-addr", "127.0.0.1:0", "-session-token", "tok-0123456789")
	api := base + "/api/memory/profiles/default/providers/" + name
	auth := []string{"Authorization", "Bearer tok-0123456789"}

	if status, _, _ := get(t, api+"/status"); status != 401 {
		t.Errorf("status without the session token = %d, want 401", status)
	}
	req, _ := http.NewRequest("POST", api+"/connect", strings.NewReader(`{"source":"curl"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(auth[0], auth[1])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Flow struct {
			AuthorizeURL string `json:"authorize_url"`
			RedirectURI  string `json:"redirect_uri"`
		} `json:"flow"`
	}
	err = json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("connect = %d, %v", resp.StatusCode, err)
	}
	if rep.Flow.RedirectURI != api+"/callback" {
		t.Errorf("redirect_uri = %q, want the router's callback %s", rep.Flow.RedirectURI, api+"/callback")
	}

	// The consent page: a form with the request id and an Approve button.
	status, _, page := get(t, rep.Flow.AuthorizeURL)
	m := regexp.MustCompile(`<form method="post" action="([^"]+)">\s*<input type="hidden" name="request" value="([^"]+)">`).FindStringSubmatch(page)
	if status != 200 || m == nil || !strings.Contains(page, ">Approve</button>") {
		t.Fatalf("consent page = %d\n%s", status, page)
	}
	authz, _ := url.Parse(rep.Flow.AuthorizeURL)
	action, _ := authz.Parse(html.UnescapeString(m[1]))
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.PostForm(action.String(), url.Values{"request": {html.UnescapeString(m[2])}, "decision": {"approve"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, api+"/callback?") {
		t.Fatalf("decision = %d Location %q", resp.StatusCode, loc)
	}
	// The browser follows the redirect, without the session token.
	if status, _, page := get(t, loc); status != 200 || !strings.Contains(page, "Connected to "+html.EscapeString(display)) {
		t.Fatalf("callback = %d\n%s", status, page)
	}
	if status, _, body := get(t, api+"/status", auth...); status != 200 || !strings.Contains(body, `"connected":true,"auth":"oauth"`) {
		t.Errorf("status after sign-in = %d %s", status, body)
	}
	req, _ = http.NewRequest("DELETE", api+"/connection", nil)
	req.Header.Set(auth[0], auth[1])
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"revoked":true`) {
		t.Errorf("disconnect = %d %s", resp.StatusCode, body)
	}
	if err := stop(); err != nil {
		t.Errorf("run = %v", err)
	}
}

func TestRunTempHomeRemoved(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	out := newLines()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-dev", "-addr", "127.0.0.1:0"}, out, io.Discard) }()
	home := out.waitFor(t, regexp.MustCompile(`^Hermes home: (.+) \(temporary, removed on exit\)$`), done)[1]
	out.waitFor(t, regexp.MustCompile(`^Or try:`), done)
	if _, err := os.Stat(home); err != nil {
		t.Fatalf("temporary home: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run = %v", err)
	}
	if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary home %s still exists after exit (%v)", home, err)
	}
}

func TestRunHomeFlagKept(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	_, stop := server(t, "-dev", "-addr", "127.0.0.1:0", "-home", home)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(home); err != nil {
		t.Errorf("-home %s was removed: %v", home, err)
	}
}

func TestRunFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    []string
		wantErr error
	}{
		{[]string{"-h"}, flag.ErrHelp},
		{[]string{"-nope"}, errUsage},
		{[]string{"extra"}, errUsage},
		{[]string{"-dev", "-webhook", "http://127.0.0.1:9/hook"}, errUsage},                       // no secret
		{[]string{"-dev", "-webhook-secret", "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3"}, errUsage}, // no URL
		{[]string{"-dev", "-keep-fresh", "1s"}, errUsage},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		err := run(t.Context(), tt.args, io.Discard, &stderr)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("run(%q) = %v, want %v", tt.args, err, tt.wantErr)
		}
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if err := run(t.Context(), []string{"-dev", "-addr", taken.Addr().String()}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "is taken") || !strings.Contains(err.Error(), "-addr") {
		t.Errorf("a taken -addr: %v, want an error naming -addr", err)
	}
	err = run(t.Context(), []string{"-dev", "-addr", "127.0.0.1:0", "-callback-base-url", "ftp://x"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "CallbackBaseURL") {
		t.Errorf("bad -callback-base-url: %v", err)
	}
	for _, bad := range []struct{ value, want string }{
		{"zep", "want NAME=URL"},
		{"Zep Cloud=https://mcp.example.com/mcp", "provider name"},
		{"zep=http://mcp.example.com/mcp", "not an https URL"},
		{"honcho=https://mcp.example.com/mcp", "-provider"},
	} {
		var stderr bytes.Buffer
		err := run(t.Context(), []string{"-dev", "-addr", "127.0.0.1:0", "-provider", bad.value}, io.Discard, &stderr)
		if err == nil || !strings.Contains(err.Error()+stderr.String(), bad.want) {
			t.Errorf("-provider %s: %v %s, want an error with %q", bad.value, err, stderr.String(), bad.want)
		}
	}
}

// TestRunProviderFlag: -provider adds a generic provider, listed with its
// methods, and an API key for it lands in the profile's memconnect.json.
func TestRunProviderFlag(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	base, _ := server(t, "-dev", "-addr", "127.0.0.1:0", "-home", home, "-provider", "zep=https://mcp.example.com/mcp")
	if status, _, body := get(t, base+"/api/memory/providers"); status != 200 || !strings.Contains(body, `{"name":"zep","display_name":"zep","auth_methods":["browser","apikey"]}`) {
		t.Errorf("providers = %d %s, want zep listed", status, body)
	}
	// The development MCP server takes the development API key.
	resp, err := http.Post(base+"/api/memory/profiles/default/providers/devmemory/connect", "application/json",
		strings.NewReader(`{"method":"apikey","api_key":"`+devAPIKey+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"auth":"apikey"`) || strings.Contains(string(body), devAPIKey) {
		t.Errorf("connect with the key = %d %s", resp.StatusCode, body)
	}
	b, err := os.ReadFile(filepath.Join(home, "memconnect.json"))
	if err != nil || !strings.Contains(string(b), `"token": "`+devAPIKey+`"`) {
		t.Errorf("memconnect.json = %s, %v; want the key", b, err)
	}
}

// The model server sets every timeout: a request that declares a longer
// body than it sends is cut off when the read timeout ends.
func TestServerTimeouts(t *testing.T) {
	t.Parallel()
	for name, d := range map[string]time.Duration{"read header": defaultTimeouts.readHeader, "read": defaultTimeouts.read,
		"write": defaultTimeouts.write, "idle": defaultTimeouts.idle} {
		if d <= 0 || d > time.Minute {
			t.Errorf("%s timeout = %v, want set and at most a minute", name, d)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}), timeouts{readHeader: time.Second, read: 200 * time.Millisecond, write: time.Second, idle: time.Second})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n0123456789")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // far beyond the server's
	start := time.Now()
	_, err = io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server still held the connection after %v", time.Since(start))
	}
}

// A method chi does not know gets memconnect's JSON 405 under /api/memory,
// like a known one.
func TestUnknownMethodJSON405(t *testing.T) {
	t.Parallel()
	h := hostRouter(newMemory(t), nil, nil)
	for _, method := range []string{"PUT", "BREW", "PROPFIND"} {
		req := httptest.NewRequest(method, "/api/memory/providers", nil)
		req.Host = "127.0.0.1:8080"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Content-Type") != "application/json" ||
			!strings.Contains(w.Body.String(), `"error":"method_not_allowed"`) || w.Header().Get("Allow") != "GET" {
			t.Errorf("%s /api/memory/providers = %d %q %q (Allow %q), want the JSON 405", method, w.Code, w.Header().Get("Content-Type"), w.Body, w.Header().Get("Allow"))
		}
	}
}

// With -store the server keeps grants in PostgreSQL: -migrate creates the
// schema and exits; without a key the server refuses to start; with one it
// serves.
func TestRunStore(t *testing.T) {
	t.Parallel()
	url := fixture.PostgresURL(t, true)
	var stderr bytes.Buffer
	if err := run(t.Context(), []string{"-migrate"}, io.Discard, &stderr); !errors.Is(err, errUsage) || !strings.Contains(stderr.String(), "-store") {
		t.Errorf("-migrate without -store: %v %q", err, stderr.String())
	}
	if err := run(t.Context(), []string{"-dev", "-addr", "127.0.0.1:0", "-store", url, "-store-key", "k1:" + strings.Repeat("A", 43) + "="}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "migrat") {
		t.Errorf("a store without its schema: %v, want a word on the migration", err)
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"-store", url, "-migrate"}, &out, io.Discard); err != nil || !strings.Contains(out.String(), "schema at version") {
		t.Fatalf("-migrate: %v %q", err, out.String())
	}
	for _, key := range []string{"", "k1:short"} {
		err := run(t.Context(), []string{"-dev", "-addr", "127.0.0.1:0", "-store", url, "-store-key", key}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "-store-key") || strings.Contains(err.Error(), "short") && key != "" && strings.Contains(err.Error(), key) {
			t.Errorf("-store-key %q: %v, want an error naming -store-key", key, err)
		}
	}
	base, stop, banner := serverBanner(t, "-dev", "-addr", "127.0.0.1:0", "-store", url, "-store-key", "k1:"+strings.Repeat("A", 43)+"=")
	// The banner names the store, never its credentials.
	m := banner.waitFor(t, regexp.MustCompile(`^grants and pending sign-ins: (PostgreSQL database "\w+" on 127\.0\.0\.1:\d+) `), nil)
	if cfg, _ := pgxpool.ParseConfig(url); cfg.ConnConfig.Password != "" && strings.Contains(m[0], cfg.ConnConfig.Password) {
		t.Errorf("the banner shows the password: %q", m[0])
	}
	if status, _, body := get(t, base+"/api/memory/profiles/default/providers/honcho/status"); status != 200 || !strings.Contains(body, `"connected":false`) {
		t.Errorf("status on the store = %d %s", status, body)
	}
	if err := stop(); err != nil {
		t.Error(err)
	}

	// -rekey seals again with the first key what the second sealed.
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	k1, k2 := fixture.PostgresKey("k1"), fixture.PostgresKey("k2")
	sealed := func(k pgstore.Key) *pgstore.Store {
		st, err := pgstore.New(t.Context(), pool, pgstore.Config{SpillDir: t.TempDir(), Keys: []pgstore.Key{k}})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	fkey := connid.ID{Profile: "default", Provider: "honcho"}
	if err := sealed(k1).Flows().Put(t.Context(), flow.Pending{Key: fkey, ID: "f", State: "s", Verifier: "v", ExpiresAt: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	keyFlag := func(k pgstore.Key) string { return k.ID + ":" + base64.StdEncoding.EncodeToString(k.Secret[:]) }
	out.Reset()
	if err := run(t.Context(), []string{"-store", url, "-store-key", keyFlag(k2) + "," + keyFlag(k1), "-rekey"}, &out, io.Discard); err != nil ||
		out.String() != "-rekey: every instance must already run with key \"k2\" (first in -store-key); one that lacks it cannot open what is sealed again now\n"+
			"key \"k2\" now seals every value in -store (1 sealed again); the other keys can go\n" {
		t.Fatalf("-rekey: %v %q", err, out.String())
	}
	if p, err := sealed(k2).Flows().Claim(t.Context(), fkey, "s"); err != nil || p.Verifier != "v" {
		t.Errorf("after -rekey, k2 alone opens %q, %v", p.Verifier, err)
	}
}

// The -dev banner gives the exports that point the CLI at the same
// temporary home and development server: each variable honcho.FromEnv
// reads, with values that lead to the server's endpoints. And the dev
// consent page names the file in the temporary home.
func TestRunDevExports(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := newLines()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-dev", "-addr", "127.0.0.1:0"}, out, io.Discard) }()
	base := out.waitFor(t, regexp.MustCompile(`^listening on (http://127\.0\.0\.1:\d+)$`), done)[1]
	home := out.waitFor(t, regexp.MustCompile(`^Hermes home: (.+) \(temporary, removed on exit\)$`), done)[1]
	// The MCP server's authorization server, where its device codes are
	// approved, is named; the export line comes last.
	out.waitFor(t, regexp.MustCompile(`^  its authorization server: http://127\.0\.0\.1:\d+ \(consent page to click; device codes at http://127\.0\.0\.1:\d+/device\)$`), done)
	out.waitFor(t, regexp.MustCompile(`^More in examples/curl\.md`), done)
	env := map[string]string{}
	first := out.waitFor(t, regexp.MustCompile(`^  export (\w+)=(\S+) \\$`), done)
	env[first[1]] = first[2]
	for {
		m := out.waitFor(t, regexp.MustCompile(`^ +(\w+)=(\S+?)( \\)?$`), done)
		env[m[1]] = m[2]
		if m[3] == "" {
			break
		}
	}
	if env["HERMES_HOME"] != home {
		t.Errorf("HERMES_HOME=%q, want the banner's home %q", env["HERMES_HOME"], home)
	}
	opts, err := honcho.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	ep, err := honcho.New(opts...).Endpoints(t.Context(), provider.Profile{Name: "default", Home: home})
	if err != nil {
		t.Fatal(err)
	}
	for name, u := range map[string]string{"authorize": ep.AuthorizeURL, "token": ep.TokenURL, "device": ep.DeviceAuthURL, "revocation": ep.RevocationURL, "issuer": ep.Issuer} {
		if u == "" || u == honcho.CloudAuthorizeURL || u == honcho.CloudTokenURL || !strings.HasPrefix(u, "http://127.0.0.1:") {
			t.Errorf("the exported %s endpoint is %q, not the development server", name, u)
		}
	}
	// API keys are checked where the server checks them.
	hp := honcho.New(opts...)
	if err := hp.CheckAPIKey(t.Context(), provider.Profile{}, devAPIKey); err != nil {
		t.Errorf("the development key at the exported check URL: %v", err)
	}
	if err := hp.CheckAPIKey(t.Context(), provider.Profile{}, "hch-v2-not-the-dev-key"); !errors.Is(err, provider.ErrAPIKeyRejected) {
		t.Errorf("another key at the exported check URL: %v, want it refused", err)
	}
	resp, err := http.PostForm(ep.TokenURL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {ep.ClientID}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "invalid_grant") {
		t.Errorf("the exported token endpoint answered %d %s, want an OAuth invalid_grant", resp.StatusCode, body)
	}

	// The consent page names the file in the temporary home.
	cresp, err := http.Post(base+"/api/memory/profiles/default/providers/honcho/connect", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	var rep provider.StatusReport
	json.NewDecoder(cresp.Body).Decode(&rep)
	cresp.Body.Close()
	if rep.Flow == nil {
		t.Fatalf("connect = %d, no flow", cresp.StatusCode)
	}
	_, _, page := get(t, rep.Flow.AuthorizeURL)
	if want := "<code>" + html.EscapeString(filepath.Join(home, "honcho.json")) + "</code>"; !strings.Contains(page, want) {
		t.Errorf("the consent page does not name %s:\n%s", want, page)
	}
}

// An event stream outlives the server's read and write timeouts: an event
// raised after both have passed still arrives.
func TestEventStreamOutlivesTimeouts(t *testing.T) {
	t.Parallel()
	memory := newMemory(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(hostRouter(memory, nil, nil), timeouts{readHeader: time.Second, read: 100 * time.Millisecond, write: 100 * time.Millisecond, idle: time.Second})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	base := "http://" + ln.Addr().String() + "/api/memory/profiles/default/providers/honcho"
	resp, err := http.Get(base + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	<-time.After(300 * time.Millisecond) // past both timeouts
	memory.Events().Publish(events.Event{Key: connid.ID{Profile: "default", Provider: "honcho"}, Kind: events.KindConnection, Connection: events.Refreshed})
	timeout := time.After(5 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the stream ended at the server's timeouts")
			}
			if l == `data: {"connection":"refreshed"}` {
				return
			}
		case <-timeout:
			t.Fatal("no event after the timeouts")
		}
	}
}

// newMemory is a memconnect router over the Honcho provider and an empty
// Hermes home, closed with the test.
func newMemory(t *testing.T) *memconnect.Router {
	t.Helper()
	reg, err := provider.NewRegistry(honcho.New())
	if err != nil {
		t.Fatal(err)
	}
	memory, err := memconnect.New(memconnect.Config{Registry: reg, Profiles: provider.HermesProfiles{Root: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { memory.Close() })
	return memory
}

// TestRunClientIDFlag: -client-id gives a provider a client registered
// beforehand, used instead of a dynamic registration; a name that matches
// no provider, or a value without an ID, is refused.
func TestRunClientIDFlag(t *testing.T) {
	t.Parallel()
	base, _ := server(t, "-dev", "-addr", "127.0.0.1:0", "-client-id", "devmemory=pre-registered")
	resp, err := http.Post(base+"/api/memory/profiles/default/providers/devmemory/connect", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(body), "client_id=pre-registered") {
		t.Errorf("connect = %d %s; want a flow with the client pre-registered", resp.StatusCode, body)
	}
	for _, bad := range []struct{ value, want string }{
		{"devmemory", "want NAME=ID"},
		{"devmemory= ", "want NAME=ID"},
		{"nope=x", `no provider "nope"`},
	} {
		var stderr bytes.Buffer
		err := run(t.Context(), []string{"-dev", "-addr", "127.0.0.1:0", "-client-id", bad.value}, io.Discard, &stderr)
		if err == nil || !strings.Contains(err.Error()+stderr.String(), bad.want) {
			t.Errorf("-client-id %s: %v %s, want an error with %q", bad.value, err, stderr.String(), bad.want)
		}
	}
}

// TestConnectSessionRoute: with -session-key, the host's own route mints a
// connect session (guarded by -session-token), which the API accepts for
// that profile only.
func TestConnectSessionRoute(t *testing.T) {
	t.Parallel()
	const token = "host-session-token-0123"
	base, _ := server(t, "-dev", "-addr", "127.0.0.1:0", "-session-token", token, "-session-key", strings.Repeat("k", 32))
	mint := func(auth, body string) (int, map[string]string) {
		req, _ := http.NewRequest("POST", base+"/admin/connect-sessions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if status, _ := mint("wrong", `{"profile":"default"}`); status != http.StatusUnauthorized {
		t.Errorf("mint without the session token = %d; want 401", status)
	}
	if status, _ := mint(token, `{"profile":"default","ttl":"forever"}`); status != http.StatusBadRequest {
		t.Errorf("mint with a bad ttl = %d; want 400", status)
	}
	if status, out := mint(token, `{"profile":"nosuchprofile"}`); status != http.StatusNotFound || !strings.Contains(out["message"], "nosuchprofile") {
		t.Errorf("mint for a profile that does not exist = %d %v; want 404 naming it", status, out)
	}
	// /metrics has the API's guards: the token, and the Host allow-list
	// (a page reached by DNS rebinding sends its own name).
	if status, _, _ := get(t, base+"/metrics"); status != http.StatusUnauthorized {
		t.Errorf("/metrics without the token = %d; want 401", status)
	}
	if status, _, _ := get(t, base+"/metrics", "Authorization", "Bearer "+token, "Host", "evil.example"); status != http.StatusForbidden {
		t.Errorf("/metrics with a foreign Host = %d; want 403", status)
	}
	if status, _, body := get(t, base+"/metrics", "Authorization", "Bearer "+token); status != 200 || !strings.Contains(body, "memconnect_") {
		t.Errorf("/metrics with the token = %d; want 200 with the metrics", status)
	}
	status, out := mint(token, `{"profile":"default","providers":["honcho"],"ttl":"15m"}`)
	if status != 200 || out["token"] == "" || out["expires_at"] == "" {
		t.Fatalf("mint = %d %v", status, out)
	}
	if status, _, body := get(t, base+"/api/memory/profiles/default/providers/honcho/status", "Authorization", "Bearer "+out["token"]); status != 200 {
		t.Errorf("status with the session = %d %s; want 200", status, body)
	}
	if status, _, body := get(t, base+"/api/memory/profiles/work/providers/honcho/status", "Authorization", "Bearer "+out["token"]); status != 403 {
		t.Errorf("another profile with the session = %d %s; want 403", status, body)
	}
	var stderr bytes.Buffer
	if err := run(t.Context(), []string{"-dev", "-addr", "127.0.0.1:0", "-session-key", strings.Repeat("k", 32)}, io.Discard, &stderr); err == nil || !strings.Contains(err.Error(), "-session-token") {
		t.Errorf("-session-key without -session-token: %v; want an error naming -session-token", err)
	}
}
