package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/reef-db/reef/testbench"
	"github.com/reef-db/reef/testbench/bench"
)

func runBenchCluster(args []string) int {
	fs := flag.NewFlagSet("reef bench cluster", flag.ExitOnError)
	var c clusterFlags
	c.register(fs, false, testbench.DefaultLeaves)
	port := fs.Int("port", 0, "root aggregator port (default 7070, or a free one if taken)")
	_ = fs.Parse(args)
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "reef bench cluster: unexpected arguments %q\n", fs.Args())
		return 2
	}
	t, err := c.target()
	if err != nil {
		fmt.Fprintln(os.Stderr, "reef bench cluster:", err)
		return 1
	}
	t.Cluster.BasePort = *port
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench.RunCluster(ctx, bench.ClusterOptions{Cluster: t.Cluster, Keep: c.keep}); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "reef bench cluster:", err)
		return 1
	}
	return 0
}
