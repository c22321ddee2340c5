package desktop

import (
	"context"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func readAsset(t *testing.T, name string) string {
	t.Helper()
	b, err := fs.ReadFile(FS(), name)
	if err != nil {
		t.Fatalf("read %s from FS: %v", name, err)
	}
	if len(b) == 0 {
		t.Fatalf("%s is empty", name)
	}
	return string(b)
}

func TestFSHoldsTheAssets(t *testing.T) {
	for _, name := range []string{"index.html", "app.js", "style.css", "favicon.svg"} {
		readAsset(t, name)
	}
	if err := fs.WalkDir(FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") {
			t.Errorf("FS serves Go source %s", path)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestIndexReferencesAssets(t *testing.T) {
	html := readAsset(t, "index.html")
	for _, want := range []string{`src="app.js"`, `href="style.css"`, `rel="icon" href="favicon.svg"`} {
		if !strings.Contains(html, want) {
			t.Errorf("index.html does not contain %s", want)
		}
	}
}

func TestServedByFileServer(t *testing.T) {
	srv := httptest.NewServer(http.FileServerFS(FS()))
	defer srv.Close()
	for path, ctype := range map[string]string{"/": "text/html", "/app.js": "javascript", "/style.css": "text/css"} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("Content-Type"), ctype) {
			t.Errorf("GET %s: %d %q, want 200 %s", path, res.StatusCode, res.Header.Get("Content-Type"), ctype)
		}
	}
}

// The ids and labels browser tests and the host app rely on.
func TestDOMContract(t *testing.T) {
	html := readAsset(t, "index.html")
	js := readAsset(t, "app.js")
	for _, id := range []string{
		"provider-select", "provider-description", "connect-button", "connect-state",
		"connect-status", "stop-waiting", "retry-button", "disconnect-button", "authorize-link",
		"disconnect-confirm", "disconnect-yes", "disconnect-no", "profile-line", "state-detail", "status-detail",
		"device-box", "device-code", "copy-code", "code-countdown",
	} {
		inHTML := strings.Contains(html, `id="`+id+`"`)
		inJS := regexp.MustCompile(`\.id\s*=\s*["']` + regexp.QuoteMeta(id) + `["']`).MatchString(js)
		if !inHTML && !inJS {
			t.Errorf("id %q is neither in index.html nor created by app.js", id)
		}
	}
	for _, want := range []string{
		`<h1 id="memory-heading">Memory</h1>`,
		`<label class="setting-label" for="provider-select">Memory provider</label>`,
		`<option value="">Built-in (no provider)</option>`,
		`<button id="connect-button" type="button"`,
		`<button id="stop-waiting" type="button"`,
		`<button id="retry-button" type="button"`,
		`<button id="disconnect-button" type="button"`,
		`<button id="device-button" type="button"`,
		`<p id="connect-status" role="status" aria-live="polite">`,
		`<body data-api="/api/memory" data-profile="default">`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
	// The link lives on the description line, never beside the select.
	desc := regexp.MustCompile(`(?s)<p id="provider-description"[^>]*>(.*?)</p>`).FindStringSubmatch(html)
	if desc == nil || !strings.Contains(desc[1], `id="connect-button"`) || !strings.Contains(desc[1], `id="connect-state"`) {
		t.Error("connect-button and connect-state must sit inside #provider-description")
	}
	for _, want := range []string{
		`"Connect"`, `"Reconnect"`, "Sign in to ${name} instead", " · renews automatically", `"Connected with an API key"`, `"Sign-in expired"`,
		`"Sign-in needed"`, `"Sign in again"`, `"Use a code instead"`,
		`"Waiting for browser consent…"`, `"Still waiting? The sign-in window may have been closed."`,
		`"memconnect:connected"`, `"hermes-desktop"`, `"noopener,popup,width=520,height=720"`, `new BroadcastChannel("memconnect")`, `e.origin === window.location.origin`, "Authorization = `Bearer ${", `"/api/memory"`,
	} {
		if !strings.Contains(js, want) {
			t.Errorf("app.js lacks %s", want)
		}
	}
	css := readAsset(t, "style.css")
	for _, want := range []string{"#provider-select", "width: var(--select-width)", ":focus-visible", "prefers-reduced-motion"} {
		if !strings.Contains(css, want) {
			t.Errorf("style.css lacks %s", want)
		}
	}
}

// Server data must never be parsed as HTML.
func TestNoHTMLInjectionSinks(t *testing.T) {
	js := readAsset(t, "app.js")
	assign := regexp.MustCompile(`\.(innerHTML|outerHTML)\s*\+?=\s*([^;\n]*)`)
	for _, m := range assign.FindAllStringSubmatch(js, -1) {
		if rhs := strings.TrimSpace(m[2]); rhs != `""` && rhs != `''` {
			t.Errorf("app.js assigns dynamic data to %s: %s", m[1], m[0])
		}
	}
	for _, sink := range []string{"insertAdjacentHTML", "document.write", "eval(", "new Function", "createContextualFragment", "DOMParser"} {
		if strings.Contains(js, sink) {
			t.Errorf("app.js uses %s", sink)
		}
	}
	html := readAsset(t, "index.html")
	if regexp.MustCompile(`(?i)\son\w+=`).MatchString(html) {
		t.Error("index.html has an inline event handler")
	}
}

func nodePath(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH")
	}
	return node
}

func TestAppJSParses(t *testing.T) {
	t.Parallel()
	node := nodePath(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "app.js")
	if err := os.WriteFile(path, []byte(readAsset(t, "app.js")), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(node, "--check", path).CombinedOutput(); err != nil {
		t.Fatalf("node --check app.js: %v\n%s", err, out)
	}
}

// TestBehaviour runs app.js against a fake DOM, a fake API and a virtual clock
// (testdata/harness.js): labels, polling, give-up, error clearing, the
// once-per-flow event, cancel and disconnect.
func TestBehaviour(t *testing.T) {
	t.Parallel()
	node := nodePath(t)
	dir := t.TempDir()
	for _, name := range []string{"app.js", "index.html"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(readAsset(t, name)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	harness, err := filepath.Abs(filepath.Join("testdata", "harness.js"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, harness, filepath.Join(dir, "app.js"), filepath.Join(dir, "index.html"))
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("harness failed: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
