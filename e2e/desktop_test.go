package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/examples/desktop"
	"github.com/memconnect/memconnect/oauth/authserver"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

// pageTimeout bounds each wait for the desktop page to reach a state. The
// page polls the status every 1.5 s, so a state change shows within ~2 s.
const pageTimeout = 20 * time.Second

// desktopServer is a host web server as examples/server builds it: the
// memconnect router mounted at /api/memory and the desktop Connect page at
// /, on a loopback port.
type desktopServer struct {
	URL         string // http://127.0.0.1:<port>
	CallbackURL string // the router's callback route for the default profile; "" in loopback mode
	Router      *memconnect.Router
	statusGets  atomic.Int32
}

// startDesktop starts a desktopServer over the Hermes home with the Honcho
// provider pointing at h. With callback true the router knows its own URL,
// so browser flows use its callback route as redirect URI; otherwise they
// use a loopback listener on an OS-assigned port. The server and its flow
// manager stop when the test ends.

// successMessage is what the page of a connected flow says.
const successMessage = "Connected — you can close this window and return to the app."

func startDesktop(t *testing.T, h *Hydra, home string, callback bool, opts ...func(*memconnect.Config)) *desktopServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	reg, err := provider.NewRegistry(honcho.New(hydraHonchoOptions(h)...))
	if err != nil {
		t.Fatal(err)
	}
	cfg := memconnect.Config{
		Registry:     reg,
		Profiles:     provider.HermesProfiles{Root: home},
		LoopbackAddr: "127.0.0.1:0",
		HTTPClient:   &http.Client{Timeout: 10 * time.Second},
	}
	ds := &desktopServer{URL: base}
	if callback {
		cfg.CallbackBaseURL = base + "/api/memory"
		ds.CallbackURL = cfg.CallbackBaseURL + "/profiles/default/providers/honcho/callback"
	}
	for _, o := range opts {
		o(&cfg)
	}
	router, err := memconnect.New(cfg)
	if err != nil {
		t.Fatalf("memconnect.New: %v", err)
	}
	ds.Router = router
	t.Cleanup(func() { router.Close() })
	mux := http.NewServeMux()
	mux.Handle("/api/memory/", http.StripPrefix("/api/memory", router))
	mux.Handle("/", http.FileServerFS(desktop.FS()))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/status") {
			ds.statusGets.Add(1)
		}
		mux.ServeHTTP(w, r)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return ds
}

// Status fetches the status body of the default profile's Honcho connection
// from the API, as the page does.
func (ds *desktopServer) Status(t *testing.T) provider.StatusReport {
	t.Helper()
	resp, err := http.Get(ds.URL + "/api/memory/profiles/default/providers/honcho/status")
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status: %d %v: %s", resp.StatusCode, err, b)
	}
	var rep provider.StatusReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("status: %v: %s", err, b)
	}
	return rep
}

// pageState is what a person sees of the Connect link, read from the DOM.
type pageState struct {
	Provider     string `json:"provider"`     // #provider-select value
	Description  string `json:"description"`  // #provider-text
	Connect      string `json:"connect"`      // #connect-button label; "" when hidden
	State        string `json:"state"`        // #connect-state; "" when hidden
	Tone         string `json:"tone"`         // #connect-state's data-tone: ok (green), warn, info
	Options      string `json:"options"`      // #provider-select's provider names, in order, comma-separated
	Disconnect   bool   `json:"disconnect"`   // #disconnect-button shown
	Status       string `json:"status"`       // #connect-status, the live region
	StopWaiting  bool   `json:"stopWaiting"`  // #stop-waiting shown
	Retry        bool   `json:"retry"`        // #retry-button shown
	AuthorizeURL string `json:"authorizeURL"` // #authorize-link href when the fallback is shown
	Connected    int    `json:"connected"`    // memconnect:connected events seen (see countConnected)
	SelectBox    string `json:"selectBox"`    // #provider-select's rendered width x height
	Code         string `json:"code"`         // #device-code when the device box is shown
	Profile      string `json:"profile"`      // #profile-line
	Detail       string `json:"detail"`       // #state-detail; "" when hidden
}

const readPageState = `(() => {
  const el = (id) => document.getElementById(id);
  const shown = (id) => !el(id).hidden;
  return {
    provider: el("provider-select").value,
    description: el("provider-text").textContent,
    connect: shown("connect-button") ? el("connect-button").textContent : "",
    state: shown("connect-state") ? el("connect-state").textContent : "",
    tone: el("connect-state").getAttribute("data-tone") || "",
    options: Array.from(el("provider-select").options).map((o) => o.value).filter((v) => v).join(","),
    disconnect: shown("disconnect-button"),
    status: el("connect-status").textContent,
    stopWaiting: shown("stop-waiting"),
    retry: shown("retry-button"),
    authorizeURL: shown("authorize-fallback") ? (el("authorize-link").getAttribute("href") || "") : "",
    connected: window.__e2eConnected || 0,
    selectBox: (() => { const r = el("provider-select").getBoundingClientRect(); return r.width + "x" + r.height; })(),
    code: shown("device-box") ? el("device-code").textContent : "",
    profile: el("profile-line").textContent,
    detail: shown("state-detail") ? el("state-detail").textContent : "",
  };
})()`

// countConnected makes the page count its memconnect:connected events.
const countConnected = `document.addEventListener("memconnect:connected", () => { window.__e2eConnected = (window.__e2eConnected || 0) + 1; }); true`

// waitPage polls the page until ok accepts its state, and fails the test
// with the last state seen when pageTimeout passes first.
func waitPage(t *testing.T, ctx context.Context, what string, ok func(pageState) bool) pageState {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, pageTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last pageState
	var lastErr error
	for {
		st, err := chromedp.Run(ctx, chromedp.Evaluate[pageState](readPageState))
		if err == nil {
			last, lastErr = st, nil
			if ok(st) {
				return st
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("page: waiting for %s: %v; last state %+v (error %v)", what, ctx.Err(), last, lastErr)
		case <-tick.C:
		}
	}
}

// screenshot saves a screenshot of the tab under testdata/out.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	t.Logf("screenshot: %s", SaveScreenshot(t, name, png))
}

// openPage opens the desktop page and waits for the link of the status it
// loads on start.
func openPage(t *testing.T, ctx context.Context, ds *desktopServer, what string, ok func(pageState) bool) pageState {
	t.Helper()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(ds.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("provider-select")),
	); err != nil {
		t.Fatalf("open %s: %v", ds.URL, err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](countConnected)); err != nil {
		t.Fatal(err)
	}
	return waitPage(t, ctx, what, ok)
}

// idle is the link of a provider that is not connected.
func idle(st pageState) bool {
	return st.Provider == honcho.Name && st.Connect == "Connect" && st.State == "Sign-in needed" &&
		!st.Disconnect && !st.StopWaiting && !st.Retry
}

// connected is the link of a provider connected with OAuth.
func connected(st pageState) bool {
	return st.Provider == honcho.Name && st.State == "Connected · renews automatically" && st.Connect == "Reconnect" &&
		st.Disconnect && !st.StopWaiting && st.Tone == "ok"
}

// waiting is the link while a sign-in is pending in the browser.
func waiting(st pageState) bool {
	return st.StopWaiting && st.Connect == "" && strings.HasPrefix(st.Status, "Waiting for browser consent")
}

// TestDesktopConnectFlow: on the desktop page, Connect opens Hydra's
// authorization page in a new window; the page waits; once Hydra's login and
// consent are done in that window, the router's callback stores the grant,
// the window says so, and the page shows "connected". The status API then
// reports OAuth with Hydra's client id, and the stored token is live at
// Hydra.
func TestDesktopConnectFlow(t *testing.T) {
	h := StartHydra(t)
	home := hermesHome(t)
	ds := startDesktop(t, h, home, true)
	h.CreatePublicClient(t, e2eClientID, loopbackRedirect, ds.CallbackURL)
	browser := NewBrowser(t)
	ctx, cancel := context.WithTimeout(browser, 90*time.Second)
	defer cancel()

	st := openPage(t, ctx, ds, "the Connect link", idle)
	if st.Description != "Store your assistant's memory in Honcho." {
		t.Errorf("description = %q", st.Description)
	}
	screenshot(t, ctx, "desktop-1-connect.png")
	// Record what the callback page hands off on the BroadcastChannel.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](
		`new BroadcastChannel("memconnect").onmessage = (e) => { window.__e2eHandoff = e.data && e.data.outcome; }; true`)); err != nil {
		t.Fatal(err)
	}

	// Keep the new window at Hydra's login step until the waiting state
	// has been seen, so that it is seen for certain.
	arrived, release := h.HoldLogin(t)
	// The events of the connection, with when each was published: each
	// one makes the page read the status once, which is no poll.
	sub, err := ds.Router.Events().Subscribe(connid.ID{Profile: "default", Provider: honcho.Name}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var published sync.Map // time.Time -> struct{}
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-sub.Events():
				published.Store(time.Now(), struct{}{})
			case <-stop:
				return
			}
		}
	}()
	defer func() { close(stop); sub.Close() }()
	newWindow := chromedp.WaitNewTarget(ctx, func(info *target.Info) bool { return info.Type == "page" })
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("connect-button"))); err != nil {
		t.Fatalf("click Connect: %v", err)
	}
	idleBox := st.SelectBox
	st = waitPage(t, ctx, "the waiting state", waiting)
	if st.SelectBox != idleBox {
		t.Errorf("the provider dropdown is %s while waiting, %s before: it must keep its size", st.SelectBox, idleBox)
	}
	var windowID target.ID
	select {
	case windowID = <-newWindow:
	case <-ctx.Done():
		t.Fatal("Connect opened no new window")
	}
	select {
	case <-arrived:
	case <-ctx.Done():
		t.Fatal("the new window never reached Hydra's login step")
	}
	// The page follows the event stream: it reads no status while it
	// waits, through what would be two polls.
	before, from := ds.statusGets.Load(), time.Now()
	<-time.After(3500 * time.Millisecond)
	caused := 0 // reads an event may have asked for: one published in the window, or just before it
	published.Range(func(k, _ any) bool {
		if k.(time.Time).After(from.Add(-time.Second)) {
			caused++
		}
		return true
	})
	if n := int(ds.statusGets.Load() - before); n > caused {
		t.Errorf("the page read the status %d times while waiting, %d of them for an event; want no poll with the event stream open", n, caused)
	}
	rep := ds.Status(t)
	if rep.Flow == nil || rep.Flow.State != flow.StatePending || rep.Flow.Method != flow.MethodBrowser {
		t.Fatalf("status while waiting: flow %+v, want a pending browser flow", rep.Flow)
	}
	if rep.Flow.RedirectURI != ds.CallbackURL {
		t.Errorf("redirect_uri = %q, want the router's callback %q", rep.Flow.RedirectURI, ds.CallbackURL)
	}
	if !strings.HasPrefix(rep.Flow.AuthorizeURL, h.AuthURL+"?") {
		t.Errorf("authorize_url = %q, want Hydra's %s", rep.Flow.AuthorizeURL, h.AuthURL)
	}
	if st.AuthorizeURL != rep.Flow.AuthorizeURL {
		t.Errorf("fallback link = %q, want the authorize_url", st.AuthorizeURL)
	}
	screenshot(t, ctx, "desktop-2-waiting.png")

	// Consent happens in the new window; it ends on the router's callback.
	release()
	win, cancelWin := chromedp.NewContext(ctx, chromedp.WithTargetID(windowID))
	defer cancelWin()
	pollCtx, cancelPoll := context.WithTimeout(win, pageTimeout)
	defer cancelPoll()
	msg, err := chromedp.Run(pollCtx, chromedp.Poll[string](
		`location.pathname.endsWith("/callback") && document.readyState === "complete" && document.body ? document.body.innerText : ""`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(pageTimeout)))
	if err != nil {
		loc, _ := chromedp.Run(win, chromedp.Location())
		t.Fatalf("the new window did not reach the callback page: %v (at %s)", err, redactURL(loc))
	}
	if !strings.Contains(msg, successMessage) {
		t.Errorf("callback page says %q, want %q", msg, successMessage)
	}
	loc, err := chromedp.Run(win, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if u, err := url.Parse(loc); err != nil || u.Scheme+"://"+u.Host+u.Path != ds.CallbackURL {
		t.Errorf("the window ended at %s, want the router's callback", redactURL(loc))
	}
	screenshot(t, win, "desktop-3-callback.png")

	// The page learns it from the event stream or the callback page's
	// message: well before its 15 s safety poll.
	soon, cancelSoon := context.WithTimeout(ctx, 10*time.Second)
	defer cancelSoon()
	st = waitPage(t, soon, `"connected" without waiting for a poll`, connected)
	if st.Status != "Connected to Honcho." {
		t.Errorf("live region = %q, want %q", st.Status, "Connected to Honcho.")
	}
	if st.Connected != 1 {
		t.Errorf("memconnect:connected fired %d times, want once", st.Connected)
	}
	if st.SelectBox != idleBox {
		t.Errorf("the provider dropdown is %s when connected, %s before: it must keep its size", st.SelectBox, idleBox)
	}
	screenshot(t, ctx, "desktop-4-connected.png")
	// The callback page's script ran under its policy and told the page.
	if got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.__e2eHandoff || ""`)); err != nil || got != "connected" {
		t.Errorf("handoff on the BroadcastChannel = %q (%v), want \"connected\"", got, err)
	}
	if shown, err := chromedp.Run(win, chromedp.Evaluate[bool](`!document.getElementById("close").hidden`)); err != nil || !shown {
		t.Errorf("the callback page offers no Close button (%v)", err)
	}

	rep = ds.Status(t)
	if !rep.Connected || rep.Auth != provider.AuthOAuth || rep.ReauthRequired {
		t.Errorf("status after consent: connected=%v auth=%q reauth=%v, want connected oauth", rep.Connected, rep.Auth, rep.ReauthRequired)
	}
	if rep.Token == nil || rep.Token.ClientID != e2eClientID || !hasScopes(rep.Token.Scope, "offline_access", "write") {
		t.Errorf("status token = %+v, want client %q with offline_access write", rep.Token, e2eClientID)
	}
	if rep.Flow == nil || rep.Flow.State != flow.StateConnected {
		t.Errorf("status flow = %+v, want connected", rep.Flow)
	}
	g := readGrant(t, configPath(home), honcho.DefaultHost)
	assertActive(t, h, "stored access token", g.AccessToken, true)
	assertActive(t, h, "stored refresh token", g.RefreshToken, true)

	// A reload shows the same: the state comes from the server.
	openPage(t, ctx, ds, `"connected" after a reload`, connected)
}

// TestDesktopStopWaitingFreesPort: with a loopback redirect, Connect starts
// a one-shot listener; "Stop waiting" cancels the flow, which closes the
// listener, so its port is free again and the page offers Connect.
func TestDesktopStopWaitingFreesPort(t *testing.T) {
	h := StartHydra(t)
	home := hermesHome(t)
	ds := startDesktop(t, h, home, false)
	h.CreatePublicClient(t, e2eClientID, loopbackRedirect)
	browser := NewBrowser(t)
	ctx, cancel := context.WithTimeout(browser, 90*time.Second)
	defer cancel()

	openPage(t, ctx, ds, "the Connect link", idle)
	// The new window waits at Hydra's login step, so nothing reaches the
	// listener: only Stop waiting can end the flow.
	arrived, _ := h.HoldLogin(t)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("connect-button"))); err != nil {
		t.Fatalf("click Connect: %v", err)
	}
	waitPage(t, ctx, "the waiting state", waiting)
	select {
	case <-arrived:
	case <-ctx.Done():
		t.Fatal("the new window never reached Hydra's login step")
	}
	rep := ds.Status(t)
	if rep.Flow == nil || rep.Flow.State != flow.StatePending {
		t.Fatalf("status while waiting: flow %+v, want pending", rep.Flow)
	}
	redirect, err := url.Parse(rep.Flow.RedirectURI)
	if err != nil || redirect.Hostname() != "127.0.0.1" || redirect.Path != "/callback" {
		t.Fatalf("redirect_uri = %q, want the loopback listener's", rep.Flow.RedirectURI)
	}
	addr := redirect.Host
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		t.Fatalf("%s is free while the flow is pending, want the loopback listener on it", addr)
	}
	screenshot(t, ctx, "cancel-1-waiting.png")

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("stop-waiting"))); err != nil {
		t.Fatalf("click Stop waiting: %v", err)
	}
	waitPage(t, ctx, "the Connect link after Stop waiting", idle)
	// The page shows Connect before its cancel request is answered; the
	// flow leaves pending when the server has cancelled it, and its
	// listener is closed by then.
	wctx, cancel := context.WithTimeout(ctx, pageTimeout)
	defer cancel()
	if f, err := ds.Router.Connector().Wait(wctx, "default", "honcho"); f.State == flow.StatePending {
		t.Fatalf("the flow is still pending %v after Stop waiting (%v)", pageTimeout, err)
	}
	rep = ds.Status(t)
	if ln, err := net.Listen("tcp", addr); err != nil {
		t.Fatalf("after Stop waiting the loopback port is still taken: %v", err)
	} else {
		ln.Close()
	}
	if rep.Connected {
		t.Errorf("status after Stop waiting: connected, want not")
	}
	screenshot(t, ctx, "cancel-2-stopped.png")
}

// TestDesktopDisconnect: a profile connected to Hydra shows "connected";
// the page's Disconnect revokes the grant at Hydra (introspection says
// inactive), removes it from honcho.json, and the page offers Connect again.
func TestDesktopDisconnect(t *testing.T) {
	h := StartHydra(t)
	home := hermesHome(t)
	ds := startDesktop(t, h, home, true)
	h.CreatePublicClient(t, e2eClientID, loopbackRedirect, ds.CallbackURL)
	g := connectWithConnector(t, newSignInConnector(t, h, home), home)
	assertActive(t, h, "refresh token", g.RefreshToken, true)
	browser := NewBrowser(t)
	ctx, cancel := context.WithTimeout(browser, 90*time.Second)
	defer cancel()

	openPage(t, ctx, ds, `"connected"`, connected)
	screenshot(t, ctx, "disconnect-1-connected.png")

	disconnectOnPage(t, ctx)
	st := waitPage(t, ctx, "Connect after Disconnect", func(st pageState) bool {
		return idle(st) && st.Status == "Disconnected from Honcho."
	})
	if st.Connected != 0 {
		t.Errorf("memconnect:connected fired %d times, want none", st.Connected)
	}
	screenshot(t, ctx, "disconnect-2-disconnected.png")

	assertActive(t, h, "refresh token after Disconnect", g.RefreshToken, false)
	assertActive(t, h, "access token after Disconnect", g.AccessToken, false)
	if _, err := readGrantFile(configPath(home), honcho.DefaultHost); err == nil {
		t.Error("the grant is still in honcho.json")
	}
	if rep := ds.Status(t); rep.Connected || rep.Auth != "" {
		t.Errorf("status after Disconnect: connected=%v auth=%q, want not connected", rep.Connected, rep.Auth)
	}
}

// redactURL drops the query of a URL for messages: a callback URL holds the
// authorization code.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Sprintf("<%d chars>", len(raw))
	}
	u.RawQuery = ""
	return u.String()
}

// TestDesktopMessages: the page a person trusts says what is wrong and what
// to do. Opened without the app's session token it says so (and keeps
// saying it) instead of quietly offering only Built-in; with the token, a
// grant the server rejected shows "Sign in again".
func TestDesktopMessages(t *testing.T) {
	h := StartHydra(t)
	home := hermesHome(t)
	ds := startDesktop(t, h, home, true, func(c *memconnect.Config) { c.SessionToken = "s3cret-session" })
	h.CreatePublicClient(t, e2eClientID, loopbackRedirect, ds.CallbackURL)
	conn := newSignInConnector(t, h, home)
	g := connectWithConnector(t, conn, home)
	browser := NewBrowser(t)
	ctx, cancel := context.WithTimeout(browser, 90*time.Second)
	defer cancel()

	if err := chromedp.Do(ctx, chromedp.Navigate(ds.URL+"/"), chromedp.WaitVisible(chromedp.ID("provider-select"))); err != nil {
		t.Fatal(err)
	}
	st := waitPage(t, ctx, "the session-token message", func(st pageState) bool {
		return strings.Contains(st.Status, "session token") && strings.Contains(st.Status, "Open Memory settings from the app again")
	})
	if strings.Contains(st.Status, "Bearer") {
		t.Errorf("the message speaks to a developer: %q", st.Status)
	}
	screenshot(t, ctx, "messages-1-no-session-token.png")

	// The server rejects the grant: revoked at Hydra, then a refresh.
	if err := authserver.Revoke(ctx, http.DefaultClient, h.RevokeURL, e2eClientID, g.RefreshToken, "refresh_token"); err != nil {
		t.Fatal(err)
	}
	ts, err := conn.TokenSource("default", honcho.Name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.ForceRefresh(ctx, g.AccessToken); err == nil {
		t.Fatal("a refresh with a revoked grant succeeded")
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(ds.URL+"/?token=s3cret-session"), chromedp.WaitVisible(chromedp.ID("provider-select"))); err != nil {
		t.Fatal(err)
	}
	waitPage(t, ctx, `"Sign in again"`, func(st pageState) bool {
		return st.Connect == "Sign in again" && st.State == "Sign-in expired" && st.Status == ""
	})
	screenshot(t, ctx, "messages-2-sign-in-again.png")
}

// TestDesktopAPIKey: "Use an API key" opens the key field; the key typed
// there is stored as the host block's apiKey (no oauth block), the page
// says so without showing it, and Disconnect removes it.
func TestDesktopAPIKey(t *testing.T) {
	h := StartHydra(t)
	home := hermesHome(t)
	ds := startDesktop(t, h, home, true)
	browser := NewBrowser(t)
	ctx, cancel := context.WithTimeout(browser, 90*time.Second)
	defer cancel()
	openPage(t, ctx, ds, `"Connect"`, idle)

	const key = "hch-v2-e2e-key-0123456789"
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("key-button")),
		chromedp.WaitVisible(chromedp.ID("key-input")),
		chromedp.SendKeys(chromedp.ID("key-input"), key),
	); err != nil {
		t.Fatalf("type the key: %v", err)
	}
	screenshot(t, ctx, "apikey-1-field.png")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("key-save"))); err != nil {
		t.Fatalf("click Save key: %v", err)
	}
	st := waitPage(t, ctx, "connected with an API key, in the same green as OAuth", func(st pageState) bool {
		return st.State == "Connected with an API key" && st.Status == "Connected to Honcho with an API key." && st.Disconnect && st.Tone == "ok"
	})
	if st.Connected != 1 {
		t.Errorf("memconnect:connected fired %d times, want 1", st.Connected)
	}
	html, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML + document.getElementById("key-input").value`))
	if err != nil || strings.Contains(html, key) {
		t.Errorf("the page still holds the key (%v)", err)
	}
	screenshot(t, ctx, "apikey-2-connected.png")
	if rep := ds.Status(t); !rep.Connected || rep.Auth != "apikey" {
		t.Errorf("status: connected=%v auth=%q, want apikey", rep.Connected, rep.Auth)
	}
	b, err := os.ReadFile(configPath(home))
	if err != nil || !strings.Contains(string(b), `"apiKey": "`+key+`"`) || strings.Contains(string(b), `"oauth"`) {
		t.Errorf("honcho.json = %s (%v), want the key and no oauth block", b, err)
	}

	disconnectOnPage(t, ctx)
	waitPage(t, ctx, "Connect after Disconnect", func(st pageState) bool {
		return idle(st) && st.Status == "Disconnected from Honcho."
	})
	if b, _ := os.ReadFile(configPath(home)); strings.Contains(string(b), key) {
		t.Errorf("the key is still in honcho.json: %s", b)
	}
}

// disconnectOnPage presses Disconnect, checks that the page asks before
// acting, and confirms.
func disconnectOnPage(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("disconnect-button")), chromedp.WaitVisible(chromedp.ID("disconnect-yes"))); err != nil {
		t.Fatalf("click Disconnect: %v", err)
	}
	question, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("disconnect-question")))
	if err != nil {
		t.Fatalf("read the question: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("disconnect-yes"))); err != nil {
		t.Fatalf("confirm Disconnect: %v", err)
	}
	if !strings.HasPrefix(question, "Disconnect from ") {
		t.Errorf("the page asked %q before disconnecting", question)
	}
}
