//go:build unix

package testbench

import "syscall"

// Signals the harness sends.
var (
	sigTerm = syscall.SIGTERM
	sigKill = syscall.SIGKILL
	sigStop = syscall.SIGSTOP
	sigCont = syscall.SIGCONT
)

// signalGroup sends sig to the process group led by pid: the reef process and any
// child it started. A process that leads no group (one started by another program
// and adopted) gets the signal alone.
func signalGroup(pid int, sig syscall.Signal) error {
	err := syscall.Kill(-pid, sig)
	if err == syscall.ESRCH {
		err = syscall.Kill(pid, sig)
	}
	if err != nil && err != syscall.ESRCH {
		return err
	}
	return nil
}
