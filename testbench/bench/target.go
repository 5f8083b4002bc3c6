package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/testbench"
)

// Target says which cluster a run drives: an aggregator that is already running, or
// a local cluster of real reef processes that the run starts and stops.
type Target struct {
	// URL is the aggregator to drive; empty starts a cluster with Cluster.
	URL string
	// Cluster configures the cluster started when URL is empty; Binary is required.
	// Dir defaults to a new temporary directory, removed after a run that passed
	// unless Keep is set and kept after a failure (logs, WAL, disk copies of blocks).
	// ShmDir defaults to a new directory under /dev/shm (where the leaves keep sealed
	// blocks, as deployed), removed at the end unless Keep is set, since it holds
	// memory.
	Cluster testbench.ClusterConfig
	Keep    bool
}

// opened is a target in use.
type opened struct {
	client  *api.Client
	cluster *testbench.Cluster // nil for a URL
	setup   string
	// close stops the cluster (if one was started) and removes its directories
	// unless they are to be kept; it returns the directory kept, if any.
	close func(passed bool) (kept string, err error)
}

// open connects to the target, starting its cluster if it has none.
func (t Target) open(ctx context.Context, progress io.Writer) (*opened, error) {
	if t.URL != "" {
		client := api.NewClient(t.URL)
		if err := client.Ready(ctx); err != nil {
			return nil, fmt.Errorf("cannot use the aggregator at %s: %w", t.URL, err)
		}
		return &opened{client: client, setup: "the running cluster behind " + client.BaseURL,
			close: func(bool) (string, error) { return "", nil }}, nil
	}
	cfg := t.Cluster
	// Temporary directories: the cluster's (kept after a failure, for its logs, WAL
	// and disk blocks) and the shm one (always removed unless Keep: it holds memory).
	tmpDir, tmpShm := "", ""
	cleanup := func(all bool) {
		if tmpShm != "" && !t.Keep {
			_ = os.RemoveAll(tmpShm)
		}
		if tmpDir != "" && all {
			_ = os.RemoveAll(tmpDir)
		}
	}
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "reef-bench-")
		if err != nil {
			return nil, fmt.Errorf("cannot create the cluster directory: %w", err)
		}
		cfg.Dir, tmpDir = d, d
	}
	if cfg.ShmDir == "" {
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			d, err := os.MkdirTemp("/dev/shm", "reef-bench-")
			if err != nil {
				cleanup(true)
				return nil, fmt.Errorf("cannot create a shm directory: %w", err)
			}
			cfg.ShmDir, tmpShm = d, d
		}
	}
	fmt.Fprintf(progress, "starting a cluster in %s\n", cfg.Dir)
	c, err := testbench.StartCluster(ctx, cfg)
	if err != nil {
		cleanup(false)
		fmt.Fprintf(progress, "cluster directory kept: %s\n", cfg.Dir)
		return nil, err
	}
	n := len(c.Leaves())
	aggs := len(c.Processes()) - n
	o := &opened{
		client:  c.Client(),
		cluster: c,
		setup:   fmt.Sprintf("%d leaves + %s, separate processes on this machine", n, plural(aggs, "aggregator")),
	}
	o.close = func(passed bool) (string, error) {
		err := c.Close()
		keep := err != nil || !passed || t.Keep
		cleanup(!keep)
		if err != nil {
			err = errors.Join(err, fmt.Errorf("logs in %s", filepath.Join(c.Dir(), "logs")))
		}
		if keep {
			return c.Dir(), err
		}
		return "", nil
	}
	return o, nil
}

// plural writes n and the noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
