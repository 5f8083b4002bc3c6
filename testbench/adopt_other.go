//go:build unix && !linux

package testbench

import "syscall"

// processRuns reports whether process pid exists (argv cannot be checked here).
func processRuns(pid int, argv []string) bool {
	return syscall.Kill(pid, 0) == nil
}
