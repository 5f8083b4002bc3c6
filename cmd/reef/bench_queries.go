package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/reef-db/reef/testbench/benchq"
	"github.com/reef-db/reef/testbench/benchq/spec"
)

func runBenchQueries(args []string) int {
	fs := flag.NewFlagSet("reef bench queries", flag.ExitOnError)
	var o benchq.Options
	fs.IntVar(&o.Rows, "rows", spec.DefaultRows, "rows of the standard dataset")
	fs.IntVar(&o.Runs, "runs", benchq.DefaultRuns, "timed runs per query, after one warm-up run")
	fs.IntVar(&o.Leaves, "leaves", benchq.DefaultLeaves, "leaf processes of the reef cluster")
	fs.StringVar(&o.OutDir, "out", "", "report directory (default bench-results/queries-<timestamp>)")
	fs.StringVar(&o.DuckBench, "duckdb-bench", "", "prebuilt DuckDB side (testbench/duckbench); default: build it from the repository")
	fs.BoolVar(&o.NoDuckDB, "no-duckdb", false, "measure reef alone")
	fs.StringVar(&o.WorkDir, "work", "", "directory for the cluster's data while it runs (default: a temporary one)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the work directory (cluster data and logs)")
	_ = fs.Parse(args)
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "reef bench queries: unexpected arguments %q\n", fs.Args())
		return 2
	}

	bin, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "reef bench queries: cannot find the reef binary:", err)
		return 1
	}
	o.Binary = bin
	if o.OutDir == "" {
		o.OutDir = filepath.Join("bench-results", "queries-"+time.Now().Format("20060102-150405"))
	}
	o.Command = "reef bench queries " + strings.Join(args, " ")
	o.Command = strings.TrimSpace(o.Command)
	o.Progress = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	t0 := time.Now()
	rep, err := benchq.Run(ctx, o)
	if rep != nil {
		fmt.Print(rep.Table())
		if rep.DuckDBSkipped != "" {
			fmt.Printf("\nDuckDB not measured: %s\n", rep.DuckDBSkipped)
		}
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "reef bench queries: interrupted")
		} else {
			fmt.Fprintln(os.Stderr, "reef bench queries:", err)
		}
		return 1
	}
	fmt.Fprintf(os.Stderr, "report in %s (%s, %s, %s); took %s\n", o.OutDir,
		benchq.ReportMarkdown, benchq.ReportJSON, benchq.ReportChart, time.Since(t0).Round(time.Second))
	return 0
}
