package handlers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/memconnect/memconnect/internal/apierr"
	"github.com/memconnect/memconnect/oauth/authserver"
	"github.com/memconnect/memconnect/provider"
)

func TestToError(t *testing.T) {
	plain := errors.New("open /home/u/.honcho/config.json: permission denied")
	maxBytes := &http.MaxBytesError{Limit: 10}
	tests := []struct {
		name      string
		err       error
		wantCode  apierr.Code
		wantMsg   string // substring of the message
		wantCause error  // errors.Is target on the result's cause, or nil
	}{
		{"nil", nil, "", "", nil},
		{"Error as is", apierr.Errorf(apierr.CodeProfileNotFound, "No profile %q.", "work"),
			apierr.CodeProfileNotFound, `No profile "work".`, nil},
		{"wrapped Error", fmt.Errorf("status: %w", apierr.Wrap(apierr.CodeConflict, plain, "Busy.")),
			apierr.CodeConflict, "Busy.", plain},
		{"MaxBytesError", fmt.Errorf("read body: %w", maxBytes),
			apierr.CodePayloadTooLarge, "limit of 10 bytes", maxBytes},
		{"MaxBytesError inside invalid_request", apierr.Wrap(apierr.CodeInvalidRequest, maxBytes, "Bad JSON."),
			apierr.CodePayloadTooLarge, "limit of 10 bytes", maxBytes},
		{"plain error", plain,
			apierr.CodeInternal, "Something went wrong on our side.", plain},
		{"unknown code", &apierr.Error{Code: "teapot", Message: "I am a teapot."},
			apierr.CodeInternal, "Something went wrong on our side.", nil},
		{"upstream timeout", fmt.Errorf("mcp: Dev: %w", &authserver.UpstreamError{Step: authserver.StepProbe, URL: "https://mem.example/mcp", Err: context.DeadlineExceeded}),
			apierr.CodeUpstreamError, "The server https://mem.example/mcp failed at the probe step: the server did not answer in time.", context.DeadlineExceeded},
		{"unreachable", &provider.UnreachableError{Provider: "Supermemory", Host: "mcp.supermemory.ai",
			Err: &authserver.UpstreamError{Step: authserver.StepProbe, URL: "https://mcp.supermemory.ai/mcp", Err: &net.DNSError{Name: "mcp.supermemory.ai", IsNotFound: true}}},
			apierr.CodeUpstreamError, `Supermemory can't be reached from here (mcp.supermemory.ai: the host name "mcp.supermemory.ai" could not be resolved); check the internet connection, then try again.`, nil},
		{"upstream rule", &authserver.UpstreamError{Step: authserver.StepServerMetadata, URL: "https://as.example/.well-known/x", Err: errors.New(`the document names issuer "https://evil.example", not "https://as.example"`)},
			apierr.CodeUpstreamError, `failed at the server metadata step: the document names issuer "https://evil.example"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := toError(tt.err)
			if tt.err == nil {
				if got != nil {
					t.Fatalf("toError(nil) = %v, want nil", got)
				}
				return
			}
			if got == nil {
				t.Fatalf("toError(%v) = nil", tt.err)
			}
			if got.Code != tt.wantCode {
				t.Errorf("code = %q, want %q", got.Code, tt.wantCode)
			}
			if !strings.Contains(got.Error(), tt.wantMsg) {
				t.Errorf("Error() = %q, want it to contain %q", got.Error(), tt.wantMsg)
			}
			if strings.Contains(got.Message, "permission denied") {
				t.Errorf("message %q leaks the cause", got.Message)
			}
			if tt.wantCause != nil && !errors.Is(got, tt.wantCause) {
				t.Errorf("cause of %v does not match %v", got, tt.wantCause)
			}
		})
	}
}
