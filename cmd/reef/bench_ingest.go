package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/reef-db/reef/testbench/bench"
	"github.com/reef-db/reef/testbench/benchq/spec"
)

func runBenchIngest(args []string) int {
	fs := flag.NewFlagSet("reef bench ingest", flag.ExitOnError)
	var o bench.IngestConfig
	fs.IntVar(&o.Rows, "rows", spec.DefaultRows, "rows of the standard dataset")
	fs.IntVar(&o.Leaves, "leaves", bench.DefaultIngestLeaves, "leaf processes of the reef cluster")
	fs.IntVar(&o.BatchRows, "batch-rows", bench.DefaultIngestBatchRows, "rows per ingest request")
	fs.IntVar(&o.Concurrency, "concurrency", bench.DefaultIngestConcurrency, "ingest requests in flight")
	var leafArgs stringList
	fs.Var(&leafArgs, "leaf-arg", "extra argument for every leaf, e.g. --leaf-arg=--wal-sync=none (repeatable)")
	fs.BoolVar(&o.Direct, "direct", false, "post straight to the leaves, in turn, instead of through the aggregator")
	fs.StringVar(&o.OutDir, "out", "", "report directory (default bench-results/ingest-<timestamp>)")
	fs.StringVar(&o.WorkDir, "work", "", "directory for the cluster and the NDJSON file while it runs (default: a temporary one)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the work directory")
	fs.BoolVar(&o.NoDuckDB, "no-duckdb", false, "measure reef alone")
	fs.StringVar(&o.DuckBench, "duckdb-bench", "", "prebuilt DuckDB side (testbench/duckbench); default: build it from the repository")
	_ = fs.Parse(args)
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "reef bench ingest: unexpected arguments %q\n", fs.Args())
		return 2
	}
	o.LeafArgs = leafArgs
	bin, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "reef bench ingest: cannot find the reef binary:", err)
		return 1
	}
	o.Binary = bin
	if o.OutDir == "" {
		o.OutDir = bench.DefaultOutDir("ingest", time.Now())
	}
	o.Command = strings.TrimSpace("reef bench ingest " + strings.Join(args, " "))
	o.Progress = os.Stderr

	return runReport("reef bench ingest", o.OutDir, func(ctx context.Context) (*bench.Report, error) {
		return bench.RunIngest(ctx, o)
	})
}
