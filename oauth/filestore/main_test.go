package filestore

import (
	"testing"

	"github.com/memconnect/memconnect/internal/testsupport/testkit"
)

// The parallel tests of this package spend most of their time waiting on
// child processes, a lock or a deadline.
func TestMain(m *testing.M) { testkit.RunWaiting(m) }
