package oauthfake

import (
	"bytes"
	"html/template"
	"net/http"
)

// The pages a person sees. Everything echoed is escaped by html/template.
var (
	consentTemplate = mustPage("consent", `
<h1>{{.Title}}</h1>
<p><strong>{{.ClientName}}</strong> wants access to your account.</p>{{if ne .ClientName .ClientID}}
<p class="note">Client id <code>{{.ClientID}}</code></p>{{end}}
<dl>
  <dt>Access requested (scope)</dt><dd><code>{{.Scope}}</code></dd>
  <dt>You will be sent back to</dt><dd><code>{{.ReturnTo}}</code></dd>
</dl>
{{with .ConfigPath}}<p>Settings will be saved to <code>{{.}}</code></p>{{end}}
<form method="post" action="/authorize/decision">
  <input type="hidden" name="request" value="{{.RequestID}}">
  <button type="submit" name="decision" value="approve">Approve</button>
  <button type="submit" name="decision" value="deny">Deny</button>
</form>`)

	devicePageTemplate = mustPage("device", `
<h1>{{.Title}}</h1>
{{with .Message}}<p role="status">{{.}}</p>{{end}}
{{with .Error}}<p role="alert" class="error">{{.}}</p>{{end}}
{{if .ShowForm}}
{{with .ClientID}}<p><strong>{{.}}</strong> wants access to your account{{with $.Scope}} (scope <code>{{.}}</code>){{end}}.</p>{{end}}
<form method="post" action="/device">
  <p><label for="user_code">Enter the code shown on your device</label></p>
  <p><input id="user_code" name="user_code" value="{{.UserCode}}" autocomplete="off" autocapitalize="characters" spellcheck="false" required></p>
  <button type="submit" name="decision" value="approve">Approve</button>
  <button type="submit" name="decision" value="deny">Deny</button>
</form>
{{end}}`)

	errorTemplate = mustPage("error", `
<h1>{{.Title}}</h1>
<p role="alert" class="error">{{.Message}}</p>`)
)

// mustPage wraps body in the common page layout; the page's data has a Title.
func mustPage(name, body string) *template.Template {
	return template.Must(template.New(name).Funcs(template.FuncMap{"serverName": func() string { return "oauthtest" }}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} – {{serverName}}</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;margin:0;padding:2rem;color:#111;background:#fafafa}
main{max-width:32rem;margin:auto;background:#fff;border:1px solid #ccc;border-radius:8px;padding:1.5rem}
button{font:inherit;padding:.5rem 1.25rem;margin-right:.5rem;border-radius:6px;border:1px solid #333;cursor:pointer}
button[value=approve]{background:#0b57d0;color:#fff;border-color:#0b57d0}
button:focus-visible,input:focus-visible{outline:3px solid #f9a825;outline-offset:2px}
input{font:inherit;padding:.4rem;letter-spacing:.1em;text-transform:uppercase}
dt{font-weight:600}.error{color:#b00020}.note{color:#555;font-size:.875rem}
</style>
</head>
<body>
<main>` + body + `
<p class="note">Development authorization server ({{serverName}}). Nothing here is real.</p>
</main>
</body>
</html>
`))
}

type consentData struct {
	Title      string
	ClientName string // the name it registered with; else its id
	ClientID   string
	Scope      string
	ConfigPath string
	ReturnTo   string
	RequestID  string
}

type devicePageData struct {
	Title    string
	Message  string
	Error    string
	ShowForm bool
	UserCode string
	ClientID string
	Scope    string
}

type errorData struct {
	Title   string
	Message string
}

// renderPage answers status with the page t rendered with data.
func (s *Server) renderPage(w http.ResponseWriter, status int, t *template.Template, data any) {
	var buf bytes.Buffer
	t, err := t.Clone()
	if err == nil {
		t.Funcs(template.FuncMap{"serverName": func() string { return s.name }})
		err = t.Execute(&buf, data)
	}
	if err != nil {
		http.Error(w, s.name+": cannot render page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// No form-action: browsers apply it to the redirect after the form.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage answers status with a page explaining the problem to a person.
func (s *Server) errorPage(w http.ResponseWriter, status int, title, message string) {
	s.renderPage(w, status, errorTemplate, errorData{Title: title, Message: message})
}
