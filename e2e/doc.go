// Package e2e holds memconnect's end-to-end tests and their harness: a real
// Ory Hydra v2.3.0 authorization server ([StartHydra]) with a login/consent
// app of our own, and a headless Chromium driven by chromedp ([NewBrowser]).
//
// The package is its own module (github.com/memconnect/memconnect/e2e) so
// that the browser and Hydra dependencies stay out of the library's go.mod.
// It builds against the working tree through `replace ... => ../`.
//
// The tests need /usr/bin/chromium and a Hydra binary. `make test` at the
// repository root installs both (scripts/install-chromium.sh,
// scripts/build-hydra.sh); [StartHydra] also runs the build script itself
// when the binary is missing. Set MEMCONNECT_HYDRA to use another Hydra
// binary and MEMCONNECT_CHROMIUM to use another Chromium. With -short every
// test that needs either one is skipped.
//
// The memconnect command (examples/cli) is a tool dependency of this module
// (the `tool` line in go.mod), so that the tests can `go build` it with this
// module's build list, once per run.
package e2e
