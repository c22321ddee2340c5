package main

import (
	"bufio"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// readSecret calls prompt and reads one line from r; when r is a
// terminal, with echo turned off before the prompt, so that the key is not
// shown on the screen.
func readSecret(r io.Reader, prompt func()) (string, error) {
	if f, ok := r.(*os.File); ok {
		fd := int(f.Fd())
		if t, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
			quiet := *t
			quiet.Lflag &^= unix.ECHO
			if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err == nil {
				defer unix.IoctlSetTermios(fd, unix.TCSETS, t)
			}
		}
	}
	prompt()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err == io.EOF && line != "" {
		err = nil
	}
	return line, err
}
