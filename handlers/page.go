package handlers

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"

	"github.com/memconnect/memconnect/oauth/flow"
)

// handoffScript tells the page that started the sign-in how it ended, so
// that it need not wait for its next status poll: a message to the window
// that opened this one, if any and only if it is of this page's origin, and
// the same on the BroadcastChannel "memconnect", which reaches the pages of
// this origin (the Connect page, when the router's callback route is on its
// server). The message, {"type": "memconnect:signin", "outcome": "connected"
// or a failure code}, holds no secret. It then offers to close the window.
// The script is fixed: the page's policy allows it by its hash alone.
const handoffScript = `(function(){var m=document.querySelector("main"),o=m&&m.getAttribute("data-outcome");if(!o)return;` +
	`var msg={type:"memconnect:signin",outcome:o};` +
	`try{if(window.opener&&window.opener!==window)window.opener.postMessage(msg,location.origin)}catch(e){}` +
	`try{var c=new BroadcastChannel("memconnect");c.postMessage(msg);c.close()}catch(e){}` +
	`var b=document.getElementById("close");if(b){b.hidden=false;b.addEventListener("click",function(){window.close()})}})();`

// pagePolicy is the callback page's Content-Security-Policy: nothing but its
// own style and handoffScript.
var pagePolicy = func() string {
	sum := sha256.Sum256([]byte(handoffScript))
	return "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

// callbackTemplate is the page a person sees at the end of a browser flow,
// on the loopback listener and on a router's callback route alike.
// html/template escapes every value.
var callbackTemplate = template.Must(template.New("callback").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;line-height:1.5;color:#1b1b1b}h1{font-size:1.5rem}.ref{color:#555;font-size:.875rem}</style>
</head>
<body>
<main data-outcome="{{.Outcome}}">
<h1>{{.Title}}</h1>
<p role="status">{{.Message}}</p>
{{- with .Next}}
<p>{{.}}</p>
{{- end}}
{{- with .Reference}}
<p class="ref">Reference: <code>{{.}}</code></p>
{{- end}}
<p><button id="close" type="button" hidden>Close this window</button></p>
</main>
<script>{{.Script}}</script>
</body>
</html>
`))

// successMessage is what the page of a connected flow says.
const successMessage = "Connected — you can close this window and return to the app."

// callbackPage is the HTML page for the end of a browser flow: what it
// says, with which HTTP status. Build one with [callbackOutcome] (or by hand
// for an error that is not a flow's, such as a link naming no profile) and
// send it with [callbackPage.write].
type callbackPage struct {
	Status    int
	Title     string
	Message   string
	Next      string // the next step, for a person
	Reference string // e.g. a request id, shown small so a person can quote it
	// Outcome names the result for a log line ("connected", a
	// [flow.Failure] code, "invalid_state"); it is not shown.
	Outcome string
}

// callbackOutcome is the page for the result of a callback, as returned by
// [flow.Manager.Callback] (or met by the loopback listener). name is the
// provider's display name for the title of a success ("" for none):
//
//   - err == nil and the flow connected: 200, successMessage;
//   - [flow.ErrInvalidState]: 400, "This sign-in link is not valid", nothing
//     about any flow;
//   - a [*flow.Failure]: 400 for an error= callback, a denial or an expired
//     flow, 429 when rate limited, 502 when the token endpoint failed, 503
//     when the manager is closing, 500 otherwise, each with a next step.
func callbackOutcome(f flow.Flow, err error, name string) callbackPage {
	const again = "Return to the app and connect again."
	if err == nil && f.State == flow.StateConnected {
		title := "Connected"
		if name != "" {
			title = "Connected to " + name
		}
		return callbackPage{Status: http.StatusOK, Outcome: "connected", Title: title, Message: successMessage}
	}
	if errors.Is(err, flow.ErrInvalidState) {
		return callbackPage{Status: http.StatusBadRequest, Outcome: "invalid_state",
			Title:   "This sign-in link is not valid",
			Message: "It is unknown, expired, or was already used, so it was ignored.",
			Next:    "Return to the app: if it is still waiting, finish the sign-in from the page it opened; otherwise connect again.",
		}
	}
	var fe *flow.Failure
	if !errors.As(err, &fe) {
		return callbackPage{Status: http.StatusInternalServerError, Outcome: "internal",
			Title: "Sign-in failed", Message: "Something went wrong on our side.",
			Next: "Return to the app and connect again. If it keeps happening, the server log has the details."}
	}
	p := callbackPage{Status: http.StatusInternalServerError, Outcome: fe.Code,
		Title: "Sign-in failed", Message: fe.Detail + ".", Next: again}
	switch fe.Code {
	case flow.CodeAccessDenied:
		p.Status, p.Title = http.StatusBadRequest, "Sign-in was denied"
		p.Message = "Sign-in was denied: access was not granted, so nothing was connected."
		p.Next = "If that was a mistake, return to the app and connect again."
	case flow.CodeAuthorization:
		p.Status = http.StatusBadRequest
	case flow.CodeOtherBrowser:
		p.Status, p.Title = http.StatusForbidden, "This sign-in was started in another browser"
		p.Next = "Return to the app in this browser and connect again: the sign-in completes only in the browser that started it."
	case flow.CodeExpired, flow.CodeTimedOut:
		p.Status, p.Title = http.StatusBadRequest, "Sign-in expired"
	case flow.CodeRateLimited:
		p.Status = http.StatusTooManyRequests
		p.Next = "Wait a minute, then return to the app and connect again."
	case flow.CodeExchange:
		p.Status = http.StatusBadGateway
		p.Next = "Return to the app and connect again. If it keeps failing, the provider's server may be having trouble."
	case flow.CodeComplete:
		p.Title = "Signed in, but not saved"
		p.Message = "You approved the sign-in, but the credentials could not be saved, so nothing was connected."
		p.Next = "Check that the config file is valid JSON and can be written (the server log names it), then connect again from the app."
	case flow.CodeClosed:
		p.Status, p.Title = http.StatusServiceUnavailable, "The app is shutting down"
		p.Next = "Start the app again, then connect again."
	}
	return p
}

// Write sends the page as HTML. It is never cached and sends no referrer:
// the URL that led here holds the authorization code.
func (p callbackPage) write(w http.ResponseWriter) {
	var buf bytes.Buffer
	data := struct {
		callbackPage
		Script template.JS
	}{p, template.JS(handoffScript)}
	if err := callbackTemplate.Execute(&buf, data); err != nil {
		// The template and the page's fields are fixed types; this cannot happen.
		http.Error(w, "Sign-in: the result page could not be shown.", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", pagePolicy)
	w.WriteHeader(p.Status)
	_, _ = w.Write(buf.Bytes())
}

// WriteCallbackPage is the page a person's browser gets at the end of a
// browser flow, on the router's callback route and, given to the flow
// manager as its [flow.Config.Page], on the loopback listener alike: what
// happened, what to do next, and a message that tells the page that
// started the sign-in how it ended. It is a [flow.PageFunc].
func WriteCallbackPage(w http.ResponseWriter, f flow.Flow, err error, providerName string) {
	callbackOutcome(f, err, providerName).write(w)
}
