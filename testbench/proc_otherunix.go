//go:build unix && !linux

package testbench

import "syscall"

// sysProcAttr puts a child in a process group of its own. Without Linux's Pdeathsig
// a child outlives a harness that dies without calling Cluster.Close.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
