package memconnect_test

import (
	"testing"

	"github.com/memconnect/memconnect/internal/testsupport/testkit"
)

// Many parallel tests of this package wait on a sign-in's poll, a stream or
// the Python agent rather than compute.
func TestMain(m *testing.M) { testkit.RunWaiting(m) }
