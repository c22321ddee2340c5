package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/memconnect/memconnect/examples/desktop"
)

// pageAPI is a stand-in for the memconnect API behind the Connect page: it
// answers with the status a test sets, so that each state of the page can
// be shown in Chromium without a sign-in to reach it.
type pageAPI struct {
	*httptest.Server
	mu     sync.Mutex
	status map[string]any
}

func newPageAPI(t *testing.T) *pageAPI {
	t.Helper()
	api := &pageAPI{}
	mux := http.NewServeMux()
	const base = "/api/memory/profiles/default/providers/honcho/"
	reply := func(w http.ResponseWriter, code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /api/memory/providers", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, map[string]any{"providers": []map[string]any{
			{"name": "honcho", "display_name": "Honcho", "auth_methods": []string{"browser", "device", "apikey"}},
		}})
	})
	mux.HandleFunc("GET "+base+"status", func(w http.ResponseWriter, r *http.Request) {
		api.mu.Lock()
		defer api.mu.Unlock()
		reply(w, 200, api.status)
	})
	mux.HandleFunc("POST "+base+"connect", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Method string }
		json.NewDecoder(r.Body).Decode(&body)
		flow := map[string]any{"id": "f1", "state": "pending", "method": "browser", "detail": "Waiting for browser consent",
			"authorize_url": api.URL + "/authorize", "redirect_uri": api.URL + "/callback",
			"expires_at": time.Now().Add(10 * time.Minute).UTC().Format(time.RFC3339)}
		if body.Method == "device" {
			flow["method"], flow["user_code"], flow["verification_uri"] = "device", "WDJB-MJHT", api.URL+"/device"
		}
		api.mu.Lock()
		defer api.mu.Unlock()
		api.status["flow"] = flow
		reply(w, 202, api.status)
	})
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "sign-in page") })
	mux.Handle("/", http.FileServerFS(desktop.FS()))
	api.Server = httptest.NewServer(mux)
	t.Cleanup(api.Close)
	return api
}

// set makes the status the page reads next: a status body with fields
// replaced.
func (api *pageAPI) set(fields map[string]any) {
	api.mu.Lock()
	defer api.mu.Unlock()
	api.status = map[string]any{"provider": "honcho", "profile": "default", "supported": true, "connected": false,
		"auth": nil, "reauth_required": false, "token": nil, "flow": nil, "health": "ok"}
	for k, v := range fields {
		api.status[k] = v
	}
}

// pageLook is what a person sees of the page, read from the rendered page:
// the filled buttons, the device code's font, and where the card sits.
type pageLook struct {
	Filled     []string `json:"filled"`     // labels of the visible buttons drawn filled (the primary action)
	Visible    string   `json:"visible"`    // the card's visible text
	CodeMono   bool     `json:"codeMono"`   // #device-code in a monospace font
	CodeScale  float64  `json:"codeScale"`  // #device-code's font size over the body's
	Overflow   bool     `json:"overflow"`   // the page scrolls sideways
	LeftSpace  float64  `json:"leftSpace"`  // room left of the card
	RightSpace float64  `json:"rightSpace"` // room right of the card
	CardWidth  float64  `json:"cardWidth"`
}

const readPageLook = `(() => {
  const shown = (el) => el.offsetParent !== null && getComputedStyle(el).visibility !== "hidden";
  const filled = Array.from(document.querySelectorAll("button")).filter((b) => {
    if (!shown(b)) return false;
    const bg = getComputedStyle(b).backgroundColor;
    return bg !== "transparent" && bg !== "rgba(0, 0, 0, 0)";
  }).map((b) => b.textContent.trim());
  const code = document.getElementById("device-code");
  const card = document.querySelector(".pane").getBoundingClientRect();
  const width = document.documentElement.clientWidth;
  return {
    filled,
    visible: document.querySelector(".pane").innerText,
    codeMono: /mono/i.test(getComputedStyle(code).fontFamily),
    codeScale: parseFloat(getComputedStyle(code).fontSize) / parseFloat(getComputedStyle(document.body).fontSize),
    overflow: document.documentElement.scrollWidth > width,
    leftSpace: card.left,
    rightSpace: width - card.right,
    cardWidth: card.width,
  };
})()`

// clickJS clicks the element with id as a script does, so that the mouse
// stays where it was and no button is drawn hovered.
func clickJS(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	js := fmt.Sprintf(`(() => { const b = document.getElementById(%q); if (!b || b.hidden) return false; b.click(); return true; })()`, id)
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
	if err != nil || !ok {
		t.Fatalf("click #%s: %v (shown: %v)", id, err, ok)
	}
}

// TestConnectPageStates: each state of the Connect page, in Chromium at a
// desktop window's width and a phone's, shows the words a person reads and
// fills only the button of the thing to do next (none when connected and
// well); the device code is large and monospace; the card is centred and
// never scrolls sideways. Each state is saved as a screenshot.
func TestConnectPageStates(t *testing.T) {
	api := newPageAPI(t)
	in := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(time.RFC3339) }
	oauthToken := map[string]any{"client_id": "hermes-agent", "scope": "write", "expires_at": in(time.Hour), "expires_in": 3600, "refreshable": true}
	states := []struct {
		name   string
		status map[string]any
		act    []string // buttons pressed after the page loads
		ready  func(pageState) bool
		filled []string
		says   []string
	}{
		{"not-connected", nil, nil,
			func(st pageState) bool { return st.State == "Sign-in needed" },
			[]string{"Connect"}, []string{"Profile: default", "Sign-in needed", "Connect", "Use a code instead", "Use an API key"}},
		{"waiting-in-browser", nil, []string{"connect-button"},
			func(st pageState) bool { return st.StopWaiting && st.Status == "Waiting for browser consent…" },
			nil, []string{"Waiting for browser consent…", "Stop waiting", "Open the sign-in page"}},
		{"device-code", nil, []string{"device-button"},
			func(st pageState) bool { return st.Code == "WDJB-MJHT" },
			nil, []string{"Enter this code on the sign-in page.", "WDJB-MJHT", "Copy code", "The code works for ", "Stop waiting"}},
		{"connected-oauth", map[string]any{"connected": true, "auth": "oauth", "account": "ada", "token": oauthToken}, nil,
			func(st pageState) bool { return st.State == "Connected as ada · renews automatically" },
			nil, []string{"Connected as ada · renews automatically", "Reconnect", "Disconnect"}},
		{"connected-api-key", map[string]any{"connected": true, "auth": "apikey"}, nil,
			func(st pageState) bool { return st.State == "Connected with an API key" },
			nil, []string{"Connected with an API key", "Sign in to Honcho instead", "Disconnect"}},
		{"renewal-failing", map[string]any{"connected": true, "auth": "oauth", "token": oauthToken, "health": "failing",
			"last_error": map[string]any{"since": in(-10 * time.Minute), "at": in(-time.Minute), "message": "HTTP 401"}}, nil,
			func(st pageState) bool { return strings.HasPrefix(st.State, "Renewal failing since ") },
			[]string{"Reconnect"}, []string{" · retrying; reconnect if it goes on", "Details: HTTP 401", "Disconnect"}},
		{"reauth-required", map[string]any{"auth": "oauth", "reauth_required": true}, nil,
			func(st pageState) bool { return st.State == "Sign-in expired" },
			[]string{"Sign in again"}, []string{"Sign-in expired", "Sign in again"}},
		{"disconnect-confirmation", map[string]any{"connected": true, "auth": "oauth", "account": "ada", "token": oauthToken}, []string{"disconnect-button"},
			func(st pageState) bool { return st.Connect == "" && !st.Disconnect && st.State != "" },
			[]string{"Disconnect"}, []string{"Disconnect from Honcho? Your assistant stops using it for memory until you connect again.", "Keep connected"}},
	}
	browser := NewBrowser(t)
	for _, width := range []int64{1200, 360} {
		for _, tt := range states {
			t.Run(fmt.Sprintf("%s-%d", tt.name, width), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(browser, 60*time.Second)
				defer cancel()
				api.set(tt.status)
				if err := chromedp.Do(ctx,
					chromedp.EmulateViewport(width, 800),
					chromedp.Navigate(api.URL+"/"),
					chromedp.WaitVisible(chromedp.ID("provider-select")),
				); err != nil {
					t.Fatal(err)
				}
				waitPage(t, ctx, "the status loaded", func(st pageState) bool { return st.Provider == "honcho" && (st.Connect != "" || st.State != "") })
				for _, id := range tt.act {
					clickJS(t, ctx, id)
				}
				st := waitPage(t, ctx, tt.name, tt.ready)
				look, err := chromedp.Run(ctx, chromedp.Evaluate[pageLook](readPageLook))
				if err != nil {
					t.Fatal(err)
				}
				screenshot(t, ctx, fmt.Sprintf("page-%s-%d.png", tt.name, width))

				if strings.Join(look.Filled, ",") != strings.Join(tt.filled, ",") {
					t.Errorf("filled buttons %q, want %q", look.Filled, tt.filled)
				}
				for _, want := range tt.says {
					if !strings.Contains(look.Visible, want) {
						t.Errorf("the page does not show %q; it shows:\n%s", want, look.Visible)
					}
				}
				if st.Profile != "Profile: default" {
					t.Errorf("profile line %q", st.Profile)
				}
				if n := strings.Count(look.Visible, "Connected"); n > 1 {
					t.Errorf("the page says Connected %d times:\n%s", n, look.Visible)
				}
				if tt.name == "device-code" && (!look.CodeMono || look.CodeScale < 1.5) {
					t.Errorf("device code: monospace %v, %.2f× the text; want monospace and large", look.CodeMono, look.CodeScale)
				}
				if look.Overflow {
					t.Errorf("at %d px the page scrolls sideways", width)
				}
				if math.Abs(look.LeftSpace-look.RightSpace) > 2 {
					t.Errorf("the card is not centred: %.0f px left of it, %.0f px right", look.LeftSpace, look.RightSpace)
				}
				if width == 360 && look.CardWidth < 300 {
					t.Errorf("at 360 px the card is %.0f px wide; want it to use the screen", look.CardWidth)
				}
			})
		}
	}
}
