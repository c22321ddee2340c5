package errkind_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/memconnect/memconnect/errkind"
)

func TestOf(t *testing.T) {
	conflict := errkind.New(errkind.Conflict, "pkg: conflict", "Another sign-in is waiting.")
	down := errkind.New(errkind.Unavailable, "pkg: store down", "Try again.").RetryAfter(2 * time.Second)
	upstream := errkind.Wrap(errkind.Upstream, errors.New("dial tcp: refused"), "The server is unreachable.")
	tests := []struct {
		name   string
		err    error
		kind   errkind.Kind
		detail string
		retry  time.Duration
	}{
		{"plain", errors.New("x"), errkind.Unknown, "", 0},
		{"sentinel", conflict, errkind.Conflict, "Another sign-in is waiting.", 0},
		{"wrapped sentinel", fmt.Errorf("connect: %w", conflict), errkind.Conflict, "Another sign-in is waiting.", 0},
		{"the outer classification wins", errkind.Wrap(errkind.Upstream, conflict, "Outer."), errkind.Upstream, "Outer.", 0},
		{"an unavailable store wins from below", fmt.Errorf("a: %w", errkind.Wrap(errkind.Internal, fmt.Errorf("b: %w", down), "Outer.")), errkind.Unavailable, "Try again.", 2 * time.Second},
		{"the deepest local failure wins", errkind.Wrap(errkind.Internal, errkind.Wrap(errkind.Upstream, errkind.New(errkind.Internal, "cfg", "Fix the file."), "Mid."), "Outer."), errkind.Internal, "Fix the file.", 0},
		{"joined", errors.Join(errors.New("x"), upstream), errkind.Upstream, "The server is unreachable.", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := errkind.Of(tt.err)
			if tt.kind == errkind.Unknown {
				if ok {
					t.Fatalf("Of = %v (%v); want unclassified", c, c.Kind())
				}
				return
			}
			if !ok || c.Kind() != tt.kind || c.Message() != tt.detail {
				t.Fatalf("Of = %v, %v; want %v %q", c, ok, tt.kind, tt.detail)
			}
			if !errkind.Is(tt.err, tt.kind) {
				t.Errorf("Is(%v) = false", tt.kind)
			}
			if got := errkind.RetryAfter(tt.err); got != tt.retry {
				t.Errorf("RetryAfter = %v, want %v", got, tt.retry)
			}
		})
	}
	if !errors.Is(fmt.Errorf("w: %w", down), down) || errors.Is(conflict, down) {
		t.Error("a sentinel is not matched by errors.Is as itself alone")
	}
}
