package apierr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	chimw "github.com/go-chi/chi/v5/middleware"

	"github.com/memconnect/memconnect/errkind"

	"github.com/rs/zerolog"
)

// secret stands for a token value that must never reach a client.
const secret = "hch-rt-SECRET-do-not-leak"

func TestCodeStatus(t *testing.T) {
	tests := []struct {
		code Code
		want int
	}{
		{CodeInvalidRequest, 400},
		{CodeInvalidProfile, 400},
		{CodeUnauthorized, 401},
		{CodeForbidden, 403},
		{CodeProfileNotFound, 404},
		{CodeUnknownProvider, 404},
		{CodeUnsupported, 404},
		{CodeConflict, 409},
		{CodeUpstreamError, 502},
		{CodeInternal, 500},
		{CodeNotFound, 404},
		{CodeMethodNotAllowed, 405},
		{CodePayloadTooLarge, 413},
		{Code("no_such_code"), 500},
		{Code(""), 500},
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			if got := tt.code.Status(); got != tt.want {
				t.Errorf("Code(%q).Status() = %d, want %d", tt.code, got, tt.want)
			}
		})
	}
}

func TestCodeStrings(t *testing.T) {
	// The strings are the wire contract of the HTTP API.
	tests := map[Code]string{
		CodeInvalidRequest:   "invalid_request",
		CodeInvalidProfile:   "invalid_profile",
		CodeUnauthorized:     "unauthorized",
		CodeForbidden:        "forbidden",
		CodeProfileNotFound:  "profile_not_found",
		CodeUnknownProvider:  "unknown_provider",
		CodeUnsupported:      "unsupported",
		CodeConflict:         "conflict",
		CodeUpstreamError:    "upstream_error",
		CodeInternal:         "internal",
		CodeNotFound:         "not_found",
		CodeMethodNotAllowed: "method_not_allowed",
		CodePayloadTooLarge:  "payload_too_large",
	}
	for code, want := range tests {
		if string(code) != want {
			t.Errorf("code %q, want %q", code, want)
		}
	}
}

func TestErrorString(t *testing.T) {
	cause := errors.New("refresh failed with token " + secret)
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"message", &Error{Code: CodeConflict, Message: "A flow is already pending."},
			"apierr: conflict: A flow is already pending."},
		{"cause is not in the string", Wrap(CodeUpstreamError, cause, "Honcho did not answer."),
			"apierr: upstream_error: Honcho did not answer."},
		{"empty message uses the default", Wrap(CodeInternal, cause, ""),
			"apierr: internal: Something went wrong on our side. Try again; if it keeps happening, check the server log."},
		{"Errorf formats", Errorf(CodeInvalidProfile, "%q is not a profile name.", "Bad!"),
			`apierr: invalid_profile: "Bad!" is not a profile name.`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.err.Error()
			if got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
			if strings.Contains(got, secret) {
				t.Errorf("Error() = %q contains the secret", got)
			}
		})
	}
}

func TestErrorUnwrap(t *testing.T) {
	sentinel := errors.New("sentinel")
	err := fmt.Errorf("context: %w", Wrap(CodeConflict, sentinel, "msg"))
	if !errors.Is(err, sentinel) {
		t.Error("errors.Is(err, sentinel) = false, want true")
	}
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeConflict {
		t.Errorf("errors.As: got %v, want an *Error with code conflict", e)
	}
	if got := Errorf(CodeConflict, "x").Unwrap(); got != nil {
		t.Errorf("Errorf(...).Unwrap() = %v, want nil", got)
	}
}

// newRequest returns a request whose context carries a request id and a
// logger writing JSON lines into logs.
func newRequest(t *testing.T, id string, logs *bytes.Buffer) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/profiles/default/providers/honcho/status", nil)
	ctx := context.WithValue(r.Context(), chimw.RequestIDKey, id)
	logger := zerolog.New(logs)
	return r.WithContext(logger.WithContext(ctx))
}

func TestRenderError(t *testing.T) {
	cause := errors.New("exchange failed: refresh_token=" + secret)
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   Code
		wantMsg    string
		wantLevel  string // "" means nothing is logged
	}{
		{"4xx without cause is not logged",
			Errorf(CodeInvalidProfile, "Bad profile."),
			400, CodeInvalidProfile, "Bad profile.", ""},
		{"4xx with cause logs a warning",
			Wrap(CodeConflict, cause, "A flow is pending."),
			409, CodeConflict, "A flow is pending.", "warn"},
		{"5xx logs an error",
			Wrap(CodeUpstreamError, cause, "Honcho failed."),
			502, CodeUpstreamError, "Honcho failed.", "error"},
		{"5xx without cause logs an error",
			Errorf(CodeInternal, "Broken."),
			500, CodeInternal, "Broken.", "error"},
		{"plain error is internal with the generic message",
			cause,
			500, CodeInternal,
			"Something went wrong on our side. Try again; if it keeps happening, check the server log.",
			"error"},
		{"MaxBytesError is 413",
			fmt.Errorf("decode: %w", &http.MaxBytesError{Limit: 65536}),
			413, CodePayloadTooLarge, "The request body is larger than the limit of 65536 bytes.", "warn"},
		{"nil is internal",
			nil,
			500, CodeInternal,
			"Something went wrong on our side. Try again; if it keeps happening, check the server log.",
			"error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			r := newRequest(t, "req-42", &logs)
			r.Header.Set("Accept", "application/xml") // still JSON
			w := httptest.NewRecorder()

			writeErr(w, r, tt.err)

			if w.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			body := w.Body.String()
			var got map[string]any
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("body %q is not JSON: %v", body, err)
			}
			want := map[string]any{"error": string(tt.wantCode), "message": tt.wantMsg, "request_id": "req-42"}
			if len(got) != len(want) {
				t.Errorf("body = %v, want exactly the keys of %v", got, want)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("body[%q] = %v, want %v", k, got[k], v)
				}
			}
			if strings.Contains(body, secret) || strings.Contains(body, "exchange failed") {
				t.Errorf("body %q leaks the cause", body)
			}

			if tt.wantLevel == "" {
				if logs.Len() != 0 {
					t.Errorf("logged %q, want nothing", logs.String())
				}
				return
			}
			var line map[string]any
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
				t.Fatalf("log %q is not one JSON line: %v", logs.String(), err)
			}
			if line["level"] != tt.wantLevel {
				t.Errorf("log level = %v, want %s", line["level"], tt.wantLevel)
			}
			if line["request_id"] != "req-42" {
				t.Errorf("log request_id = %v, want req-42", line["request_id"])
			}
			if n := strings.Count(logs.String(), `"message":`); n != 1 || line["detail"] != tt.wantMsg {
				t.Errorf("log has %d message keys and detail %v; want one message, and detail %q", n, line["detail"], tt.wantMsg)
			}
			if line["error"] != string(tt.wantCode) {
				t.Errorf("log error = %v, want %s", line["error"], tt.wantCode)
			}
			if errors.Is(tt.err, cause) && !strings.Contains(fmt.Sprint(line["cause"]), "exchange failed") {
				t.Errorf("log cause = %v, want the internal cause", line["cause"])
			}
		})
	}
}

func TestRenderErrorWithoutLoggerOrID(t *testing.T) {
	// Outside the middleware chain there is no logger and no request id:
	// Write must still answer.
	r := httptest.NewRequest(http.MethodPost, "/x", nil)
	w := httptest.NewRecorder()
	writeErr(w, r, errors.New("boom"))
	if w.Code != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", w.Code)
	}
	var got errResponse
	if err := json.NewDecoder(w.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Code != CodeInternal || got.RequestID != "" {
		t.Errorf("body = %+v, want internal with an empty request id", got)
	}
}

func TestErrResponseRender(t *testing.T) {
	// render.Render calls Render, which must set the status.
	resp := &errResponse{HTTPStatusCode: http.StatusConflict, Code: CodeConflict}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if err := resp.Render(httptest.NewRecorder(), r); err != nil {
		t.Fatalf("Render: %v", err)
	}
	b, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"error":"conflict","message":"","request_id":""}`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
}

func ExampleWrite() {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := Errorf(CodeInvalidProfile,
			"%q is not a profile name: use lowercase letters, digits, '-' and '_'.", "Work Laptop")
		writeErr(w, r, err)
	})

	// chi's RequestID middleware (or this module's) puts the id in the context.
	r := httptest.NewRequest(http.MethodGet, "/profiles/Work%20Laptop/providers/honcho/status", nil)
	r = r.WithContext(context.WithValue(r.Context(), chimw.RequestIDKey, "req-1"))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)

	body, _ := io.ReadAll(w.Body)
	fmt.Println(w.Code, w.Header().Get("Content-Type"))
	fmt.Print(string(body))
	// Output:
	// 400 application/json
	// {"error":"invalid_profile","message":"\"Work Laptop\" is not a profile name: use lowercase letters, digits, '-' and '_'.","request_id":"req-1"}
}

func ExampleWrap() {
	cause := errors.New("dial tcp 203.0.113.7:443: connect: connection refused")
	err := Wrap(CodeUpstreamError, cause, "Honcho's server did not answer. Try again later.")

	fmt.Println(err)                // what a client may see
	fmt.Println(errors.Unwrap(err)) // what only the log sees
	fmt.Println(Classify(err).Code.Status())
	// Output:
	// apierr: upstream_error: Honcho's server did not answer. Try again later.
	// dial tcp 203.0.113.7:443: connect: connection refused
	// 502
}

func ExampleCode_Status() {
	fmt.Println(CodeProfileNotFound.Status(), CodePayloadTooLarge.Status())
	// Output: 404 413
}

// writeErr is what the handlers' renderError does, without their mapping
// of the lower packages' errors.
func writeErr(w http.ResponseWriter, r *http.Request, err error) { Write(w, r, Classify(err)) }

// Every kind of error has a code of the API.
func TestEveryKindHasACode(t *testing.T) {
	for k := errkind.Invalid; k <= errkind.Internal; k++ {
		if c, ok := kindCodes[k]; !ok || !c.Known() {
			t.Errorf("kind %v has no code of the API (%q)", k, c)
		}
	}
	err := fmt.Errorf("store: %w", errkind.New(errkind.Unavailable, "down", "Try again in a few seconds.").RetryAfter(2*time.Second))
	if e := Classify(err); e.Code != CodeUnavailable || e.Text() != "Try again in a few seconds." || e.RetryAfter != 2*time.Second {
		t.Errorf("Classify(%v) = %+v; want unavailable, its message and Retry-After", err, e)
	}
}
