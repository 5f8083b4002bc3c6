//go:build unix

package testbench

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestRealCluster runs the harness against the real reef binary: start, load through
// the aggregator, a planned restart and a crash restart of a leaf, and a clean stop in
// which every process exits 0 on SIGTERM. Answers to queries are the business of
// testbench/e2e; this test is about the processes.
func TestRealCluster(t *testing.T) {
	bin := reefBinary(t)
	dir, err := os.MkdirTemp("", "reef-testbench-real-")
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
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := StartCluster(ctx, ClusterConfig{Binary: bin, Dir: dir, Leaves: 2, BasePort: 27370})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })

	st, err := Load(ctx, c.Client(), "events", GenConfig{Seed: 11, Rows: 20_000}, LoadOptions{BatchRows: 2000, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != 20_000 || st.Rejected != 0 || st.RowErrors != 0 {
		t.Fatalf("load: %+v, want 20000 rows without errors", st)
	}
	if n := leafRows(t, c, "events"); n != 20_000 {
		t.Fatalf("leaves hold %d rows, want 20000", n)
	}

	before := c.Leaves()
	if err := c.RestartLeaf(ctx, 0); err != nil {
		t.Fatalf("planned restart: %v", err)
	}
	if err := c.Kill(1); err != nil {
		t.Fatal(err)
	}
	if err := c.RestartLeaf(ctx, 1); err != nil {
		t.Fatalf("restart after kill: %v", err)
	}
	for i, l := range c.Leaves() {
		if l.PID == before[i].PID || alive(before[i].PID) {
			t.Errorf("leaf %d: pid %d, was %d (alive: %v)", i, l.PID, before[i].PID, alive(before[i].PID))
		}
		s, err := testClient(t, l.URL).Stats(ctx)
		if err != nil {
			t.Fatalf("stats of restarted %s: %v", l.ID, err)
		}
		t.Logf("%s came back by %q in %.1fms with %d rows", l.ID, s.Start.Path, s.Start.DurationMS, s.Rows)
	}

	procs := c.Processes()
	if err := c.Close(); err != nil {
		t.Fatalf("every process should exit 0 on SIGTERM: %v", err)
	}
	for _, p := range procs {
		if alive(p.PID) {
			t.Errorf("%s alive after Close", p.ID)
		}
	}
}
