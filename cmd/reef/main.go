// Command reef is the single reef binary: one subcommand per process or tool.
//
//	reef leaf        a leaf server (holds data, answers partial queries)
//	reef aggregator  an aggregator (routes ingest, fans out queries, merges)
//	reef shell       the interactive SQL shell
//	reef local       a local cluster with demo data, for trying reef out
//	reef gen         the testbench event generator (NDJSON to stdout or a URL)
//	reef bench       benchmarks with reports (reef bench queries, …)
//	reef dump        export a block file as an Arrow IPC file
//	reef cluster     read and update a local cluster's cluster.json (for scripts)
//
// All logic lives in the packages; this file only parses flags and wires them.
package main

import (
	"fmt"
	"os"
)

var commands = []struct {
	name, help string
	run        func(args []string) int
}{
	{"leaf", "run a leaf server", runLeaf},
	{"aggregator", "run an aggregator", runAggregator},
	{"shell", "interactive SQL shell", runShell},
	{"local", "start a local cluster with demo data", runLocal},
	{"gen", "generate demo events as NDJSON (to stdout or an ingest URL)", runGen},
	{"bench", "benchmarks: reef bench queries (side by side with DuckDB), …", runBench},
	{"dump", "export a block file (.blk or .blk.sz) as an Arrow IPC file", runDump},
	{"cluster", "read and update a local cluster's cluster.json and leaf stats (for scripts)", runCluster},
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: reef COMMAND [flags]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  %-11s %s\n", c.name, c.help)
	}
	fmt.Fprintf(os.Stderr, "\n'reef COMMAND -h' lists a command's flags.\n")
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	name := os.Args[1]
	for _, c := range commands {
		if c.name == name {
			os.Exit(c.run(os.Args[2:]))
		}
	}
	if name == "-h" || name == "--help" || name == "help" {
		usage()
		os.Exit(0)
	}
	fmt.Fprintf(os.Stderr, "reef: unknown command %q\n\n", name)
	usage()
	os.Exit(2)
}
