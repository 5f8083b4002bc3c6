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
	// queryTimeout bounds one query on either side.
	queryTimeout = 2 * time.Minute
	// statsTimeout bounds one stats request.
	statsTimeout = 10 * time.Second
	// memoryPerRow sizes each leaf's --memory-limit (at least minMemoryLimit) so that
	// retention never drops benchmark data.
	memoryPerRow   = 512
	minMemoryLimit = 2 << 30
)

// reefSide is a loaded local cluster that answers the benchmark queries.
type reefSide struct {
	c      *testbench.Cluster
	client *api.Client
	shmDir string
	e      *spec.Engine // load and memory; Queries are filled in by Run
	opts   Options
}

// startReef starts a cluster in dir, loads the dataset and reads the leaves'
// memory. The caller must close the side.
func startReef(ctx context.Context, opts Options, dir string) (_ *reefSide, err error) {
	r := &reefSide{opts: opts}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		// Leaves keep sealed blocks in shared memory, as in a deployment.
		if r.shmDir, err = os.MkdirTemp("/dev/shm", "reef-bench-"); err != nil {
			return nil, fmt.Errorf("cannot create a shm directory: %w", err)
		}
	}
	limit := max(int64(minMemoryLimit), int64(opts.Rows)*memoryPerRow/int64(opts.Leaves))
	fmt.Fprintf(opts.Progress, "reef: starting %d leaves + 1 aggregator in %s\n", opts.Leaves, dir)
	r.c, err = testbench.StartCluster(ctx, testbench.ClusterConfig{
		Binary:        opts.Binary,
		Dir:           dir,
		ShmDir:        r.shmDir,
		Leaves:        opts.Leaves,
		ExtraLeafArgs: []string{"--memory-limit", fmt.Sprint(limit), "--seal-age", sealAge.String()},
	})
	if err != nil {
		return nil, fmt.Errorf("cannot start the reef cluster: %w", err)
	}
	r.client = r.c.Client()

	e := &spec.Engine{Engine: "reef", Setup: fmt.Sprintf("%d leaves + 1 aggregator, separate processes on this machine", opts.Leaves)}
	st, err := testbench.Load(ctx, r.client, spec.Table, spec.Dataset(opts.Rows), testbench.LoadOptions{
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
	if err := r.leafMemory(ctx, e); err != nil {
		return nil, err
	}
	r.e = e
	return r, nil
}

// leafMemory sums the leaves' stats (rows and bytes of the table) and resident
// memory into e.
func (r *reefSide) leafMemory(ctx context.Context, e *spec.Engine) error {
	for _, l := range r.c.Leaves() {
		sctx, cancel := context.WithTimeout(ctx, statsTimeout)
		st, err := (&api.Client{BaseURL: l.URL, HTTP: r.client.HTTP}).Stats(sctx)
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

// run runs q once through the aggregator. The time is the client's wall time:
// request, execution on every leaf, merge, JSON answer and its decoding; server is
// the total the aggregator reports. A partial or truncated answer is an error.
func (r *reefSide) run(ctx context.Context, q spec.Query) (wall, server float64, res *api.QueryResult, err error) {
	qctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	t0 := time.Now()
	res, err = r.client.SQL(qctx, api.QueryRequest{SQL: q.Reef, TimeoutMS: queryTimeout.Milliseconds()})
	wall = spec.Millis(time.Since(t0))
	switch {
	case err != nil:
		return 0, 0, nil, err
	case res.Partial || res.Coverage.Percent < 100:
		return 0, 0, nil, fmt.Errorf("partial answer: coverage %.1f%% (%d/%d leaves)", res.Coverage.Percent, res.Coverage.LeavesResponded, res.Coverage.LeavesTotal)
	case res.Truncated:
		return 0, 0, nil, errors.New("answer truncated at a bound")
	}
	return wall, res.Timings.TotalMS, res, nil
}

// close stops the cluster and removes the shm directory. The measurements stand
// even if a process does not stop cleanly: that is only reported.
func (r *reefSide) close() {
	if r.c != nil {
		if err := r.c.Close(); err != nil {
			fmt.Fprintf(r.opts.Progress, "reef: warning: %v\n", err)
		}
		r.c = nil
	}
	if r.shmDir != "" {
		_ = os.RemoveAll(r.shmDir)
		r.shmDir = ""
	}
}
