package middleware_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect/middleware"
)

// The middleware in the order the router installs it.
func Example() {
	isCallback := func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/callback") }

	r := chi.NewRouter()
	r.Use(
		middleware.RequestID,
		middleware.AccessLog(zerolog.Nop()),
		middleware.Recoverer,
		middleware.HostGuard(nil),
		middleware.OriginGuard(nil, nil),
		middleware.SessionToken("s3cret", isCallback),
		middleware.BodyLimit(0),
	)
	r.Get("/providers", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, `{"providers":["honcho"]}`)
	})

	do := func(method, host, origin, auth string) {
		req := httptest.NewRequest(method, "http://"+host+"/providers", nil)
		req.Header.Set("X-Request-Id", "req-1")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	do("GET", "127.0.0.1:8080", "", "Bearer s3cret")
	do("GET", "attacker.example:8080", "", "Bearer s3cret")
	do("GET", "localhost:8080", "", "")
	do("POST", "localhost:8080", "https://attacker.example", "Bearer s3cret")
	// Output:
	// 200 {"providers":["honcho"]}
	// 403 {"error":"forbidden","message":"This server only answers requests addressed to localhost, 127.0.0.1, ::1. Open it through one of these names, or add the name to the allowed hosts.","request_id":"req-1"}
	// 401 {"error":"unauthorized","message":"This server needs a session token. Send it as \"Authorization: Bearer TOKEN\".","request_id":"req-1"}
	// 403 {"error":"forbidden","message":"This server does not accept POST requests from web pages of other origins.","request_id":"req-1"}
}

func ExampleRecoverer() {
	h := middleware.RequestID(middleware.Recoverer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("bug")
	})))
	req := httptest.NewRequest(http.MethodGet, "/providers", nil)
	req.Header.Set("X-Request-Id", "req-2")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Print(rec.Code, " ", rec.Header().Get("X-Request-Id"), " ", rec.Body.String())
	// Output:
	// 500 req-2 {"error":"internal","message":"Something went wrong on our side. Try again; if it keeps happening, check the server log.","request_id":"req-2"}
}

func ExampleBodyLimit() {
	h := middleware.BodyLimit(16)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "read")
	}))
	req := httptest.NewRequest(http.MethodPost, "/profiles/default/providers/honcho/connect",
		strings.NewReader(`{"method":"browser","redirect":"loopback"}`))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output:
	// 413 {"error":"payload_too_large","message":"The request body is larger than the limit of 16 bytes.","request_id":""}
}

func ExampleRequestIDFrom() {
	h := middleware.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("handler sees", middleware.RequestIDFrom(r.Context()))
	}))
	req := httptest.NewRequest(http.MethodGet, "/providers", nil)
	req.Header.Set("X-Request-Id", "from-the-proxy.42")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println("response header", rec.Header().Get("X-Request-Id"))
	// Output:
	// handler sees from-the-proxy.42
	// response header from-the-proxy.42
}
