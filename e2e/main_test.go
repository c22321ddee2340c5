package e2e

import (
	"os"
	"testing"
)

// TestMain runs the tests, or, in a process started by a multi-process test,
// only that child's work (see [childEnv]). It removes the CLI build.
func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	code := m.Run()
	if cliBuild.dir != "" {
		os.RemoveAll(cliBuild.dir)
	}
	os.Exit(code)
}
