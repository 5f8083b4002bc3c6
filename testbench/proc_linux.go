//go:build linux

package testbench

import "syscall"

// sysProcAttr puts a child in a process group of its own (so that a terminal's Ctrl-C
// reaches only the harness, which then stops the cluster in order) and has the kernel
// SIGKILL it when the harness dies, so that no reef process outlives its cluster.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
