package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/reef-db/reef/testbench"
)

// ClusterOptions configure RunCluster.
type ClusterOptions struct {
	// Cluster is the cluster to start; Binary is required. Dir defaults to a new
	// temporary directory, removed after a clean stop unless Keep is set; a given Dir
	// is always kept.
	Cluster testbench.ClusterConfig
	Keep    bool
	// Out receives the process list and messages (default os.Stdout).
	Out io.Writer
}

// RunCluster is `reef bench cluster`: it starts the cluster, prints every process
// (role, id, URL, pid, log) and where cluster.json is, then runs until ctx is
// cancelled (Ctrl-C), when it stops every process. When a process fails to start or
// to stop cleanly, or died while the cluster ran, the directory with its data and
// logs is kept and named.
func RunCluster(ctx context.Context, o ClusterOptions) (err error) {
	out := o.Out
	if out == nil {
		out = os.Stdout
	}
	cfg := o.Cluster
	temporary := false
	if cfg.Dir == "" {
		if cfg.Dir, err = os.MkdirTemp("", "reef-cluster-"); err != nil {
			return fmt.Errorf("cannot create the cluster directory: %w", err)
		}
		temporary = !o.Keep
	}
	c, err := testbench.StartCluster(ctx, cfg)
	if err != nil {
		fmt.Fprintf(out, "cluster directory kept: %s\n", cfg.Dir)
		if ctx.Err() != nil {
			return nil // interrupted while starting
		}
		return err
	}
	defer func() {
		fmt.Fprintln(out, "stopping the cluster")
		if cerr := c.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		if err != nil || !temporary {
			fmt.Fprintf(out, "cluster directory kept: %s\n", c.Dir())
			return
		}
		if rerr := os.RemoveAll(c.Dir()); rerr != nil {
			err = fmt.Errorf("cannot remove the cluster directory: %w", rerr)
		}
	}()
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tID\tURL\tPID\tLOG")
	for _, p := range c.Processes() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", p.Role, p.ID, p.URL, p.PID, p.Log)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "cluster file %s\n", filepath.Join(c.Dir(), testbench.ClusterFileName))
	fmt.Fprintf(out, "aggregator %s\n", c.AggregatorURL())
	fmt.Fprintln(out, "Ctrl-C stops the cluster")
	<-ctx.Done()
	return nil
}
