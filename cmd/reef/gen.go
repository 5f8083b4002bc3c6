package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/testbench"
)

func runGen(args []string) int {
	fs := flag.NewFlagSet("reef gen", flag.ExitOnError)
	rows := fs.Int("rows", 1000, "number of events")
	seed := fs.Uint64("seed", 1, "generator seed (same seed, same events)")
	end := fs.Int64("end", 0, "unix time of the last event (default: now)")
	span := fs.Duration("span", 24*time.Hour, "time span the events cover, ending at --end")
	url := fs.String("url", "", "aggregator or leaf base URL to ingest into (default: NDJSON to stdout)")
	table := fs.String("table", "events", "table to ingest into (with --url)")
	batch := fs.Int("batch-rows", testbench.DefaultBatchRows, "rows per ingest request (with --url)")
	conc := fs.Int("concurrency", 2, "ingest requests in flight (with --url)")
	_ = fs.Parse(args)

	cfg := testbench.GenConfig{Seed: *seed, Rows: *rows, Span: *span}
	if *end != 0 {
		cfg.End = time.Unix(*end, 0)
	}
	if *url == "" {
		w := bufio.NewWriterSize(os.Stdout, 1<<20)
		if _, err := testbench.WriteNDJSON(w, cfg); err != nil {
			fmt.Fprintln(os.Stderr, "reef gen:", err)
			return 1
		}
		if err := w.Flush(); err != nil {
			fmt.Fprintln(os.Stderr, "reef gen:", err)
			return 1
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := testbench.Load(ctx, api.NewClient(*url), *table, cfg, testbench.LoadOptions{
		BatchRows: *batch, Concurrency: *conc, Progress: os.Stderr,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "reef gen:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "%+v\n", st)
	return 0
}
