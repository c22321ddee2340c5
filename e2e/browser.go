package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// ChromiumEnv names the environment variable that overrides the Chromium
// binary [NewBrowser] runs. When it is empty, NewBrowser uses
// /usr/bin/chromium, then `chromium` on PATH.
const ChromiumEnv = "MEMCONNECT_CHROMIUM"

// ScreenshotDir is where tests write screenshots, relative to the e2e module
// (the directory go test runs the package e2e tests in). It is gitignored.
const ScreenshotDir = "testdata/out"

// chromiumFlags are the command line flags of every browser NewBrowser starts:
// headless, no sandbox (the tests run as root in CI), and no traffic of its
// own (QUIC, component updates, sync, background requests), since the tests
// may reach only loopback addresses.
var chromiumFlags = []string{
	"headless",
	"no-sandbox",
	"disable-gpu",
	"disable-quic",
	"no-first-run",
	"disable-background-networking",
	"disable-component-update",
	"disable-sync",
}

// NewBrowser starts a headless Chromium with a fresh profile for the test and
// returns a chromedp context for one tab in it. The browser has started when
// NewBrowser returns; it stops, and its profile is removed, when the test
// ends. Derive per-action timeouts from the returned context, never replace
// it (see [chromedp.Run]).
//
// NewBrowser skips the test under -short and fails it when Chromium is
// missing (scripts/install-chromium.sh installs it) or does not start.
func NewBrowser(t testing.TB) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipping test that needs Chromium in -short mode")
	}
	path, err := chromiumPath()
	if err != nil {
		t.Fatalf("e2e: %v (run `bash scripts/install-chromium.sh`, or set %s)", err, ChromiumEnv)
	}
	dir := t.TempDir()
	logFile, err := os.Create(filepath.Join(dir, "chromium.log"))
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.WindowSize(1024, 768),
		chromedp.CombinedOutput(logFile),
	}
	for _, f := range chromiumFlags {
		opts = append(opts, chromedp.Flag(f, true))
	}
	// Cleanups run last-in first-out: the tab closes, then the allocator
	// waits for the browser process to exit, then the log is closed, and
	// only then does t.TempDir remove the profile.
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(func() {
		logFile.Close()
		if t.Failed() {
			t.Logf("e2e: tail of chromium.log:\n%s", readTail(logFile.Name()))
		}
	})
	t.Cleanup(allocCancel)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	// The first action starts the browser and opens the tab.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("e2e: start %s: %v", path, err)
	}
	return ctx
}

// chromiumPath finds the Chromium binary: $MEMCONNECT_CHROMIUM,
// /usr/bin/chromium, or `chromium` on PATH.
func chromiumPath() (string, error) {
	if p := os.Getenv(ChromiumEnv); p != "" {
		if err := checkExecutable(p); err != nil {
			return "", errors.New(ChromiumEnv + "=" + p + ": " + err.Error())
		}
		return p, nil
	}
	if checkExecutable("/usr/bin/chromium") == nil {
		return "/usr/bin/chromium", nil
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p, nil
	}
	return "", errors.New("chromium not found at /usr/bin/chromium or on PATH")
}

// SaveScreenshot writes a PNG or JPEG screenshot to [ScreenshotDir]/name and
// returns its path.
func SaveScreenshot(t testing.TB, name string, img []byte) string {
	t.Helper()
	if err := os.MkdirAll(ScreenshotDir, 0o755); err != nil {
		t.Fatalf("e2e: %v", err)
	}
	p := filepath.Join(ScreenshotDir, name)
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatalf("e2e: %v", err)
	}
	return p
}
