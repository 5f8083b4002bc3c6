//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package shell

// Elsewhere the shell treats its streams as plain files: no line editing, no pager.

func isTerminal(fd uintptr) bool { return false }

func terminalSize(fd uintptr) (rows, cols int, ok bool) { return 0, 0, false }
