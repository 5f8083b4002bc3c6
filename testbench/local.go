package testbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Defaults of RunLocal.
const (
	// DefaultDemoRows is the size of the demo dataset: a few seconds to load.
	DefaultDemoRows = 500_000
	// DemoTable is the table the demo dataset goes into.
	DemoTable = "events"
	// DefaultDemoSeed selects the demo dataset.
	DefaultDemoSeed = 1
)

// LocalOptions configure RunLocal. The zero value runs the default cluster.
type LocalOptions struct {
	// Binary is the reef binary to run; default: the running executable.
	Binary string
	// Dir is the cluster's data dir. Default: a new directory under os.TempDir(),
	// removed again after a clean stop unless KeepDir is set. A given Dir is always
	// kept, and a second run on it finds the data of the first.
	Dir     string
	KeepDir bool
	// Leaves and Aggregators: see ClusterConfig (defaults 4 and 1).
	Leaves      int
	Aggregators int
	// Port is the root aggregator's port (default DefaultBasePort; a taken port is
	// replaced by a free one).
	Port int
	// DemoRows is the size of the demo dataset loaded into table events: 0 means
	// DefaultDemoRows, a negative number none. Nothing is loaded either when the
	// table already has rows (a reused Dir).
	DemoRows int
	// Seed selects the demo dataset (default DefaultDemoSeed). Its events end now and
	// span the last 24 hours.
	Seed uint64
	// ReadyFile, when set, receives the aggregator URL and a newline once the cluster
	// is ready and the demo data is loaded (written by rename, so its presence means it
	// is complete); it is removed when RunLocal returns. Scripts wait for it, e.g.
	// `reef local --ready-file F & until [ -s F ]; do sleep 0.1; done; reef shell --addr $(cat F)`.
	ReadyFile string
	// ExtraLeafArgs and ExtraAggArgs are appended to the processes' command lines.
	ExtraLeafArgs []string
	ExtraAggArgs  []string
	// Out receives the messages for the user (default os.Stdout).
	Out io.Writer
}

// RunLocal is `reef local`: it starts a cluster on this machine, prints
//
//	data dir DIR
//	aggregator http://127.0.0.1:PORT
//
// (the second line exactly so, once every process is ready), loads the demo dataset
// into table events with progress lines, prints how to query it, and then runs until
// ctx is cancelled (Ctrl-C), when it stops every process and returns nil. An error
// means the cluster could not start, the demo could not be loaded, or a process did
// not stop cleanly; the data dir and its logs are then kept.
func RunLocal(ctx context.Context, opts LocalOptions) (err error) {
	out := opts.Out
	if out == nil {
		out = os.Stdout
	}
	if opts.Binary == "" {
		if opts.Binary, err = os.Executable(); err != nil {
			return fmt.Errorf("cannot find the reef binary to run: %w", err)
		}
	}
	temporary := false
	if opts.Dir == "" {
		if opts.Dir, err = os.MkdirTemp("", "reef-local-"); err != nil {
			return fmt.Errorf("cannot make a data dir: %w", err)
		}
		temporary = !opts.KeepDir
	}
	if temporary {
		fmt.Fprintf(out, "data dir %s (removed on exit; set a dir to keep it)\n", opts.Dir)
	} else {
		fmt.Fprintf(out, "data dir %s\n", opts.Dir)
	}
	defer func() {
		if err != nil {
			fmt.Fprintf(out, "logs kept in %s\n", filepath.Join(opts.Dir, "logs"))
			return
		}
		if temporary {
			if rerr := os.RemoveAll(opts.Dir); rerr != nil {
				err = fmt.Errorf("cannot remove the data dir: %w", rerr)
			}
		}
	}()

	start := time.Now()
	c, err := StartCluster(ctx, ClusterConfig{
		Binary:        opts.Binary,
		Dir:           opts.Dir,
		Leaves:        opts.Leaves,
		Aggregators:   opts.Aggregators,
		BasePort:      opts.Port,
		ExtraLeafArgs: opts.ExtraLeafArgs,
		ExtraAggArgs:  opts.ExtraAggArgs,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while starting
		}
		return err
	}
	defer func() {
		fmt.Fprintln(out, "stopping the cluster")
		t := time.Now()
		if cerr := c.Close(); cerr != nil {
			err = errors.Join(err, cerr)
			return
		}
		fmt.Fprintf(out, "stopped in %.1fs\n", time.Since(t).Seconds())
	}()
	url := c.AggregatorURL()
	fmt.Fprintf(out, "started %d leaves in %.1fs (logs in %s)\n", len(c.Leaves()), time.Since(start).Seconds(), filepath.Join(c.Dir(), "logs"))
	fmt.Fprintf(out, "aggregator %s\n", url)

	if err := loadDemo(ctx, c, opts, out); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if opts.ReadyFile != "" {
		if err := writeFileAtomic(opts.ReadyFile, []byte(url+"\n")); err != nil {
			return fmt.Errorf("cannot write the ready file: %w", err)
		}
		defer os.Remove(opts.ReadyFile)
	}
	fmt.Fprintf(out, "ready: query it with\n  reef shell --addr %s\n  curl -sG %s/v1/sql --data-urlencode \"q=SELECT service, count(*), p99(latency_ms) FROM %s GROUP BY service\"\nCtrl-C stops the cluster (with --shell: leaving the shell does)\n", url, url, DemoTable)
	<-ctx.Done()
	return nil
}

// loadDemo loads the demo dataset unless it is switched off or the table has rows.
func loadDemo(ctx context.Context, c *Cluster, opts LocalOptions, out io.Writer) error {
	rows := opts.DemoRows
	switch {
	case rows < 0:
		return nil
	case rows == 0:
		rows = DefaultDemoRows
	}
	client := c.Client()
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	t, err := client.Table(tctx, DemoTable)
	cancel()
	if err == nil && t.Rows > 0 {
		fmt.Fprintf(out, "table %s already has %d rows; not loading the demo dataset\n", DemoTable, t.Rows)
		return nil
	}
	seed := opts.Seed
	if seed == 0 {
		seed = DefaultDemoSeed
	}
	fmt.Fprintf(out, "loading %d demo rows into table %s\n", rows, DemoTable)
	_, err = Load(ctx, client, DemoTable, GenConfig{Seed: seed, Rows: rows}, LoadOptions{Progress: out})
	if err != nil {
		return fmt.Errorf("cannot load the demo dataset: %w", err)
	}
	return nil
}
