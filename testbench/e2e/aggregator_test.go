package e2e

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/testbench"
)

// loadedCluster starts leaves leaves and loads rows generated rows; it returns the
// cluster and every leaf's row count.
func loadedCluster(t *testing.T, leaves, rows int) (*testbench.Cluster, []int64) {
	t.Helper()
	c := startCluster(t, testbench.ClusterConfig{Leaves: leaves})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	gen := testbench.GenConfig{Seed: 7, Rows: rows, End: time.Unix(1_764_000_000, 0)}
	if _, err := testbench.Load(ctx, c.Client(), "events", gen, testbench.LoadOptions{BatchRows: 2000}); err != nil {
		t.Fatal(err)
	}
	var counts []int64
	for _, l := range c.Leaves() {
		st, err := api.NewClient(l.URL).Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		counts = append(counts, st.Rows)
	}
	return c, counts
}

func share(counts []int64, missing int) float64 {
	var total int64
	for _, n := range counts {
		total += n
	}
	return 100 * float64(total-counts[missing]) / float64(total)
}

// TestHungLeafCutAtDeadline: a SIGSTOPped leaf (hung, not dead) costs a query no
// more than its deadline, and the answer's coverage is the share of the others.
func TestHungLeafCutAtDeadline(t *testing.T) {
	c, counts := loadedCluster(t, 3, 30_000)
	ctx := context.Background()
	if err := c.Stop(2); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Cont(2) }()

	const timeout = 800 * time.Millisecond
	start := time.Now()
	res, err := c.Client().SQL(ctx, api.QueryRequest{SQL: "SELECT service, count(*) FROM events GROUP BY service", TimeoutMS: timeout.Milliseconds()})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if res.Timings.TotalMS > float64((timeout + 100*time.Millisecond).Milliseconds()) {
		t.Errorf("server took %.0f ms with a hung leaf, deadline %v + 100 ms", res.Timings.TotalMS, timeout)
	}
	if took > timeout+time.Second {
		t.Errorf("client waited %v with a hung leaf, deadline %v", took, timeout)
	}
	want := share(counts, 2)
	if !res.Partial || res.Coverage.LeavesResponded != 2 || math.Abs(res.Coverage.Percent-want) > 0.5 {
		t.Fatalf("hung leaf: partial %v coverage %+v, want 2/3 leaves and %.2f%%", res.Partial, res.Coverage, want)
	}

	// The hung leaf is now known to be down: the next query does not wait for it.
	start = time.Now()
	res, err = c.Client().SQL(ctx, api.QueryRequest{SQL: "SELECT count(*) FROM events", TimeoutMS: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("second query with a known-hung leaf took %v; the leaf should be skipped", took)
	}
	if res.Coverage.LeavesResponded != 2 || math.Abs(res.Coverage.Percent-want) > 0.5 {
		t.Errorf("second query coverage %+v, want %.2f%%", res.Coverage, want)
	}

	// Resumed, it is asked again once a health check has seen it.
	if err := c.Cont(2); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err = c.Client().SQL(ctx, api.QueryRequest{SQL: "SELECT count(*) FROM events"})
		if err == nil && !res.Partial {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("resumed leaf not back in 10s: %+v %v", res, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if res.Rows[0][0] != int64(30_000) || res.Coverage.Percent != 100 {
		t.Fatalf("after resume: %v at %+v", res.Rows, res.Coverage)
	}
}

// TestDeadLeafAndMinCoverage: a dead leaf costs no time, and min_coverage turns an
// answer below it into a clear error.
func TestDeadLeafAndMinCoverage(t *testing.T) {
	c, counts := loadedCluster(t, 3, 30_000)
	ctx := context.Background()
	if err := c.Kill(0); err != nil {
		t.Fatal(err)
	}
	want := share(counts, 0)
	start := time.Now()
	res, err := c.Client().SQL(ctx, api.QueryRequest{SQL: "SELECT count(*) FROM events", TimeoutMS: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("query with a dead leaf took %v (deadline 5s): a refused connection must not wait", took)
	}
	if res.Coverage.LeavesResponded != 2 || math.Abs(res.Coverage.Percent-want) > 0.5 {
		t.Fatalf("dead leaf: coverage %+v, want %.2f%%", res.Coverage, want)
	}

	_, err = c.Client().SQL(ctx, api.QueryRequest{SQL: "SELECT count(*) FROM events", MinCoverage: 99})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || !strings.Contains(ae.Message, "below min_coverage") {
		t.Fatalf("min_coverage 99 with a leaf dead: err %v, want 503 naming the coverage", err)
	}
	if _, err := c.Client().SQL(ctx, api.QueryRequest{SQL: "SELECT count(*) FROM events", MinCoverage: want - 5}); err != nil {
		t.Fatalf("min_coverage %.0f below the coverage reached failed: %v", want-5, err)
	}
}
