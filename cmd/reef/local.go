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

	"github.com/reef-db/reef/shell"
	"github.com/reef-db/reef/testbench"
)

func runLocal(args []string) int {
	fs := flag.NewFlagSet("reef local", flag.ExitOnError)
	var o testbench.LocalOptions
	fs.IntVar(&o.Leaves, "leaves", testbench.DefaultLeaves, "number of leaf processes")
	fs.IntVar(&o.Aggregators, "aggregators", 1, "number of aggregators (1: one root)")
	fs.StringVar(&o.Dir, "dir", "", "data directory (default: a new temporary one, removed on a clean stop)")
	fs.BoolVar(&o.KeepDir, "keep", false, "keep the temporary data directory after stopping")
	fs.IntVar(&o.Port, "port", 0, "root aggregator port (default 7070, or a free one if taken)")
	fs.IntVar(&o.DemoRows, "demo-rows", 0, fmt.Sprintf("demo rows to load into table events (default %d; negative: none)", testbench.DefaultDemoRows))
	fs.StringVar(&o.ReadyFile, "ready-file", "", "write the aggregator URL to this file once ready")
	withShell := fs.Bool("shell", false, "open the interactive shell on the cluster; stop the cluster when it exits")
	_ = fs.Parse(args)

	if !*withShell {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := testbench.RunLocal(ctx, o); err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "reef local:", err)
			return 1
		}
		return 0
	}

	// With the shell in the foreground, Ctrl-C belongs to the shell (it cancels the
	// running query); the cluster stops when the shell exits or on SIGTERM/SIGHUP.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	signal.Ignore(os.Interrupt)
	if o.ReadyFile == "" {
		tmp, err := os.MkdirTemp("", "reef-ready-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "reef local:", err)
			return 1
		}
		defer os.RemoveAll(tmp)
		o.ReadyFile = filepath.Join(tmp, "aggregator")
	}
	done := make(chan error, 1)
	go func() { done <- testbench.RunLocal(ctx, o) }()
	addr, err := waitReady(ctx, o.ReadyFile, done)
	if err != nil {
		stop()
		fmt.Fprintln(os.Stderr, "reef local:", err)
		return 1
	}
	signal.Reset(os.Interrupt)
	code := shell.Run(ctx, shell.Options{Addr: addr, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "reef local:", err)
		return 1
	}
	return code
}

// waitReady waits for RunLocal to write the aggregator URL into path.
func waitReady(ctx context.Context, path string, done <-chan error) (string, error) {
	for {
		if data, err := os.ReadFile(path); err == nil && len(data) > 0 {
			return strings.TrimSpace(string(data)), nil
		}
		select {
		case err := <-done:
			if err == nil {
				err = errors.New("cluster stopped before it was ready")
			}
			return "", err
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
