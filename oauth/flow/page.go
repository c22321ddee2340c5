package flow

import (
	"errors"
	"io"
	"net/http"
)

// PageFunc writes the page a person's browser gets at the end of a browser
// flow on the loopback listener: f and err are what [Manager.Callback]
// returns for it, providerName the provider's display name ("" for none).
// The answer must not be cached nor send a referrer: the URL that led to it
// holds the authorization code.
type PageFunc func(w http.ResponseWriter, f Flow, err error, providerName string)

// PlainPage is the [PageFunc] of a [Config] without one: plain text that
// says whether the sign-in connected and, if not, why. A host's pages (the
// router's) say more, and tell the page that started the sign-in.
func PlainPage(w http.ResponseWriter, f Flow, err error, providerName string) {
	status, text := http.StatusOK, "Connected. You can close this window and return to the app."
	var fe *Failure
	switch {
	case err == nil && f.State == StateConnected:
		if providerName != "" {
			text = "Connected to " + providerName + ". You can close this window and return to the app."
		}
	case errors.Is(err, ErrInvalidState):
		status, text = http.StatusBadRequest, "This sign-in link is not valid: it is unknown, expired, or was already used."
	case errors.As(err, &fe) && fe.Detail != "":
		status, text = failureStatus(fe.Code), "The sign-in did not finish: "+fe.Detail+"."
	default:
		status, text = http.StatusInternalServerError, "The sign-in did not finish. Return to the app and connect again."
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, text+"\n")
}

// failureStatus is the HTTP status of a page for a flow that failed with
// code: the server's own trouble is 5xx, the sign-in's is 4xx.
func failureStatus(code string) int {
	switch code {
	case CodeComplete, CodeClosed:
		return http.StatusInternalServerError
	case CodeExchange:
		return http.StatusBadGateway
	case CodeRateLimited:
		return http.StatusTooManyRequests
	}
	return http.StatusBadRequest
}
