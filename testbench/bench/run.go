package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Scenario defaults.
const (
	// DefaultDuration is the measured phase of a run.
	DefaultDuration = 30 * time.Second
	// DefaultPreloadBatchRows is the batch size of a preload.
	DefaultPreloadBatchRows = 10_000
)

// Scenario is one bench run: optionally a preload, then a measured phase during which
// an ingest load, a query load, faults and a rolling deploy run side by side, then
// optionally the check that every acknowledged row is present exactly once. Every run
// writes a report directory. `reef bench load`, `query-load`, `chaos` and `deploy`
// are scenarios with different parts switched on.
type Scenario struct {
	// Kind names the run in the report and in the default table and report names:
	// "load", "query-load", "chaos", "deploy".
	Kind string
	// Target is the cluster to drive. Faults and Deploy need a cluster started by the
	// run (Target.URL empty).
	Target Target
	// Table receives the rows (default <kind>_<YYYYMMDD>_<HHMMSS>, a new table per run,
	// so that the exactly-once check sees this run's rows only).
	Table string
	// Duration is the measured phase (default DefaultDuration). A deploy phase lasts
	// until the deploy has ended and DeployConfig.After has passed, at least.
	Duration time.Duration
	// Preload rows are loaded as fast as the cluster takes them before the phase, so
	// that queries have data (PreloadBatchRows per batch, default
	// DefaultPreloadBatchRows).
	Preload          int64
	PreloadBatchRows int
	// Load, when not nil, is the ingest load of the phase; Run sets its Client,
	// Table, Ledger, Duration, Stop, Timeline and FirstAck.
	Load *LoadConfig
	// Queries, when not nil, is the query load of the phase; Run sets its Client,
	// Table, Duration, Stop and Timeline. Without a preload the queries start once the
	// first batch of the load is acknowledged.
	Queries *QueryConfig
	// Faults, when not nil, are injected during the phase.
	Faults *FaultConfig
	// Deploy, when not nil, is run during the phase.
	Deploy *DeployConfig
	// Verify checks after the phase that every acknowledged row is present exactly
	// once, waiting up to VerifyTimeout (default DefaultVerifyTimeout) for full
	// coverage.
	Verify        bool
	VerifyTimeout time.Duration
	// CoverageFloor, when > 0, fails the run if an answer during the phase had a
	// lower coverage percent.
	CoverageFloor float64

	// OutDir is the report directory (created; it must not hold a report yet).
	OutDir string
	// Command is the command line recorded in the report.
	Command string
	// Progress receives the progress bar and messages (nil: none).
	Progress io.Writer
}

func (s Scenario) resolve(now time.Time) (Scenario, error) {
	if s.Kind == "" {
		return s, errors.New("cannot run: no kind given")
	}
	if s.OutDir == "" {
		return s, errors.New("cannot run: no report directory given")
	}
	if s.Duration < 0 || s.Preload < 0 || s.PreloadBatchRows < 0 || s.VerifyTimeout < 0 || s.CoverageFloor < 0 {
		return s, fmt.Errorf("cannot run %s: negative setting", s.Kind)
	}
	if s.Load == nil && s.Queries == nil && s.Deploy == nil {
		return s, fmt.Errorf("cannot run %s: neither a load, nor queries, nor a deploy", s.Kind)
	}
	if (s.Faults != nil || s.Deploy != nil) && s.Target.URL != "" {
		return s, fmt.Errorf("cannot run %s against %s: faults and deploys need a cluster the run starts itself", s.Kind, s.Target.URL)
	}
	if s.Table == "" {
		s.Table = strings.ReplaceAll(s.Kind, "-", "_") + "_" + now.Format("20060102_150405")
	}
	if s.Duration == 0 {
		s.Duration = DefaultDuration
	}
	if s.PreloadBatchRows == 0 {
		s.PreloadBatchRows = DefaultPreloadBatchRows
	}
	if s.Progress == nil {
		s.Progress = io.Discard
	}
	if s.Faults != nil {
		f, err := s.Faults.resolve()
		if err != nil {
			return s, fmt.Errorf("cannot run %s: %w", s.Kind, err)
		}
		s.Faults = &f
	}
	return s, nil
}

// Run runs the scenario and writes its report into s.OutDir. The report says whether
// the run passed (Report.Passed): the load was acknowledged, no query failed, the
// coverage stayed above the floor, every fault was injected and recovered from, the
// deploy succeeded, and every acknowledged row is present exactly once. An error
// means the run could not be carried out (the cluster did not start, the report
// could not be written, ctx ended); the report returned with it, if any, holds what
// was measured.
func Run(ctx context.Context, s Scenario) (rep *Report, err error) {
	started := time.Now()
	s, err = s.resolve(started)
	if err != nil {
		return nil, err
	}
	if err := PrepareOutDir(s.OutDir); err != nil {
		return nil, err
	}
	bar := newProgressBar(s.Progress)
	rep = &Report{Kind: s.Kind, Started: started.UTC().Truncate(time.Second), Machine: Machine(), Command: s.Command, Table: s.Table}

	t, err := s.Target.open(ctx, s.Progress)
	if err != nil {
		return nil, err
	}
	rep.Setup = t.setup
	defer func() {
		kept, cerr := t.close(err == nil && rep.Passed())
		if cerr != nil {
			rep.fail("the cluster did not stop cleanly: %v", cerr)
		}
		if kept != "" {
			rep.Dir = kept
			bar.println("cluster directory kept: " + kept)
		}
		if werr := rep.Write(s.OutDir); werr != nil {
			err = errors.Join(err, werr)
		}
	}()

	ledger := NewLedger(fmt.Sprintf("%s-%x", s.Table, started.UnixNano()))
	if s.Preload > 0 {
		bar.println(fmt.Sprintf("preloading %s rows into %s", thousands(s.Preload), s.Table))
		pre, err := RunLoad(ctx, LoadConfig{Client: t.client, Table: s.Table, Ledger: ledger,
			Rows: s.Preload, BatchRows: s.PreloadBatchRows, Concurrency: DefaultConcurrency})
		rep.Preload = pre
		if err != nil {
			return rep, fmt.Errorf("cannot preload: %w", err)
		}
		bar.println(fmt.Sprintf("preloaded %s rows in %.1f s", thousands(pre.AcceptedRows), pre.ElapsedS))
	}

	// The load's rows are encoded before the clock starts.
	var loader *loader
	if s.Load != nil {
		cfg := *s.Load
		cfg.Client, cfg.Table, cfg.Ledger = t.client, s.Table, ledger
		cfg.Duration, cfg.Rows = s.Duration, 0 // Duration sizes the row pool
		if loader, err = newLoader(cfg); err != nil {
			return rep, err
		}
	}
	tl := NewTimeline(time.Now())
	stop := make(chan struct{})
	var stopOnce sync.Once
	end := func() { stopOnce.Do(func() { close(stop) }) }
	defer end()
	var wg sync.WaitGroup
	var mu sync.Mutex // guards errs
	var errs []error
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}

	firstAck := make(chan struct{})
	if loader != nil {
		// The phase ends the load, through stop.
		loader.cfg.Timeline, loader.cfg.FirstAck, loader.cfg.Duration, loader.cfg.Stop = tl, firstAck, 0, stop
		wg.Go(func() {
			res, err := loader.load(ctx)
			mu.Lock()
			rep.Load = res
			mu.Unlock()
			if err != nil {
				fail(err)
				end() // a load that cannot go on ends the phase
			}
		})
	} else {
		close(firstAck)
	}
	if s.Queries != nil {
		cfg := *s.Queries
		cfg.Client, cfg.Table, cfg.Timeline, cfg.Duration, cfg.Stop = t.client, s.Table, tl, 0, stop
		wg.Go(func() {
			if s.Preload == 0 {
				select {
				case <-firstAck:
				case <-stop:
					return
				case <-ctx.Done():
					return
				}
			}
			res, err := RunQueries(ctx, cfg)
			mu.Lock()
			rep.Queries = res
			mu.Unlock()
			if err != nil {
				fail(err)
			}
		})
	}
	if s.Faults != nil {
		wg.Go(func() {
			recs := runFaults(ctx, t.cluster, *s.Faults, tl, stop)
			mu.Lock()
			rep.Faults = recs
			mu.Unlock()
		})
	}
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		s.showProgress(bar, tl, stop)
	}()

	// The phase: Duration, or the deploy and a little after it.
	if s.Deploy != nil {
		d, derr := runDeploy(ctx, t.cluster, *s.Deploy, tl, s.Progress)
		rep.Deploy = d
		if derr != nil {
			fail(derr)
		}
	} else {
		timer := time.NewTimer(s.Duration)
		select {
		case <-timer.C:
		case <-stop:
		case <-ctx.Done():
		}
		timer.Stop()
	}
	end()
	wg.Wait()
	<-progressDone
	phaseEnd := time.Now()
	rep.DurationS = round3(phaseEnd.Sub(tl.Start()).Seconds())
	rep.Timeline = tl.Points(phaseEnd)
	rep.Marks = tl.Marks()
	if err := ctx.Err(); err != nil {
		rep.fail("the run was interrupted after %.1f s", rep.DurationS)
		return rep, err
	}
	if err := errors.Join(errs...); err != nil {
		rep.fail("%v", err)
	}

	if s.Verify {
		bar.println("verifying that every acknowledged row is present exactly once")
		v, err := Verify(ctx, t.client, s.Table, ledger, s.VerifyTimeout)
		if err != nil {
			rep.fail("%v", err)
		} else {
			rep.Verify = v
			bar.println(v.String())
			if !v.OK {
				rep.fail("not every acknowledged row is present exactly once: %d missing, %d duplicated, %d of unknown batches",
					v.Missing, v.Duplicated, v.Unknown)
			}
		}
	}
	s.judge(rep)
	return rep, nil
}

// judge adds the failures the sections show.
func (s Scenario) judge(rep *Report) {
	if l := rep.Load; l != nil && l.Unacked > 0 {
		rep.fail("%d batches were never acknowledged (first error: %s)", l.Unacked, l.FirstError)
	}
	if q := rep.Queries; q != nil {
		if q.Errors > 0 {
			rep.fail("%d of %d queries failed (first: %s)", q.Errors, q.Queries, q.FirstError)
		}
		if s.CoverageFloor > 0 && q.Queries > q.Errors && q.CoverageMin < s.CoverageFloor {
			rep.fail("coverage fell to %.1f%%, below the floor of %.1f%%", q.CoverageMin, s.CoverageFloor)
		}
		if q.Queries == 0 {
			rep.fail("no query ran")
		}
	}
	for _, f := range rep.Faults {
		if f.Error != "" {
			rep.fail("%s of %s at %.1f s: %s", f.Kind, f.Leaf, f.AtS, f.Error)
		}
	}
	if d := rep.Deploy; d != nil && d.ExitCode != 0 {
		rep.fail("the deploy script exited with %d", d.ExitCode)
	}
}

// showProgress draws the progress bar once a second until stop is closed.
func (s Scenario) showProgress(bar *progressBar, tl *Timeline, stop <-chan struct{}) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		now := time.Now()
		elapsed := now.Sub(tl.Start())
		pts := tl.Points(now)
		var rows, queries int64
		for _, p := range pts {
			rows += p.Rows
			queries += p.Queries
		}
		var last Point // the last whole bucket
		if len(pts) >= 2 {
			last = pts[len(pts)-2]
		}
		text := fmt.Sprintf("%4.0fs", elapsed.Seconds())
		if s.Load != nil {
			text += fmt.Sprintf("  ingest %s rows (%s/s, %d retries)", humanCount(float64(rows)), humanCount(last.RowsPerSec), last.Retries)
		}
		if s.Queries != nil {
			text += fmt.Sprintf("  %d queries", queries)
			if last.P99MS != nil {
				text += fmt.Sprintf(" (p99 %.0f ms)", *last.P99MS)
			}
			if last.CoverageMin != nil {
				text += fmt.Sprintf("  coverage %.1f%%", *last.CoverageMin)
			}
		}
		if marks := tl.Marks(); len(marks) > 0 {
			text += "  | " + marks[len(marks)-1].What
		}
		frac := -1.0
		if s.Deploy == nil {
			frac = elapsed.Seconds() / s.Duration.Seconds()
		}
		bar.update(frac, text)
	}
}
