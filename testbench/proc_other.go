//go:build !unix

package testbench

import (
	"errors"
	"syscall"
)

// The harness needs process groups and job-control signals; elsewhere it can start
// processes but not stop, pause or resume them.
var (
	sigTerm = syscall.Signal(15)
	sigKill = syscall.Signal(9)
	sigStop = syscall.Signal(19)
	sigCont = syscall.Signal(18)
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

func signalGroup(pid int, sig syscall.Signal) error {
	return errors.New("cannot signal a process: not supported on this platform")
}
