package benchq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/reef-db/reef/testbench/benchq/spec"
)

// Defaults of Options.
const (
	DefaultRuns   = 5
	DefaultLeaves = 2
)

// Options configure Run. Binary and OutDir are required.
type Options struct {
	// Binary is the reef binary the cluster runs.
	Binary string
	// Rows is the dataset size (default spec.DefaultRows), Runs the timed runs per
	// query after one warm-up (default DefaultRuns), Leaves the number of leaf
	// processes (default DefaultLeaves).
	Rows   int
	Runs   int
	Leaves int
	// OutDir is the report directory; it is created and must not hold a report yet.
	OutDir string
	// WorkDir holds the cluster's data and the DuckDB side's NDJSON file while the
	// benchmark runs (default: a new temporary directory). It is removed at the end
	// unless Keep is set.
	WorkDir string
	Keep    bool

	// NoDuckDB skips the DuckDB side: the report has reef's numbers alone.
	NoDuckDB bool
	// DuckBench is a prebuilt duckbench program; empty means build it from
	// DuckBenchSource.
	DuckBench string
	// DuckBenchSource is the directory of the testbench/duckbench module (default:
	// found by walking up from the working directory).
	DuckBenchSource string

	// Command is the command line recorded in the report.
	Command string
	// Progress receives progress lines of the long steps (nil: none).
	Progress io.Writer
}

func (o Options) resolve() (Options, error) {
	if o.Binary == "" {
		return o, errors.New("cannot run the query benchmark: no reef binary given")
	}
	if o.OutDir == "" {
		return o, errors.New("cannot run the query benchmark: no report directory given")
	}
	if o.Rows < 0 || o.Runs < 0 || o.Leaves < 0 {
		return o, fmt.Errorf("cannot run the query benchmark: rows %d, runs %d, leaves %d: none may be negative", o.Rows, o.Runs, o.Leaves)
	}
	if o.Rows == 0 {
		o.Rows = spec.DefaultRows
	}
	if o.Runs == 0 {
		o.Runs = DefaultRuns
	}
	if o.Leaves == 0 {
		o.Leaves = DefaultLeaves
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o, nil
}

// Run measures both engines, compares them, and writes the report files into
// opts.OutDir. It returns the report even when a side failed after the reef side
// ran; the error then says what went wrong. DuckDB's side failing to build or run is
// not an error: the report says why it is missing.
func Run(ctx context.Context, opts Options) (*Report, error) {
	opts, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	if err := prepareOutDir(opts.OutDir); err != nil {
		return nil, err
	}
	work := opts.WorkDir
	if work == "" {
		if work, err = os.MkdirTemp("", "reef-bench-queries-"); err != nil {
			return nil, fmt.Errorf("cannot create a work directory: %w", err)
		}
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the work directory: %w", err)
	}
	if opts.Keep {
		fmt.Fprintf(opts.Progress, "work directory %s (kept)\n", work)
	} else {
		defer os.RemoveAll(work)
	}

	cfg := spec.Dataset(opts.Rows)
	rep := &Report{
		Command: opts.Command,
		Started: time.Now().UTC().Truncate(time.Second),
		Machine: machine(),
		Dataset: Dataset{Rows: opts.Rows, Seed: cfg.Seed, End: cfg.End, Span: spanString(cfg.Span), Now: spec.EndUnix},
		Runs:    opts.Runs,
		Leaves:  opts.Leaves,
	}

	fmt.Fprintf(opts.Progress, "reef: %d leaves + 1 aggregator, %d rows, %d runs per query\n", opts.Leaves, opts.Rows, opts.Runs)
	reef, err := runReef(ctx, opts, filepath.Join(work, "cluster"))
	if err != nil {
		return nil, err
	}
	rep.Reef = *reef

	if opts.NoDuckDB {
		rep.DuckDBSkipped = "not asked for (--no-duckdb)"
	} else {
		duck, why := runDuckDB(ctx, opts, work)
		if duck == nil {
			rep.DuckDBSkipped = why
			fmt.Fprintf(opts.Progress, "duckdb: skipped: %s\n", why)
		} else {
			rep.DuckDB = duck
		}
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	rep.compare()
	return rep, rep.Write(opts.OutDir)
}

// prepareOutDir creates dir, refusing one that already holds a report.
func prepareOutDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create the report directory: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ReportJSON)); err == nil {
		return fmt.Errorf("cannot write the report: %s already holds one", dir)
	}
	return nil
}

// machine describes the computer the benchmark ran on.
func machine() string {
	s := fmt.Sprintf("%s/%s, %d cores", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				s += ", " + strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(data), "MemTotal: %d kB", &kb); err == nil {
			s += fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
		}
	}
	return s + ", " + runtime.Version()
}

// spanString writes d in whole hours when it is some: "24h".
func spanString(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}
