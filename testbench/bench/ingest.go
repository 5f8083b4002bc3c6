package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/testbench"
	"github.com/reef-db/reef/testbench/benchq/spec"
)

// Ingest benchmark defaults.
const (
	DefaultIngestLeaves      = 2
	DefaultIngestBatchRows   = 20_000
	DefaultIngestConcurrency = 8
	// ingestMemoryPerRow sizes each leaf's memory limit (at least 2 GiB), so that
	// retention never drops benchmark rows.
	ingestMemoryPerRow = 512
	minIngestMemory    = 2 << 30
)

// IngestConfig describes the ingest speed benchmark: the standard dataset
// (spec.Dataset) as NDJSON, posted through the aggregator of a local cluster, beside
// DuckDB loading the same bytes from a file with read_json.
type IngestConfig struct {
	// Binary is the reef binary the cluster runs.
	Binary string
	// Rows is the dataset's size (default spec.DefaultRows, 10M).
	Rows int
	// Leaves is the number of leaf processes (default 2).
	Leaves int
	// BatchRows is the rows per request (default 20,000: about 2.7 MB, under the
	// aggregator's 4 MiB batch) and Concurrency the requests in flight (default 4).
	BatchRows   int
	Concurrency int
	// LeafArgs are more arguments for every leaf, e.g. --wal-sync none.
	LeafArgs []string
	// Direct posts the batches straight to the leaves, in turn, instead of through
	// the aggregator: what the aggregator's routing costs.
	Direct bool
	// WorkDir holds the cluster and the NDJSON file while the benchmark runs
	// (default: a new temporary directory), removed at the end unless Keep.
	WorkDir string
	Keep    bool
	// NoDuckDB skips DuckDB; DuckBench is a prebuilt duckbench program (default:
	// built from DuckBenchSource, found by walking up from the working directory).
	NoDuckDB        bool
	DuckBench       string
	DuckBenchSource string

	OutDir   string
	Command  string
	Progress io.Writer
}

// IngestResult is the outcome of the ingest benchmark.
type IngestResult struct {
	Rows        int64   `json:"rows"`
	MB          float64 `json:"mb"` // NDJSON size, 10^6 bytes
	Leaves      int     `json:"leaves"`
	BatchRows   int     `json:"batch_rows"`
	Concurrency int     `json:"concurrency"`
	// GenerateS is the (untimed) generation of the NDJSON into memory.
	GenerateS float64 `json:"generate_s"`

	ReefSetup      string  `json:"reef_setup"`
	ReefSeconds    float64 `json:"reef_s"`
	ReefRowsPerSec float64 `json:"reef_rows_per_s"`
	ReefMBPerSec   float64 `json:"reef_mb_per_s"`
	// LeafRows is count(*) through the aggregator after the load.
	LeafRows int64 `json:"leaf_rows"`
	Retries  int64 `json:"retries"`
	// CPU is the CPU time each process used during reef's load: where the time
	// went (Linux only).
	CPU []ProcessCPU `json:"cpu,omitempty"`

	DuckDB        *DuckDBIngest `json:"duckdb,omitempty"`
	DuckDBSkipped string        `json:"duckdb_skipped,omitempty"`
	// Ratio is reef's rows per second over DuckDB's (> 1: reef is faster).
	Ratio float64 `json:"ratio,omitempty"`
}

// DuckDBIngest is DuckDB's side of the ingest benchmark.
type DuckDBIngest struct {
	Version    string  `json:"version"`
	Setup      string  `json:"setup"`
	Rows       int64   `json:"rows"`
	Seconds    float64 `json:"s"`
	RowsPerSec float64 `json:"rows_per_s"`
	MBPerSec   float64 `json:"mb_per_s"`
	// ProcessCPUSeconds is the CPU time of the whole duckbench process: the load,
	// and the opening and memory report around it.
	ProcessCPUSeconds float64 `json:"process_cpu_s"`
}

// RunIngest runs the ingest benchmark and writes its report into cfg.OutDir. DuckDB's
// side failing to build or run is not an error: the report says why it is missing.
func RunIngest(ctx context.Context, cfg IngestConfig) (rep *Report, err error) {
	started := time.Now()
	switch {
	case cfg.Binary == "":
		return nil, errors.New("cannot run the ingest benchmark: no reef binary given")
	case cfg.Rows < 0 || cfg.Leaves < 0 || cfg.BatchRows < 0 || cfg.Concurrency < 0:
		return nil, fmt.Errorf("cannot run the ingest benchmark: negative setting in %+v", cfg)
	}
	if cfg.Rows == 0 {
		cfg.Rows = spec.DefaultRows
	}
	if cfg.Leaves == 0 {
		cfg.Leaves = DefaultIngestLeaves
	}
	if cfg.BatchRows == 0 {
		cfg.BatchRows = DefaultIngestBatchRows
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultIngestConcurrency
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	if err := PrepareOutDir(cfg.OutDir); err != nil {
		return nil, err
	}
	work := cfg.WorkDir
	if work == "" {
		if work, err = os.MkdirTemp("", "reef-bench-ingest-"); err != nil {
			return nil, fmt.Errorf("cannot create a work directory: %w", err)
		}
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the work directory: %w", err)
	}
	if cfg.Keep {
		fmt.Fprintf(progress, "work directory %s (kept)\n", work)
	} else {
		defer os.RemoveAll(work)
	}

	rep = &Report{Kind: "ingest", Command: cfg.Command, Started: started.UTC().Truncate(time.Second), Machine: Machine(), Table: spec.Table}
	res := &IngestResult{Rows: int64(cfg.Rows), Leaves: cfg.Leaves, BatchRows: cfg.BatchRows, Concurrency: cfg.Concurrency}
	rep.Ingest = res
	defer func() {
		if werr := rep.Write(cfg.OutDir); werr != nil {
			err = errors.Join(err, werr)
		}
	}()

	fmt.Fprintf(progress, "generating %s rows of NDJSON into memory (not timed) …\n", thousands(int64(cfg.Rows)))
	t0 := time.Now()
	data, batches := generateBatches(spec.Dataset(cfg.Rows), cfg.BatchRows)
	res.GenerateS = round3(time.Since(t0).Seconds())
	res.MB = round3(float64(len(data)) / 1e6)
	fmt.Fprintf(progress, "generated %.0f MB in %.1f s\n", res.MB, res.GenerateS)
	file := filepath.Join(work, "dataset.ndjson")
	if !cfg.NoDuckDB {
		if err := os.WriteFile(file, data, 0o644); err != nil {
			return rep, fmt.Errorf("cannot write the NDJSON file for DuckDB: %w", err)
		}
	}

	tl, err := ingestReef(ctx, cfg, work, data, batches, res, progress)
	if tl != nil {
		now := time.Now()
		rep.Timeline = tl.Points(now)
		rep.DurationS = round3(now.Sub(tl.Start()).Seconds())
	}
	rep.Setup = res.ReefSetup
	if err != nil {
		rep.fail("%v", err)
		return rep, err
	}
	data = nil // the DuckDB side reads the file; let the memory go

	switch {
	case cfg.NoDuckDB:
		res.DuckDBSkipped = "not asked for (--no-duckdb)"
	default:
		d, why := duckDBIngest(ctx, cfg, work, file, progress)
		if d == nil {
			res.DuckDBSkipped = why
			fmt.Fprintf(progress, "duckdb: skipped: %s\n", why)
			break
		}
		d.MBPerSec = round3(res.MB / d.Seconds)
		res.DuckDB = d
		if d.RowsPerSec > 0 {
			res.Ratio = round3(res.ReefRowsPerSec / d.RowsPerSec)
		}
		if d.Rows != res.Rows {
			rep.fail("DuckDB loaded %d rows, want %d", d.Rows, res.Rows)
		}
	}
	return rep, ctx.Err()
}

// generateBatches encodes cfg's events as NDJSON into one buffer and returns it with
// the offsets at which its batches of batchRows lines end.
func generateBatches(cfg testbench.GenConfig, batchRows int) ([]byte, []int) {
	data := make([]byte, 0, cfg.Rows*140)
	var ends []int
	n := 0
	for e := range testbench.Events(cfg) {
		data = testbench.AppendNDJSON(data, &e)
		if n++; n%batchRows == 0 {
			ends = append(ends, len(data))
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(data) {
		ends = append(ends, len(data))
	}
	return data, ends
}

// ingestReef starts the cluster, posts the batches and measures, then stops it.
func ingestReef(ctx context.Context, cfg IngestConfig, work string, data []byte, ends []int, res *IngestResult, progress io.Writer) (_ *Timeline, err error) {
	limit := max(int64(minIngestMemory), int64(cfg.Rows)*ingestMemoryPerRow/int64(cfg.Leaves))
	shmDir := ""
	if st, serr := os.Stat("/dev/shm"); serr == nil && st.IsDir() {
		if shmDir, err = os.MkdirTemp("/dev/shm", "reef-bench-ingest-"); err != nil {
			return nil, fmt.Errorf("cannot create a shm directory: %w", err)
		}
		defer os.RemoveAll(shmDir)
	}
	fmt.Fprintf(progress, "reef: starting %d leaves + 1 aggregator\n", cfg.Leaves)
	c, err := testbench.StartCluster(ctx, testbench.ClusterConfig{
		Binary:        cfg.Binary,
		Dir:           filepath.Join(work, "cluster"),
		ShmDir:        shmDir,
		Leaves:        cfg.Leaves,
		ExtraLeafArgs: append([]string{"--memory-limit", fmt.Sprint(limit)}, cfg.LeafArgs...),
	})
	if err != nil {
		return nil, fmt.Errorf("cannot start the reef cluster: %w", err)
	}
	defer func() {
		if cerr := c.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("cannot stop the reef cluster: %w", cerr)
		}
	}()
	via := "HTTP through the aggregator"
	if cfg.Direct {
		via = "HTTP straight to the leaves, in turn"
	}
	res.ReefSetup = fmt.Sprintf("%d leaves + 1 aggregator, %s, %d-row batches, %d in flight", cfg.Leaves, via, cfg.BatchRows, cfg.Concurrency)
	if len(cfg.LeafArgs) > 0 {
		res.ReefSetup += ", leaves with " + strings.Join(cfg.LeafArgs, " ")
	}
	client := c.Client()
	targets := []*api.Client{client}
	if cfg.Direct {
		targets = targets[:0]
		for _, l := range c.Leaves() {
			targets = append(targets, &api.Client{BaseURL: l.URL, HTTP: client.HTTP})
		}
	}
	bar := newProgressBar(progress)

	var ids []string
	var pids []int
	for _, p := range c.Processes() {
		ids, pids = append(ids, p.ID), append(pids, p.PID)
	}
	cpu := newCPUMeter(ids, pids)
	var next atomic.Int64
	var acked, retries atomic.Int64
	tl := NewTimeline(time.Now())
	prefix := fmt.Sprintf("ingest-%x", tl.Start().UnixNano())
	eg, ectx := errgroup.WithContext(ctx)
	for range cfg.Concurrency {
		eg.Go(func() error {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ends) {
					return nil
				}
				from := 0
				if i > 0 {
					from = ends[i-1]
				}
				body := data[from:ends[i]]
				n, r, err := postBatch(ectx, targets[i%len(targets)], body, fmt.Sprintf("%s-%d", prefix, i), tl)
				retries.Add(r)
				if err != nil {
					return err
				}
				acked.Add(int64(n))
			}
		})
	}
	var wg sync.WaitGroup
	stopBar := make(chan struct{})
	wg.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopBar:
				return
			case <-t.C:
				n := acked.Load()
				el := time.Since(tl.Start()).Seconds()
				bar.update(float64(n)/float64(res.Rows), fmt.Sprintf("reef: %s rows, %s rows/s", humanCount(float64(n)), humanCount(float64(n)/el)))
			}
		}
	})
	err = eg.Wait()
	elapsed := time.Since(tl.Start())
	res.CPU = cpu.read()
	close(stopBar)
	wg.Wait()
	res.Retries = retries.Load()
	if err != nil {
		return tl, fmt.Errorf("cannot load the dataset into reef: %w", err)
	}
	res.ReefSeconds = round3(elapsed.Seconds())
	res.ReefRowsPerSec = round3(float64(acked.Load()) / elapsed.Seconds())
	res.ReefMBPerSec = round3(res.MB / elapsed.Seconds())
	bar.println(fmt.Sprintf("reef: %s rows in %.2f s: %s rows/s, %.0f MB/s (%d retries)",
		thousands(acked.Load()), res.ReefSeconds, humanCount(res.ReefRowsPerSec), res.ReefMBPerSec, res.Retries))
	bar.println("reef: CPU time: " + cpuString(res.CPU))

	q, err := fullQuery(ctx, client, "SELECT count(*) FROM "+spec.Table, time.Minute)
	if err != nil {
		return tl, err
	}
	if res.LeafRows, err = cellInt(q, 0, 0); err != nil {
		return tl, fmt.Errorf("cannot count the rows reef holds: %w", err)
	}
	if res.LeafRows != res.Rows || acked.Load() != res.Rows {
		return tl, fmt.Errorf("reef acknowledged %d and holds %d rows, want %d", acked.Load(), res.LeafRows, res.Rows)
	}
	return tl, nil
}

// postBatch posts one batch until it is acknowledged, retrying what may succeed
// later, and returns the rows accepted and the retries it took.
func postBatch(ctx context.Context, client *api.Client, body []byte, id string, tl *Timeline) (int, int64, error) {
	delay := retryBase
	var retries int64
	for {
		t0 := time.Now()
		r, err := client.Ingest(ctx, spec.Table, bytes.NewReader(body), api.ContentTypeNDJSON, id)
		now := time.Now()
		if err == nil {
			if r.Rejected > 0 {
				return r.Accepted, retries, fmt.Errorf("batch %s: %d rows rejected", id, r.Rejected)
			}
			tl.Ingest(now, int64(r.Accepted), int64(len(body)), now.Sub(t0))
			return r.Accepted, retries, nil
		}
		if ctx.Err() != nil || !retryable(err) || retries >= 30 {
			return 0, retries, fmt.Errorf("batch %s: %w", id, err)
		}
		retries++
		tl.IngestRetry(now)
		if err := sleepCtx(ctx, delay/2+rand.N(delay/2)); err != nil {
			return 0, retries, err
		}
		delay = min(2*delay, retryMax)
	}
}
