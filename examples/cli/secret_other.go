//go:build !linux

package main

import "io"

// hideInput would turn the terminal's echo off; only the Linux build
// does.
func hideInput(io.Reader) (restore func()) { return func() {} }
