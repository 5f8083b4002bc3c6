//go:build unix

package benchq

import (
	"os/exec"
	"syscall"
)

// ownGroup makes cmd lead a process group of its own, so that killGroup also ends
// any child it started (which would otherwise hold its pipes open).
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd) }
}

// killGroup sends SIGKILL to cmd's process group.
func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if err == syscall.ESRCH {
		err = nil
	}
	return err
}
