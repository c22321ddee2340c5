//go:build !linux

package main

import (
	"bufio"
	"io"
)

// readSecret calls prompt and reads one line from r. Only the Linux build
// turns the terminal's echo off.
func readSecret(r io.Reader, prompt func()) (string, error) {
	prompt()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err == io.EOF && line != "" {
		err = nil
	}
	return line, err
}
