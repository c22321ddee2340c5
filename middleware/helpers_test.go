package middleware_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/memconnect/memconnect/internal/apierr"
)

// okHandler answers 200 "ok".
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = w.Write([]byte("ok"))
})

// errorBody is the JSON error body, as a client decodes it.
type errorBody struct {
	Code      apierr.Code `json:"error"`
	Message   string      `json:"message"`
	RequestID string      `json:"request_id"`
}

// checkError asserts that rec holds a JSON error response with the given
// status and code, and returns it.
func checkError(t *testing.T, rec *httptest.ResponseRecorder, status int, code apierr.Code) errorBody {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status = %d, want %d (body %q)", rec.Code, status, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var got errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("body %q is not JSON: %v", rec.Body.String(), err)
	}
	if got.Code != code {
		t.Errorf("error = %q, want %q", got.Code, code)
	}
	if got.Message == "" {
		t.Error("message is empty")
	}
	return got
}

// checkOK asserts that rec holds okHandler's answer.
func checkOK(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code != http.StatusOK || rec.Body.String() != "ok" {
		t.Errorf("got %d %q, want 200 \"ok\"", rec.Code, rec.Body.String())
	}
}
