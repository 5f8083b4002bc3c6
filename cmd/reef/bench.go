package main

import (
	"fmt"
	"os"
)

// benchCommands are the subcommands of `reef bench`; a new benchmark adds a line.
var benchCommands = []struct {
	name, help string
	run        func(args []string) int
}{
	{"queries", "Q1–Q5 on a local cluster, side by side with DuckDB; writes a report and a chart", runBenchQueries},
	{"cluster", "start N leaves and M aggregators as processes until Ctrl-C", runBenchCluster},
	{"load", "bounded ingest load with batch ids; checks every acknowledged row is there once", runBenchLoad},
	{"query-load", "concurrent query clients: latency percentiles and coverage over time", runBenchQueryLoad},
	{"chaos", "load and queries while leaves are killed, stopped and restarted; checks the rows", runBenchChaos},
	{"deploy", "load and queries during scripts/rolling-deploy.sh; time per leaf, coverage, rows lost", runBenchDeploy},
	{"ingest", "NDJSON ingest speed of a 2-leaf cluster beside DuckDB's read_json", runBenchIngest},
	{"restart", "exec→ready of a big leaf through the shm handoff, crash recovery and disk", runBenchRestart},
}

func benchUsage() {
	fmt.Fprintf(os.Stderr, "usage: reef bench BENCHMARK [flags]\n\nbenchmarks:\n")
	for _, c := range benchCommands {
		fmt.Fprintf(os.Stderr, "  %-11s %s\n", c.name, c.help)
	}
	fmt.Fprintf(os.Stderr, "\n'reef bench BENCHMARK -h' lists a benchmark's flags.\n")
}

// runBench dispatches `reef bench NAME …` to the benchmark of that name.
func runBench(args []string) int {
	if len(args) == 0 {
		benchUsage()
		return 2
	}
	name := args[0]
	for _, c := range benchCommands {
		if c.name == name {
			return c.run(args[1:])
		}
	}
	if name == "-h" || name == "--help" || name == "help" {
		benchUsage()
		return 0
	}
	fmt.Fprintf(os.Stderr, "reef bench: unknown benchmark %q\n\n", name)
	benchUsage()
	return 2
}
