//go:build !linux && !darwin && !freebsd && !netbsd && !openbsd && !dragonfly

package main

import "os"

// isTerminal cannot tell here; output is written wherever it goes.
func isTerminal(f *os.File) bool { return false }
