package e2e

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reef-db/reef/testbench"
	"github.com/reef-db/reef/testbench/bench"
)

// benchTarget returns a bench target that starts a cluster of real processes for t.
// Its directory is kept (and named in the log) when t fails.
func benchTarget(t *testing.T, leaves int) bench.Target {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test with real processes; skipped with -short")
	}
	dir, err := os.MkdirTemp("", "reef-e2e-"+t.Name()+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cluster directory kept: %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return bench.Target{Cluster: testbench.ClusterConfig{
		Binary:   reefBin,
		Dir:      dir,
		Leaves:   leaves,
		BasePort: 27070,
		// Seal often, so that faults hit sealed blocks as well as open ones.
		ExtraLeafArgs: []string{"--seal-age", "500ms"},
	}}
}

// runScenario runs s and fails t with the report's failures.
func runScenario(t *testing.T, s bench.Scenario) *bench.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s.OutDir = filepath.Join(t.TempDir(), "report")
	var progress bytes.Buffer
	s.Progress = &progress
	rep, err := bench.Run(ctx, s)
	if err != nil {
		t.Fatalf("%s: %v\n%s", s.Kind, err, progress.String())
	}
	if !rep.Passed() {
		t.Errorf("%s failed:\n  %s\nreport: %s\n%s", s.Kind, strings.Join(rep.Failures, "\n  "), s.OutDir, progress.String())
	}
	for _, p := range rep.Plots {
		checkPNG(t, filepath.Join(s.OutDir, p))
	}
	return rep
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("%s: %v", path, err)
	}
}

// TestBenchLoad is `reef bench load` in small: a rate-limited load with queries
// into a cluster of real processes, every acknowledged row present exactly once.
func TestBenchLoad(t *testing.T) {
	rep := runScenario(t, bench.Scenario{
		Kind:     "load",
		Target:   benchTarget(t, 2),
		Duration: 3 * time.Second,
		Load:     &bench.LoadConfig{Rate: 5000, BatchRows: 500, Concurrency: 2},
		// A generous deadline: on a busy machine a healthy leaf must not count as missing.
		Queries: &bench.QueryConfig{Clients: 1, Interval: 50 * time.Millisecond, Timeout: 5 * time.Second},
		Verify:  true,
		// Nothing goes wrong: every answer must be complete.
		CoverageFloor: 100,
	})
	if rep.Verify == nil || rep.Verify.AckedRows < 5000 || rep.Load.Unacked != 0 {
		t.Errorf("load %+v, verification %+v", rep.Load, rep.Verify)
	}
}

// TestBenchChaos is `reef bench chaos` in small: while rows go in and queries run,
// leaves are killed (kill -9, then started again), stopped (SIGSTOP, SIGCONT) and
// restarted (SIGTERM). Afterwards every acknowledged row must be present exactly
// once, and no answer may have covered less than the leaves that were up: one of
// three leaves down at a time leaves at least about two thirds, so the floor is 50%.
func TestBenchChaos(t *testing.T) {
	rep := runScenario(t, bench.Scenario{
		Kind:          "chaos",
		Target:        benchTarget(t, 3),
		Duration:      8 * time.Second,
		Load:          &bench.LoadConfig{Rate: 5000, BatchRows: 250, Concurrency: 4},
		Queries:       &bench.QueryConfig{Clients: 1, Interval: 50 * time.Millisecond, Timeout: 2 * time.Second},
		Faults:        &bench.FaultConfig{Kinds: []string{bench.FaultKill, bench.FaultStop, bench.FaultRestart}, First: time.Second, Every: 2 * time.Second, Down: 500 * time.Millisecond},
		Verify:        true,
		CoverageFloor: 50,
	})
	kinds := map[string]int{}
	for _, f := range rep.Faults {
		kinds[f.Kind]++
	}
	if kinds[bench.FaultKill] == 0 || kinds[bench.FaultStop] == 0 || kinds[bench.FaultRestart] == 0 {
		t.Errorf("faults %+v, want every kind at least once", rep.Faults)
	}
	if v := rep.Verify; v == nil || v.Missing != 0 || v.Duplicated != 0 {
		t.Errorf("verification %+v", v)
	}
}

// TestBenchIngest is `reef bench ingest` in small, without DuckDB: the dataset goes
// into a 2-leaf cluster and every row is counted back.
func TestBenchIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with real processes; skipped with -short")
	}
	out := filepath.Join(t.TempDir(), "report")
	var progress bytes.Buffer
	rep, err := bench.RunIngest(context.Background(), bench.IngestConfig{
		Binary: reefBin, Rows: 50_000, BatchRows: 5000, NoDuckDB: true, OutDir: out, Progress: &progress,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	in := rep.Ingest
	if !rep.Passed() || in.LeafRows != 50_000 || in.ReefRowsPerSec <= 0 || in.MB <= 0 || in.DuckDBSkipped == "" {
		t.Errorf("report %+v, ingest %+v", rep, in)
	}
	for _, p := range []string{bench.PlotIngest, bench.PlotThroughput} {
		checkPNG(t, filepath.Join(out, p))
	}
}

// TestBenchCluster is `reef bench cluster`: it lists the processes, runs until its
// context ends, then stops them and removes its temporary directory.
func TestBenchCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with real processes; skipped with -short")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- bench.RunCluster(ctx, bench.ClusterOptions{
			Cluster: testbench.ClusterConfig{Binary: reefBin, Leaves: 2, Aggregators: 2, BasePort: 27170},
			Out:     out,
		})
	}()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(out.String(), "Ctrl-C") {
		if time.Now().After(deadline) {
			t.Fatalf("no cluster after a minute:\n%s", out.String())
		}
		select {
		case err := <-done:
			t.Fatalf("RunCluster returned early: %v\n%s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	text := out.String()
	for _, want := range []string{"leaf-0", "leaf-1", "agg-0", "agg-1", "cluster.json", "aggregator http://127.0.0.1:"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunCluster: %v\n%s", err, out.String())
	}
	var dir string
	for _, line := range strings.Split(out.String(), "\n") {
		if f, ok := strings.CutPrefix(line, "cluster file "); ok {
			dir = filepath.Dir(f)
		}
	}
	if _, err := os.Stat(dir); dir == "" || !os.IsNotExist(err) {
		t.Errorf("cluster directory %q still there after a clean stop (%v)", dir, err)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestBenchDeploy is `reef bench deploy` in small: scripts/rolling-deploy.sh
// restarts every leaf through the shm handoff while rows go in and queries run. No
// row may be lost or doubled, each leaf must come back, and no answer may have
// covered less than the leaves that were up (one of three at a time: floor 50%).
func TestBenchDeploy(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "rolling-deploy.sh")
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("the deploy script needs curl")
	}
	rep := runScenario(t, bench.Scenario{
		Kind:          "deploy",
		Target:        benchTarget(t, 3),
		Load:          &bench.LoadConfig{Rate: 5000, BatchRows: 250, Concurrency: 4},
		Queries:       &bench.QueryConfig{Clients: 1, Interval: 50 * time.Millisecond, Timeout: 2 * time.Second},
		Deploy:        &bench.DeployConfig{Script: script, Before: time.Second, After: time.Second},
		Verify:        true,
		CoverageFloor: 50,
	})
	d := rep.Deploy
	if d == nil || d.ExitCode != 0 || len(d.Leaves) != 3 {
		t.Fatalf("deploy %+v", d)
	}
	for _, l := range d.Leaves {
		if l.ExecReadyMS <= 0 || l.StartPath == "" || l.RowsAfter == 0 {
			t.Errorf("leaf %+v: want the script's timeline, a start path and rows", l)
		}
	}
	if v := rep.Verify; v == nil || v.Missing != 0 || v.Duplicated != 0 {
		t.Errorf("verification %+v", v)
	}
}
