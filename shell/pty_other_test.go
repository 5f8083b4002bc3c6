//go:build !linux

package shell

// ptyChild: the pseudo-terminal test runs on Linux only.
func ptyChild() bool { return false }
