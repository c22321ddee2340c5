package e2e

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

// TestDesktopConnectSession: the Connect page opened with a connect
// session for the default profile (in the URL fragment, on a server that
// requires its session token) takes it out of the address bar, connects
// that profile with it, and the session is refused for another profile.
func TestDesktopConnectSession(t *testing.T) {
	h := StartHydra(t)
	home := hermesHome(t)
	key := bytes.Repeat([]byte("s"), 32)
	withSessions := func(c *memconnect.Config) { c.SessionToken, c.SessionKeys = "host-only-token", [][]byte{key} }
	ds := startDesktop(t, h, home, true, withSessions)
	h.CreatePublicClient(t, e2eClientID, loopbackRedirect, ds.CallbackURL)

	// The host's backend mints it: any router given the same keys can.
	reg, err := provider.NewRegistry(honcho.New(hydraHonchoOptions(h)...))
	if err != nil {
		t.Fatal(err)
	}
	backend, err := memconnect.New(memconnect.Config{Registry: reg, Profiles: provider.HermesProfiles{Root: home}, SessionKeys: [][]byte{key}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backend.Close() })
	token, _, err := backend.MintConnectSession("default", []string{honcho.Name}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	browser := NewBrowser(t)
	ctx, cancel := context.WithTimeout(browser, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(ds.URL+"/#session="+token+"&profile=default"),
		chromedp.WaitVisible(chromedp.ID("provider-select")),
	); err != nil {
		t.Fatal(err)
	}
	waitPage(t, ctx, "the Connect link, with the session", idle)
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || loc != ds.URL+"/" {
		t.Errorf("address bar = %q (%v); want the session gone from it", loc, err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("connect-button"))); err != nil {
		t.Fatalf("click Connect: %v", err)
	}
	waitPage(t, ctx, "connected with the session", connected)
	screenshot(t, ctx, "session-1-connected.png")

	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("/api/memory/profiles/work/providers/honcho/status",
		{headers: {Authorization: "Bearer `+token+`"}}).then((r) => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil || status != 403 {
		t.Errorf("another profile with the session = %d (%v); want 403", status, err)
	}
}
