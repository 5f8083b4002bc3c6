package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/testbench"
)

// Deploy defaults.
const (
	// DefaultDeployScript is the rolling deploy script, relative to the repository.
	DefaultDeployScript = "scripts/rolling-deploy.sh"
	// DefaultDeployAround is the load and queries before the deploy starts and after
	// it ends.
	DefaultDeployAround = 3 * time.Second
	// readyPollEvery is how often the deploy watches every leaf's /readyz.
	readyPollEvery = 10 * time.Millisecond
	// outputTailBytes is how much of the script's output the report quotes, and
	// maxOutputBytes how much of it is kept to be read.
	outputTailBytes = 4096
	maxOutputBytes  = 1 << 20
)

// DeployConfig describes a rolling deploy during a run: the script restarts the
// cluster's leaves through the shm handoff while the load and queries go on.
type DeployConfig struct {
	// Script is the deploy script (default scripts/rolling-deploy.sh, found by
	// walking up from the working directory). It is run as
	//
	//	SCRIPT [Args…] CLUSTER_DIR
	//
	// with the cluster's directory, whose cluster.json lists the processes.
	Script string
	Args   []string
	// Before and After are the load and queries before the deploy starts and after
	// it has ended (default DefaultDeployAround each).
	Before time.Duration
	After  time.Duration
	// Timeout bounds the script (default 10 minutes).
	Timeout time.Duration
}

// DeployResult is what a rolling deploy did.
type DeployResult struct {
	Command string `json:"command"`
	// StartS is when the script started, in seconds since the start of the run, and
	// TotalS how long it ran.
	StartS   float64 `json:"start_s"`
	TotalS   float64 `json:"total_s"`
	ExitCode int     `json:"exit_code"`
	// MinCoverage is the lowest coverage of an answer between the start of the
	// deploy and its end (percent; -1 when no query answered meanwhile).
	MinCoverage float64 `json:"min_coverage"`
	// Leaves are the leaves in order.
	Leaves []DeployLeaf `json:"leaves"`
	// OutputTail is the end of the script's output.
	OutputTail string `json:"output_tail,omitempty"`
}

// DeployLeaf is one leaf's part of a deploy.
type DeployLeaf struct {
	ID string `json:"id"`
	// HandoffMS, ExitMS and ExecReadyMS are the script's timeline of the leaf: the
	// handoff request, until the old process was gone, and from starting the new one
	// until it was ready. RowsHanded is the rows it handed over. All are 0 when the
	// script did not report the leaf.
	HandoffMS   float64 `json:"handoff_ms"`
	ExitMS      float64 `json:"exit_ms"`
	ExecReadyMS float64 `json:"exec_ready_ms"`
	RowsHanded  int64   `json:"rows_handed"`
	// DownMS is how long its /readyz did not answer 200 during the deploy, polled
	// every 10 ms.
	DownMS float64 `json:"down_ms"`
	// StartPath and StartMS are how the new process started (shm attach, WAL
	// replay, disk) and how long that took, from its stats.
	StartPath string  `json:"start_path"`
	StartMS   float64 `json:"start_ms"`
	// RowsAfter is the rows it holds after the deploy.
	RowsAfter int64 `json:"rows_after"`
}

// FindDeployScript walks up from the working directory to the repository's
// scripts/rolling-deploy.sh.
func FindDeployScript() (string, error) {
	dir, file := filepath.Split(filepath.FromSlash(DefaultDeployScript))
	d, err := findUp(filepath.Clean(dir), file)
	if err != nil {
		return "", fmt.Errorf("cannot find the deploy script: %w (run from the reef repository, or give --script)", err)
	}
	return filepath.Join(d, file), nil
}

// runDeploy waits cfg.Before, runs the deploy script on c while watching every
// leaf's readiness, waits cfg.After and returns what happened.
func runDeploy(ctx context.Context, c *testbench.Cluster, cfg DeployConfig, tl *Timeline, progress io.Writer) (*DeployResult, error) {
	if cfg.Before == 0 {
		cfg.Before = DefaultDeployAround
	}
	if cfg.After == 0 {
		cfg.After = DefaultDeployAround
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Minute
	}
	script := cfg.Script
	if script == "" {
		var err error
		if script, err = FindDeployScript(); err != nil {
			return nil, err
		}
	}
	if err := sleepCtx(ctx, cfg.Before); err != nil {
		return nil, err
	}

	leaves := c.Leaves()
	w := newReadyWatch(c, leaves, tl)
	wctx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		w.run(wctx)
	}()

	args := append(append([]string(nil), cfg.Args...), c.Dir())
	res := &DeployResult{Command: strings.Join(append([]string{script}, args...), " ")}
	fmt.Fprintf(progress, "\nrunning %s\n", res.Command)
	sctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(sctx, script, args...)
	var out boundedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	res.StartS = round3(t0.Sub(tl.Start()).Seconds())
	tl.Mark(t0, MarkInfo, "deploy started")
	runErr := cmd.Run()
	t1 := time.Now()
	res.TotalS = round3(t1.Sub(t0).Seconds())
	tl.Mark(t1, MarkInfo, "deploy ended")
	output := out.String()
	res.OutputTail = strings.TrimSpace(output[max(0, len(output)-outputTailBytes):])
	var exitErr *exec.ExitError
	switch {
	case runErr == nil:
	case errors.As(runErr, &exitErr):
		res.ExitCode = exitErr.ExitCode()
	default:
		stopWatch()
		<-watchDone
		return res, fmt.Errorf("cannot run the deploy script %s: %w", script, runErr)
	}

	err := sleepCtx(ctx, cfg.After)
	stopWatch()
	<-watchDone
	res.MinCoverage = -1
	for _, p := range tl.Points(time.Now()) {
		if p.CoverageMin != nil && p.T+p.Width > res.StartS && p.T < res.StartS+res.TotalS &&
			(res.MinCoverage < 0 || *p.CoverageMin < res.MinCoverage) {
			res.MinCoverage = *p.CoverageMin
		}
	}
	byID := parseDeployOutput(output)
	down := w.downtimes()
	for i, l := range leaves {
		dl := byID[l.ID]
		dl.ID, dl.DownMS = l.ID, round3(float64(down[i])/1e6)
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		st, serr := (&api.Client{BaseURL: l.URL, HTTP: c.Client().HTTP}).Stats(sctx)
		cancel()
		if serr == nil {
			dl.StartPath, dl.StartMS, dl.RowsAfter = st.Start.Path, round3(st.Start.DurationMS), st.Rows
		} else {
			dl.StartPath = "unknown: " + serr.Error()
		}
		res.Leaves = append(res.Leaves, dl)
	}
	return res, err
}

// readyWatch polls every leaf's /readyz and adds up how long each was not ready.
type readyWatch struct {
	c      *testbench.Cluster
	leaves []testbench.ProcessInfo
	tl     *Timeline

	mu   sync.Mutex
	down []time.Duration
}

func newReadyWatch(c *testbench.Cluster, leaves []testbench.ProcessInfo, tl *Timeline) *readyWatch {
	return &readyWatch{c: c, leaves: leaves, tl: tl, down: make([]time.Duration, len(leaves))}
}

func (w *readyWatch) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i, l := range w.leaves {
		wg.Go(func() {
			client := &api.Client{BaseURL: l.URL, HTTP: w.c.Client().HTTP}
			var since time.Time // zero while ready
			tick := time.NewTicker(readyPollEvery)
			defer tick.Stop()
			for {
				pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
				err := client.Ready(pctx)
				cancel()
				now := time.Now()
				if ctx.Err() != nil {
					if !since.IsZero() {
						w.add(i, now.Sub(since))
					}
					return
				}
				switch {
				case err != nil && since.IsZero():
					since = now
					w.tl.Mark(now, MarkFault, l.ID+" not ready")
				case err == nil && !since.IsZero():
					w.add(i, now.Sub(since))
					w.tl.Mark(now, MarkRecover, fmt.Sprintf("%s ready again after %.0f ms", l.ID, float64(now.Sub(since))/1e6))
					since = time.Time{}
				}
				select {
				case <-tick.C:
				case <-ctx.Done():
				}
			}
		})
	}
	wg.Wait()
}

func (w *readyWatch) add(i int, d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.down[i] += d
}

func (w *readyWatch) downtimes() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.down...)
}

// parseDeployOutput reads the per-leaf lines of rolling-deploy.sh's timeline,
//
//	leaf         handoff_ms  exit_ms  exec_ready_ms  start   rows_before  rows_handed
//	leaf-0             12.3      1.2           45.6  shm            1000         1000
//
// into DeployLeafs by id. Lines of any other shape are left out.
func parseDeployOutput(out string) map[string]DeployLeaf {
	leaves := map[string]DeployLeaf{}
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 7 {
			continue
		}
		var l DeployLeaf
		var before int64
		_, err := fmt.Sscanf(strings.Join(f[1:], " "), "%g %g %g %s %d %d", &l.HandoffMS, &l.ExitMS, &l.ExecReadyMS, new(string), &before, &l.RowsHanded)
		if err != nil {
			continue
		}
		leaves[f[0]] = l
	}
	return leaves
}

// boundedBuffer keeps the first maxOutputBytes bytes written to it and drops the
// rest. It is safe for concurrent writers.
type boundedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := maxOutputBytes - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *boundedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
