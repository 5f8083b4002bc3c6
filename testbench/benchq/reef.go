package benchq

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/testbench"
	"github.com/reef-db/reef/testbench/benchq/spec"
)

const (
	// sealAge is the leaves' --seal-age: after the load the benchmark waits
	// 2×sealAge so that every open block is sealed before memory is read.
	sealAge = time.Second
	// queryTimeout bounds one query.
	queryTimeout = 2 * time.Minute
	// statsTimeout bounds one stats request.
	statsTimeout = 10 * time.Second
	// memoryPerRow sizes each leaf's --memory-limit (at least minMemoryLimit) so that
	// retention never drops benchmark data.
	memoryPerRow   = 512
	minMemoryLimit = 2 << 30
)

// runReef starts a cluster in dir, loads the dataset, measures and stops it.
func runReef(ctx context.Context, opts Options, dir string) (_ *spec.Engine, err error) {
	shmDir := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		// Leaves keep sealed blocks in shared memory, as in a deployment.
		if shmDir, err = os.MkdirTemp("/dev/shm", "reef-bench-"); err != nil {
			return nil, fmt.Errorf("cannot create a shm directory: %w", err)
		}
		defer os.RemoveAll(shmDir)
	}
	limit := max(int64(minMemoryLimit), int64(opts.Rows)*memoryPerRow/int64(opts.Leaves))
	fmt.Fprintf(opts.Progress, "reef: starting the cluster in %s\n", dir)
	c, err := testbench.StartCluster(ctx, testbench.ClusterConfig{
		Binary:        opts.Binary,
		Dir:           dir,
		ShmDir:        shmDir,
		Leaves:        opts.Leaves,
		ExtraLeafArgs: []string{"--memory-limit", fmt.Sprint(limit), "--seal-age", sealAge.String()},
	})
	if err != nil {
		return nil, fmt.Errorf("cannot start the reef cluster: %w", err)
	}
	defer func() {
		if cerr := c.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("cannot stop the reef cluster: %w", cerr)
		}
	}()

	e := &spec.Engine{Engine: "reef", Setup: fmt.Sprintf("%d leaves + 1 aggregator, separate processes on this machine", opts.Leaves)}
	client := c.Client()
	st, err := testbench.Load(ctx, client, spec.Table, spec.Dataset(opts.Rows), testbench.LoadOptions{
		Progress:      opts.Progress,
		ProgressEvery: 2 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot load the dataset into reef: %w", err)
	}
	if st.Rows != int64(opts.Rows) {
		return nil, fmt.Errorf("cannot benchmark reef: it acknowledged %d of %d rows (%d rejected; first error: %s)", st.Rows, opts.Rows, st.Rejected, st.FirstError)
	}
	e.LoadMS = spec.Millis(st.Elapsed)
	e.Load = fmt.Sprintf("HTTP NDJSON ingest through the aggregator, %d-row batches, %d in flight", testbench.DefaultBatchRows, testbench.DefaultConcurrency)

	// Let every open block seal, so that the memory read is that of sealed blocks.
	select {
	case <-time.After(2 * sealAge):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := leafMemory(ctx, c, e); err != nil {
		return nil, err
	}

	for _, q := range spec.Queries(spec.EndUnix) {
		r := measureReef(ctx, client, q, opts.Runs)
		if r.Error != "" {
			fmt.Fprintf(opts.Progress, "reef: %s: %s\n", q.ID, r.Error)
		} else {
			fmt.Fprintf(opts.Progress, "reef: %s: median %.2f ms over %d runs, %d rows\n", q.ID, r.MedianMS, opts.Runs, len(r.Rows))
		}
		e.Queries = append(e.Queries, r)
	}
	return e, ctx.Err()
}

// leafMemory sums the leaves' stats (rows and bytes of the table) and resident
// memory into e.
func leafMemory(ctx context.Context, c *testbench.Cluster, e *spec.Engine) error {
	for _, l := range c.Leaves() {
		sctx, cancel := context.WithTimeout(ctx, statsTimeout)
		st, err := (&api.Client{BaseURL: l.URL, HTTP: c.Client().HTTP}).Stats(sctx)
		cancel()
		if err != nil {
			return fmt.Errorf("cannot read %s's stats: %w", l.ID, err)
		}
		ts := st.Tables[spec.Table]
		e.Rows += ts.Rows
		e.MemoryBytes += ts.Bytes
		e.RSSBytes += spec.RSS(l.PID)
	}
	e.Memory = "sum of the leaves' GET /v1/stats bytes for the table"
	if e.Rows > 0 {
		e.BytesPerRow = float64(e.MemoryBytes) / float64(e.Rows)
	}
	return nil
}

// measureReef runs q through the aggregator once to warm up, then runs times timed.
// The time is the client's wall time: request, execution on every leaf, merge, JSON
// answer and its decoding.
func measureReef(ctx context.Context, client *api.Client, q spec.Query, runs int) spec.QueryRun {
	r := spec.QueryRun{ID: q.ID, SQL: q.Reef}
	for i := 0; i <= runs; i++ {
		qctx, cancel := context.WithTimeout(ctx, queryTimeout)
		t0 := time.Now()
		res, err := client.SQL(qctx, api.QueryRequest{SQL: q.Reef, TimeoutMS: queryTimeout.Milliseconds()})
		d := time.Since(t0)
		cancel()
		if err == nil && (res.Partial || res.Coverage.Percent < 100) {
			err = fmt.Errorf("partial answer: coverage %.1f%% (%d/%d leaves)", res.Coverage.Percent, res.Coverage.LeavesResponded, res.Coverage.LeavesTotal)
		}
		if err == nil && res.Truncated {
			err = errors.New("answer truncated at a bound")
		}
		if err != nil {
			r.Error = err.Error()
			r.RunsMS, r.Rows = nil, nil
			return r
		}
		if i > 0 { // run 0 is the warm-up
			r.RunsMS = append(r.RunsMS, spec.Millis(d))
		}
		r.Columns = r.Columns[:0]
		for _, col := range res.Columns {
			r.Columns = append(r.Columns, col.Name)
		}
		r.Rows = res.Rows
	}
	r.MedianMS = spec.Median(r.RunsMS)
	return r
}
