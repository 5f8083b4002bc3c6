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
	"sync"
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
	o.Progress = &lockedWriter{w: o.Progress} // the DuckDB side's stderr is copied in too
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
		LoadAvg: [2]float64{loadAvg()},
	}

	reef, err := startReef(ctx, opts, filepath.Join(work, "cluster"))
	if err != nil {
		return nil, err
	}
	defer reef.close()
	rep.Reef = *reef.e

	var duck *duckSide
	if opts.NoDuckDB {
		rep.DuckDBSkipped = "not asked for (--no-duckdb)"
	} else {
		var why string
		if duck, why = startDuckDB(ctx, opts, work); duck == nil {
			rep.DuckDBSkipped = why
			fmt.Fprintf(opts.Progress, "duckdb: skipped: %s\n", why)
		} else {
			rep.DuckDB = duck.e
		}
	}

	rep.measure(ctx, opts, reef, duck)
	if duck != nil {
		if err := duck.stop(nil); err != nil {
			fmt.Fprintf(opts.Progress, "duckdb: warning: did not exit cleanly: %v\n", err)
		}
	}
	reef.close()
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	rep.LoadAvg[1] = loadAvg()
	rep.compare()
	return rep, rep.Write(opts.OutDir)
}

// measure runs every query once untimed and then opts.Runs times timed on each
// side, in turns — in each round every query on reef and on DuckDB, the side that
// goes first alternating — so that other work on the machine falls on both alike.
// A query that fails on one side is not run there again; a DuckDB side that stops
// answering is dropped from the report with the reason.
func (rep *Report) measure(ctx context.Context, opts Options, reef *reefSide, duck *duckSide) {
	queries := spec.Queries(spec.EndUnix)
	reefRuns := make([]spec.QueryRun, len(queries))
	duckRuns := make([]spec.QueryRun, len(queries))
	server := make([][]float64, len(queries))
	for j, q := range queries {
		reefRuns[j] = spec.QueryRun{ID: q.ID, SQL: q.Reef}
		duckRuns[j] = spec.QueryRun{ID: q.ID, SQL: q.DuckDB}
	}

	runReef := func(j int, timed bool) {
		r := &reefRuns[j]
		if r.Error != "" {
			return
		}
		wall, srv, res, err := reef.run(ctx, queries[j])
		if err != nil {
			r.Error, r.RunsMS, r.Rows = err.Error(), nil, nil
			fmt.Fprintf(opts.Progress, "reef: %s: %v\n", r.ID, err)
			return
		}
		if timed {
			r.RunsMS = append(r.RunsMS, wall)
			server[j] = append(server[j], srv)
		}
		r.Columns = r.Columns[:0]
		for _, c := range res.Columns {
			r.Columns = append(r.Columns, c.Name)
		}
		r.Rows = res.Rows
	}
	runDuck := func(j int, timed bool) {
		r := &duckRuns[j]
		if duck == nil || r.Error != "" {
			return
		}
		a, err := duck.ask("run " + queries[j].ID)
		if err != nil {
			rep.DuckDBSkipped = fmt.Sprintf("the DuckDB side stopped answering: %v", duck.stop(err))
			fmt.Fprintf(opts.Progress, "duckdb: %s\n", rep.DuckDBSkipped)
			duck, rep.DuckDB = nil, nil
			return
		}
		if a.Error != "" || len(a.RunsMS) != 1 {
			r.Error, r.RunsMS, r.Rows = a.Error, nil, nil
			if r.Error == "" {
				r.Error = fmt.Sprintf("answer with %d times", len(a.RunsMS))
			}
			fmt.Fprintf(opts.Progress, "duckdb: %s: %s\n", r.ID, r.Error)
			return
		}
		if timed {
			r.RunsMS = append(r.RunsMS, a.RunsMS[0])
		}
		r.Columns, r.Rows = a.Columns, a.Rows
	}

	fmt.Fprintf(opts.Progress, "running %d queries: 1 untimed + %d timed rounds\n", len(queries), opts.Runs)
	for round := 0; round <= opts.Runs && ctx.Err() == nil; round++ {
		timed := round > 0
		for j := range queries {
			if round%2 == 0 {
				runReef(j, timed)
				runDuck(j, timed)
			} else {
				runDuck(j, timed)
				runReef(j, timed)
			}
		}
	}

	for j, q := range queries {
		reefRuns[j].MedianMS = spec.Median(reefRuns[j].RunsMS)
		reefRuns[j].ServerMedianMS = spec.Median(server[j])
		line := fmt.Sprintf("%s: reef %s ms", q.ID, ms(reefRuns[j].MedianMS))
		if duck != nil {
			d := &duckRuns[j]
			d.MedianMS = spec.Median(d.RunsMS)
			if q.DuckDBBounds != "" && d.Error == "" {
				b, err := duck.ask("bounds " + q.ID)
				switch {
				case err != nil:
					d.Error = err.Error()
				case b.Error != "":
					d.Error = "cannot compute exact bounds: " + b.Error
				default:
					d.Bounds = b.Bounds
				}
			}
			line += fmt.Sprintf(", DuckDB %s ms", ms(d.MedianMS))
		}
		fmt.Fprintf(opts.Progress, "%s (medians)\n", line)
	}
	rep.Reef.Queries = reefRuns
	if duck != nil {
		rep.DuckDB.Queries = duckRuns
	}
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

// loadAvg returns the 1-minute load average from /proc/loadavg, or 0.
func loadAvg() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var l float64
	if _, err := fmt.Sscanf(string(data), "%f", &l); err != nil {
		return 0
	}
	return l
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
