// Package desktop is the desktop app's "Connect your memory provider" link:
// the Memory settings pane as plain HTML, CSS and JavaScript, with no
// framework and no build step.
//
// A host serves the pane at "/" next to the memconnect API, which the page
// calls at /api/memory unless the body's data-api attribute says otherwise:
//
//	memory, err := memconnect.New(cfg)
//	if err != nil {
//		return err
//	}
//	mux.Handle("/api/memory/", http.StripPrefix("/api/memory", memory))
//	mux.Handle("/", http.FileServerFS(desktop.FS()))
//
// The page reads an optional session token from ?token= in its URL and sends
// it as "Authorization: Bearer". It follows the provider's event stream
// (GET .../events, read with fetch so that the token goes along) and reads
// the status when an event says something changed; without a stream it
// polls. It opens the sign-in page in a popup (a tab where popups are
// blocked) and also learns the outcome from the callback page's message on
// the BroadcastChannel "memconnect" (of its own origin only). When a sign-in finishes it
// dispatches one "memconnect:connected" CustomEvent on document.
//
// For the person, the pane names the profile it connects, fills only the
// button of the thing to do next (none while connected and well), says the
// state once in plain words ("Connected as ada · renews automatically")
// with an HTTP status only as a detail, shows a device sign-in's code large
// with a copy button and the time it has left, and asks once before
// Disconnect. The card is centred and fits a 360 px phone.
package desktop

import (
	"embed"
	"io/fs"
)

// assets is read-only: embed.FS has no methods that change it.
//
//go:embed index.html app.js style.css favicon.svg
var assets embed.FS

// FS returns the pane's files (index.html, app.js, style.css, favicon.svg) as a read-only
// file system rooted at the pane, ready for http.FileServerFS.
func FS() fs.FS { return assets }
