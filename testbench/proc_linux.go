//go:build linux

package testbench

import "syscall"

// sysProcAttr puts a child in a process group of its own (so that a terminal's Ctrl-C
// reaches only the harness, which then stops the cluster in order) and has the kernel
// SIGKILL it when the harness dies, so that no reef process outlives its cluster.
//
// Pdeathsig fires when the OS thread that started the child exits. The Go runtime
// ends a thread only when a goroutine locked to it with runtime.LockOSThread returns
// without unlocking, so the harness must not start processes from such a goroutine.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
