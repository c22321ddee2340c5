// Package browser opens a URL in the desktop's browser, for the example
// commands: the CLI's login and the example server's -open-browser.
package browser

import (
	"os/exec"
	"runtime"
)

// Open asks the desktop to open u, without waiting for the browser.
func Open(u string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }() // reap it
	return nil
}
