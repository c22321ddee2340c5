package mcp_test

import (
	"testing"

	"github.com/memconnect/memconnect/internal/testsupport/testkit"
)

// Several parallel tests of this package wait for a connect's deadline
// against a server that never answers.
func TestMain(m *testing.M) { testkit.RunWaiting(m) }
