//go:build linux

package testbench

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
)

// processRuns reports whether process pid exists and is not a zombie and, when argv
// is given, runs that command line (the program may differ: a deploy may switch
// binaries), so that a reused pid is not taken for the leaf.
func processRuns(pid int, argv []string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X' {
		return false
	}
	if argv == nil {
		return true
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	got := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
	return len(got) == len(argv) && slices.Equal(got[1:], argv[1:])
}
