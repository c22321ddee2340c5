package handlers

import (
	"net/http"

	"github.com/memconnect/memconnect/internal/apierr"
)

// renderError writes err to w as the API's JSON error body
// ([apierr.Write]), with the code and message [toError] gives it.
func renderError(w http.ResponseWriter, r *http.Request, err error) {
	apierr.Write(w, r, toError(err))
}

// toError is the [*apierr.Error] sent for err: [apierr.Classify], the one
// mapping from errors to codes. The layers below say what their errors are
// (package errkind: a kind and a sentence for a person) where they make
// them; this package adds nothing of its own. An [*apierr.Error] already
// in err's chain wins; a handler builds one for what only the HTTP side
// knows (a malformed body, a session that may not do this).
func toError(err error) *apierr.Error {
	return apierr.Classify(err)
}
