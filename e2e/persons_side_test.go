package e2e

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/internal/testsupport/oauthfake"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
	"github.com/memconnect/memconnect/provider/mcp"
)

// TestDesktopPersonsSide: the Connect page in Chromium offers the host's
// first provider first (Honcho, though another sorts before it); a
// provider that cannot be reached says so in one sentence; and a device
// sign-in shows its code and speaks of entering it, not of browser
// consent.
func TestDesktopPersonsSide(t *testing.T) {
	h := StartHydra(t)
	home := hermesHome(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close() // nothing listens there: as unreachable as the internet offline
	offline, err := mcp.New("aaa", "Offline memory", "http://"+gone+"/mcp")
	if err != nil {
		t.Fatal(err)
	}
	dev := oauthfake.NewMCPServer()
	t.Cleanup(dev.Close)
	devmem, err := mcp.New("devmemory", "Development memory", dev.URL)
	if err != nil {
		t.Fatal(err)
	}
	ds := startDesktop(t, h, home, true, func(c *memconnect.Config) {
		reg, err := provider.NewRegistry(honcho.New(hydraHonchoOptions(h)...), offline, devmem)
		if err != nil {
			t.Fatal(err)
		}
		c.Registry = reg
	})
	browser := NewBrowser(t)
	ctx, cancel := context.WithTimeout(browser, 90*time.Second)
	defer cancel()
	st := openPage(t, ctx, ds, "Honcho, offered first", idle)
	if st.Options != "honcho,aaa,devmemory" {
		t.Errorf("the providers offered: %s, want the host's order honcho,aaa,devmemory", st.Options)
	}

	choose := func(name string) {
		t.Helper()
		js := fmt.Sprintf(`(() => { const s = document.getElementById("provider-select"); s.value = %q; s.dispatchEvent(new Event("change")); return true; })()`, name)
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js)); err != nil {
			t.Fatal(err)
		}
		waitPage(t, ctx, name+" selected", func(st pageState) bool { return st.Provider == name && st.Connect == "Connect" })
	}

	choose("aaa")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("connect-button"))); err != nil {
		t.Fatal(err)
	}
	want := "Offline memory can't be reached from here (" + gone + ": the server refused the connection); check the internet connection, then try again."
	st = waitPage(t, ctx, "the unreachable provider's sentence", func(st pageState) bool { return st.Status == want })
	if st.StopWaiting {
		t.Error("the page waits for a sign-in that never started")
	}
	screenshot(t, ctx, "persons-side-offline.png")

	choose("devmemory")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("device-button"))); err != nil {
		t.Fatal(err)
	}
	st = waitPage(t, ctx, "the device flow's code", func(st pageState) bool { return st.StopWaiting && st.Code != "" })
	if st.Status != "Enter this code on the sign-in page. Waiting for it…" {
		t.Errorf("waiting text %q, want it to speak of entering the code", st.Status)
	}
	screenshot(t, ctx, "persons-side-device.png")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("stop-waiting"))); err != nil {
		t.Fatal(err)
	}
	waitPage(t, ctx, "stopped waiting", func(st pageState) bool { return !st.StopWaiting })
}
