package e2e

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/testbench"
)

// expected is one group of the reference answer.
type expected struct {
	service string
	count   int64
	bytes   int64
	sumLat  float64
	maxLat  float64
}

// TestClusterEndToEnd is the walking skeleton's acceptance test: 3 leaves and an
// aggregator as real processes, 100k generated rows over HTTP, exact answers with
// full coverage, and an honest partial answer after one leaf is killed.
func TestClusterEndToEnd(t *testing.T) {
	c := startCluster(t, testbench.ClusterConfig{Leaves: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := c.Client()

	gen := testbench.GenConfig{Seed: 42, Rows: 100_000, End: time.Unix(1_764_000_000, 0)}
	if _, err := testbench.Load(ctx, client, "events", gen, testbench.LoadOptions{BatchRows: 5000, Concurrency: 2}); err != nil {
		t.Fatal(err)
	}

	// The reference answer, from the generated rows themselves.
	groups := map[string]*expected{}
	for e := range testbench.Events(gen) {
		if e.Status != 500 && e.Status != 404 {
			continue
		}
		g := groups[e.Service]
		if g == nil {
			g = &expected{service: e.Service}
			groups[e.Service] = g
		}
		g.count++
		g.bytes += e.Bytes
		g.sumLat += e.LatencyMS
		g.maxLat = max(g.maxLat, e.LatencyMS)
	}
	want := make([]*expected, 0, len(groups))
	for _, g := range groups {
		want = append(want, g)
	}
	slices.SortFunc(want, func(a, b *expected) int {
		return cmp.Or(cmp.Compare(b.count, a.count), cmp.Compare(a.service, b.service))
	})
	want = want[:7]

	res, err := client.SQL(ctx, api.QueryRequest{SQL: "SELECT count(*) FROM events"})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Rows[0][0]; fmt.Sprint(got) != "100000" || res.Coverage.Percent != 100 || res.Partial {
		t.Fatalf("count(*) = %v, coverage %+v partial %v; want 100000 at 100%%", got, res.Coverage, res.Partial)
	}

	const q = `SELECT service, count(*) AS n, sum(bytes), avg(latency_ms), max(latency_ms)
		FROM events WHERE status IN (404, 500) GROUP BY service ORDER BY n DESC, service LIMIT 7`
	res, err = client.SQL(ctx, api.QueryRequest{SQL: q})
	if err != nil {
		t.Fatal(err)
	}
	checkGroups(t, res, want)

	// kill -9 one leaf: the same query answers within its deadline, partially, with
	// coverage equal to the share of rows the other two hold.
	var killedRows, totalRows int64
	for i, l := range c.Leaves() {
		st, err := api.NewClient(l.URL).Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		totalRows += st.Rows
		if i == 1 {
			killedRows = st.Rows
		}
	}
	if totalRows != 100_000 || killedRows == 0 {
		t.Fatalf("leaves hold %d rows (leaf 1: %d), want 100000 spread over all", totalRows, killedRows)
	}
	if err := c.Kill(1); err != nil {
		t.Fatal(err)
	}
	const timeout = 2 * time.Second
	start := time.Now()
	res, err = client.SQL(ctx, api.QueryRequest{SQL: q, TimeoutMS: timeout.Milliseconds()})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if took > timeout+time.Second {
		t.Errorf("partial answer took %v, deadline %v", took, timeout)
	}
	cov := res.Coverage
	trueShare := 100 * float64(totalRows-killedRows) / float64(totalRows)
	if !res.Partial || cov.LeavesResponded != 2 || cov.LeavesTotal != 3 || math.Abs(cov.Percent-trueShare) > 2 {
		t.Fatalf("after kill: partial %v, coverage %+v; want partial, 2/3 leaves, percent %.1f±2", res.Partial, cov, trueShare)
	}
	if len(res.Errors) != 1 {
		t.Errorf("per-leaf errors %+v, want one for the killed leaf", res.Errors)
	}
}

func checkGroups(t *testing.T, res *api.QueryResult, want []*expected) {
	t.Helper()
	if len(res.Rows) != len(want) {
		t.Fatalf("%d rows, want %d: %v", len(res.Rows), len(want), res.Rows)
	}
	for i, w := range want {
		row := res.Rows[i]
		if row[0] != w.service || toInt(row[1]) != w.count || toInt(row[2]) != w.bytes ||
			!near(toFloat(row[3]), w.sumLat/float64(w.count)) || !near(toFloat(row[4]), w.maxLat) {
			t.Errorf("row %d = %v, want [%s %d %d %.4f %.2f]", i, row, w.service, w.count, w.bytes, w.sumLat/float64(w.count), w.maxLat)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func toInt(v any) int64 {
	switch v := v.(type) {
	case float64:
		return int64(v)
	case int64:
		return v
	}
	return math.MinInt64
}

func toFloat(v any) float64 {
	switch v := v.(type) {
	case float64:
		return v
	case int64:
		return float64(v)
	}
	return math.NaN()
}
