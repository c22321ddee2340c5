package memconnect_test

import (
	"testing"

	"github.com/memconnect/memconnect/internal/testsupport/testkit"
)

// Many parallel tests of this package wait on a stream, a deadline or the
// Python agent rather than compute (device polls run on a fake clock).
func TestMain(m *testing.M) { testkit.RunWaiting(m) }
