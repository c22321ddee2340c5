package middleware_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/memconnect/memconnect/internal/apierr"
	"github.com/memconnect/memconnect/middleware"
)

// readingHandler reads the whole body, answers 200 with its length, and
// hands a read error to the error writer, as the route handlers do.
var readingHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	var v map[string]any
	if err := json.NewDecoder(r.Body).Decode(&v); err != nil && err != io.EOF {
		apierr.Write(w, r, apierr.Classify(apierr.Wrap(apierr.CodeInvalidRequest, err, "The body is not JSON.")))
		return
	}
	_, _ = w.Write([]byte("ok"))
})

// jsonBody returns a JSON object of exactly n bytes (n >= 8).
func jsonBody(n int) string {
	return `{"a":"` + strings.Repeat("x", n-8) + `"}`
}

func TestBodyLimit(t *testing.T) {
	tests := []struct {
		name          string
		limit         int64
		size          int
		contentLength bool // false: chunked, no Content-Length
		wantStatus    int
		reached       bool // whether the handler ran
	}{
		{"small body", 100, 50, true, 200, true},
		{"exactly the limit", 100, 100, true, 200, true},
		{"over by header", 100, 101, true, 413, false},
		{"over while streaming", 100, 101, false, 413, true},
		{"under while streaming", 100, 99, false, 200, true},
		{"default limit allows 64 KiB", 0, 64 << 10, true, 200, true},
		{"default limit refuses more", 0, 64<<10 + 1, true, 413, false},
		{"negative means the default", -1, 64<<10 + 1, false, 413, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reached := false
			h := middleware.BodyLimit(tt.limit)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached = true
				readingHandler.ServeHTTP(w, r)
			}))
			body := jsonBody(tt.size)
			r := httptest.NewRequest(http.MethodPost, "/profiles/default/providers/honcho/connect", strings.NewReader(body))
			if !tt.contentLength {
				r.ContentLength = -1
				r.Body = io.NopCloser(strings.NewReader(body)) // hide the length
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)

			if reached != tt.reached {
				t.Errorf("handler reached = %v, want %v", reached, tt.reached)
			}
			if tt.wantStatus == 200 {
				checkOK(t, rec)
				return
			}
			got := checkError(t, rec, tt.wantStatus, apierr.CodePayloadTooLarge)
			limit := tt.limit
			if limit <= 0 {
				limit = middleware.DefaultBodyLimit
			}
			if !strings.Contains(got.Message, "limit of ") || !strings.Contains(got.Message, " bytes") {
				t.Errorf("message %q does not state the limit %d", got.Message, limit)
			}
		})
	}
}

func TestBodyLimitOverTheWire(t *testing.T) {
	// A real server and a chunked request: the streaming path end to end.
	srv := httptest.NewServer(middleware.BodyLimit(1024)(readingHandler))
	// Not Close, which would wait out net/http's half second of lingering
	// on the connection whose body the 413 left unread.
	defer srv.CloseClientConnections()
	defer srv.Listener.Close()

	for _, tt := range []struct {
		name string
		size int
		want int
	}{
		{"fits", 1000, 200},
		{"too large", 5000, 413},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			go func() {
				_, _ = io.Copy(pw, bytes.NewReader([]byte(jsonBody(tt.size))))
				_ = pw.Close()
			}()
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/x", pr) // unknown length: chunked
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.want)
			}
			if req.ContentLength != 0 && req.ContentLength != -1 {
				t.Errorf("request had a Content-Length %d; the test wants a chunked body", req.ContentLength)
			}
		})
	}
}
