package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestChromiumScreenshot proves the browser harness: headless Chromium loads
// a page from a loopback server, reads its text, and takes a screenshot.
func TestChromiumScreenshot(t *testing.T) {
	const heading = "memconnect e2e: Chromium works"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><title>memconnect e2e</title>
<body style="font-family: sans-serif; background: #f4f1ea">
<h1 id="hello">`+heading+`</h1><p>Served by httptest on 127.0.0.1.</p></body>`)
	}))
	t.Cleanup(srv.Close)

	browser := NewBrowser(t)
	ctx, cancel := context.WithTimeout(browser, 30*time.Second)
	defer cancel()

	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL),
		chromedp.WaitVisible(chromedp.ID("hello")),
	); err != nil {
		t.Fatalf("load page: %v", err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatalf("title: %v", err)
	}
	if title != "memconnect e2e" {
		t.Errorf("title = %q, want %q", title, "memconnect e2e")
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("hello")))
	if err != nil {
		t.Fatalf("text: %v", err)
	}
	if text != heading {
		t.Errorf("heading = %q, want %q", text, heading)
	}

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot is not a PNG (%d bytes)", len(png))
	}
	t.Logf("screenshot: %s", SaveScreenshot(t, "chromium-smoke.png", png))
}
