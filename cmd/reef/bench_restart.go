package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/reef-db/reef/testbench/restartbench"
)

// runBenchRestart is `reef bench restart`: exec→ready of a big leaf through the
// handoff, crash recovery and disk (package restartbench).
func runBenchRestart(args []string) int {
	fs := flag.NewFlagSet("reef bench restart", flag.ExitOnError)
	size := byteSize(restartbench.DefaultBytes)
	fs.Var(&size, "size", "block data the leaf holds (e.g. 256MiB, 4GiB)")
	runs := fs.Int("runs", restartbench.DefaultRuns, "restarts measured per path")
	dir := fs.String("dir", "", "work directory for the leaf's data and log (default: a temporary one, removed)")
	shmDir := fs.String("shm-dir", "", "the leaf's shm directory (default /dev/shm/reef-bench-restart-<pid>, removed)")
	out := fs.String("out", "", "report directory (default bench-results/restart-<timestamp>)")
	drop := fs.Bool("drop-caches", false, "drop the page cache before each disk start (needs root)")
	_ = fs.Parse(args)

	bin, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "reef bench restart:", err)
		return 1
	}
	if *out == "" {
		*out = filepath.Join("bench-results", "restart-"+time.Now().UTC().Format("20060102-150405"))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := restartbench.Run(ctx, restartbench.Config{
		Binary: bin, Dir: *dir, ShmDir: *shmDir, Bytes: int64(size), Runs: *runs, DropCaches: *drop, Progress: os.Stderr,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "reef bench restart:", err)
		return 1
	}
	fmt.Print(res.Markdown())
	if err := res.Write(*out); err != nil {
		fmt.Fprintln(os.Stderr, "reef bench restart:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "report in %s (report.md, report.json)\n", *out)
	return 0
}
