package oauth

import (
	"errors"
	"html/template"
	"net/http"
)

// callbackPage is the page a person sees at the end of a browser flow. The
// template escapes everything it is given.
var callbackPage = template.Must(template.New("callback").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;line-height:1.5;color:#1b1b1b}h1{font-size:1.5rem}</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
<p role="status">{{.Message}}</p>
{{if .Hint}}<p>{{.Hint}}</p>{{end}}
</main>
</body>
</html>
`))

// SuccessMessage is what the page of a connected flow says.
const SuccessMessage = "Connected — you can close this window and return to the app."

type pageData struct {
	Title, Message, Hint string
}

// WriteCallbackPage writes the HTML page for the result of a callback, as
// returned by [FlowManager.Callback]:
//
//   - err == nil and the flow connected: 200, [SuccessMessage];
//   - [ErrInvalidState]: 400, "This sign-in link is not valid", nothing
//     about any flow;
//   - a [*FlowFailure]: its Detail, escaped, with 400 for an error= callback
//     or a denial, 429 when rate limited, 502 when the token endpoint failed,
//     500 otherwise.
//
// The page is never cached and sends no referrer (its URL holds the code).
func WriteCallbackPage(w http.ResponseWriter, f Flow, err error) {
	status, data := http.StatusOK, pageData{Title: "Connected", Message: SuccessMessage}
	var fe *FlowFailure
	switch {
	case err == nil && f.State == FlowConnected:
	case errors.Is(err, ErrInvalidState):
		status = http.StatusBadRequest
		data = pageData{
			Title:   "This sign-in link is not valid",
			Message: "It is unknown, expired or was already used.",
			Hint:    "Return to the app and start the sign-in again.",
		}
	case errors.As(err, &fe):
		switch fe.Code {
		case FlowErrAccessDenied, FlowErrAuthorization, FlowErrExpired, FlowErrTimedOut:
			status = http.StatusBadRequest
		case FlowErrRateLimited:
			status = http.StatusTooManyRequests
		case FlowErrExchange:
			status = http.StatusBadGateway
		default:
			status = http.StatusInternalServerError
		}
		data = pageData{Title: "Sign-in failed", Message: fe.Detail, Hint: "Return to the app and try again."}
	default:
		status = http.StatusInternalServerError
		data = pageData{Title: "Sign-in failed", Message: "Something went wrong.", Hint: "Return to the app and try again."}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = callbackPage.Execute(w, data)
}
