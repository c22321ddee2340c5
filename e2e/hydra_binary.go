package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// HydraEnv names the environment variable that overrides the Hydra binary
// [StartHydra] runs. When it is empty, StartHydra runs scripts/build-hydra.sh,
// which builds Hydra once into the user's cache and prints its path.
const HydraEnv = "MEMCONNECT_HYDRA"

// buildHydraScript is the repository-relative path of the build script.
const buildHydraScript = "scripts/build-hydra.sh"

// hydraBinary returns the path of a runnable Hydra binary, building it with
// scripts/build-hydra.sh when needed. It fails the test when there is none.
func hydraBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(HydraEnv); p != "" {
		if err := checkExecutable(p); err != nil {
			t.Fatalf("e2e: %s=%q: %v", HydraEnv, p, err)
		}
		return p
	}
	script, err := findUp(buildHydraScript)
	if err != nil {
		t.Fatalf("e2e: no Hydra binary: %v (set %s or run from a memconnect checkout)", err, HydraEnv)
	}
	// The script is silent when the binary is already built (~30 ms). A cold
	// build takes minutes, so its progress goes to stderr as it happens.
	var stderr bytes.Buffer
	cmd := exec.Command("bash", script)
	cmd.Stderr = io.MultiWriter(os.Stderr, &stderr)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("e2e: bash %s failed: %v\n%s\n(run `bash %s` by hand, or set %s)",
			buildHydraScript, err, tail(stderr.Bytes(), 4096), buildHydraScript, HydraEnv)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	p := strings.TrimSpace(lines[len(lines)-1])
	if err := checkExecutable(p); err != nil {
		t.Fatalf("e2e: %s printed %q: %v", buildHydraScript, p, err)
	}
	return p
}

// checkExecutable reports whether path is a regular file with an execute bit.
func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("not an executable file (mode %v)", fi.Mode())
	}
	return nil
}

// findUp looks for rel in the working directory and each of its parents, and
// returns the first match. go test runs in the package directory, so this
// finds the repository's files from any package of the e2e module.
func findUp(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%s not found in any parent of the working directory", rel)
		}
		dir = parent
	}
}

// tail returns at most the last n bytes of b, for error messages.
func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
