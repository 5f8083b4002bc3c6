package e2e

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/testbench"
)

// TestAggregationTree: a root over two intermediate aggregators gives the same
// answers as one aggregator over the same leaves, and coverage composes through the
// levels when an intermediate aggregator dies.
func TestAggregationTree(t *testing.T) {
	c := startCluster(t, testbench.ClusterConfig{Leaves: 4, Aggregators: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	gen := testbench.GenConfig{Seed: 11, Rows: 40_000, End: time.Unix(1_764_000_000, 0)}
	if _, err := testbench.Load(ctx, c.Client(), "events", gen, testbench.LoadOptions{BatchRows: 2000}); err != nil {
		t.Fatal(err)
	}

	// A flat aggregator over the same four leaves, as a reference.
	var leafURLs []string
	for _, l := range c.Leaves() {
		leafURLs = append(leafURLs, l.URL)
	}
	flatURL := startAggregator(t, leafURLs)
	flat := api.NewClient(flatURL)

	queries := []string{
		"SELECT count(*) FROM events",
		"SELECT service, count(*), sum(bytes), avg(latency_ms), min(latency_ms), max(latency_ms) FROM events GROUP BY service ORDER BY service",
		"SELECT endpoint, p99(latency_ms), count_distinct(host) FROM events WHERE status = 500 GROUP BY endpoint ORDER BY endpoint",
		"SELECT time(1h), count(*) FROM events WHERE service = 'svc-03' GROUP BY time(1h)",
	}
	for _, q := range queries {
		tree, err := c.Client().SQL(ctx, api.QueryRequest{SQL: q})
		if err != nil {
			t.Fatalf("%s: tree: %v", q, err)
		}
		ref, err := flat.SQL(ctx, api.QueryRequest{SQL: q})
		if err != nil {
			t.Fatalf("%s: flat: %v", q, err)
		}
		if tree.Coverage != ref.Coverage || tree.Coverage.LeavesTotal != 4 || tree.Coverage.Percent != 100 {
			t.Errorf("%s: coverage tree %+v, flat %+v", q, tree.Coverage, ref.Coverage)
		}
		if err := sameRows(tree.Rows, ref.Rows); err != nil {
			t.Errorf("%s: tree and flat differ: %v", q, err)
		}
	}

	// Kill one intermediate aggregator: the root still counts the 4 leaves, 2 of
	// which answered, with the dead branch's rows estimated from its last stats.
	var branchRows int64
	aggs := c.Processes()[4:]
	st, err := api.NewClient(aggs[1].URL).Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	branchRows = st.Rows
	proc, err := os.FindProcess(aggs[1].PID)
	if err != nil {
		t.Fatal(err)
	}
	_ = proc.Kill()
	res, err := c.Client().SQL(ctx, api.QueryRequest{SQL: "SELECT count(*) FROM events", TimeoutMS: 2000})
	if err != nil {
		t.Fatal(err)
	}
	want := 100 * float64(int64(gen.Rows)-branchRows) / float64(gen.Rows)
	cov := res.Coverage
	if !res.Partial || cov.LeavesTotal != 4 || cov.LeavesResponded != 2 || math.Abs(cov.Percent-want) > 0.5 {
		t.Fatalf("dead branch: coverage %+v, want 2/4 leaves and %.2f%%", cov, want)
	}
}

// startAggregator runs one more aggregator process over children and returns its URL.
func startAggregator(t *testing.T, children []string) string {
	t.Helper()
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	logf, err := os.Create(filepath.Join(t.TempDir(), "agg.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(reefBin, "aggregator", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--leaves", strings.Join(children, ","))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logf.Close()
	})
	deadline := time.Now().Add(20 * time.Second)
	for api.NewClient(url).Ready(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("aggregator on %s not ready", url)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return url
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*netTCPAddr).Port
}

// sameRows compares result rows; floats may differ in the last bits, since sums are
// merged in a different order through a tree.
func sameRows(a, b [][]any) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d rows vs %d", len(a), len(b))
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return fmt.Errorf("row %d: %v vs %v", i, a[i], b[i])
		}
		for j := range a[i] {
			x, y := a[i][j], b[i][j]
			if fx, ok := x.(float64); ok {
				if fy, ok := y.(float64); ok && math.Abs(fx-fy) <= 1e-9*math.Max(1, math.Abs(fy)) {
					continue
				}
			}
			if x != y {
				return fmt.Errorf("row %d column %d: %v vs %v", i, j, x, y)
			}
		}
	}
	return nil
}
