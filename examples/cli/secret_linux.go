package main

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// hideInput turns the echo of the terminal r off, so that what is typed
// is not shown, and returns what turns it back on. r that is not a
// terminal is left alone.
func hideInput(r io.Reader) (restore func()) {
	f, ok := r.(*os.File)
	if !ok {
		return func() {}
	}
	fd := int(f.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return func() {}
	}
	quiet := *t
	quiet.Lflag &^= unix.ECHO
	if unix.IoctlSetTermios(fd, unix.TCSETS, &quiet) != nil {
		return func() {}
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, t) }
}
