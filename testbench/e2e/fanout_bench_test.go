package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/testbench"
)

// BenchmarkFanout measures what fanning a query out costs: the same GROUP BY query
// through one aggregator to 1, 4, 16 and 64 leaf processes holding the same 64k rows
// in all. Run: go test -run '^$' -bench Fanout -benchtime 200x ./testbench/e2e
func BenchmarkFanout(b *testing.B) {
	for _, leaves := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprintf("leaves=%d", leaves), func(b *testing.B) {
			dir := b.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			c, err := testbench.StartCluster(ctx, testbench.ClusterConfig{
				Binary: reefBin, Dir: dir, Leaves: leaves, BasePort: 27070,
				ExtraLeafArgs: []string{"--memory-limit", "256MiB"},
			})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			gen := testbench.GenConfig{Seed: 3, Rows: 65_536, End: time.Unix(1_764_000_000, 0)}
			if _, err := testbench.Load(ctx, c.Client(), "events", gen, testbench.LoadOptions{BatchRows: 1024}); err != nil {
				b.Fatal(err)
			}
			req := api.QueryRequest{SQL: "SELECT service, count(*), avg(latency_ms) FROM events GROUP BY service"}
			// Warm up, and wait until every leaf has answered a health check.
			for i := 0; ; i++ {
				res, err := c.Client().SQL(ctx, req)
				if err == nil && !res.Partial && res.Coverage.RowsScanned == int64(gen.Rows) {
					break
				}
				if i > 100 {
					b.Fatalf("cluster not complete: %+v %v", res, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			b.ResetTimer()
			var scan float64
			for i := 0; i < b.N; i++ {
				res, err := c.Client().SQL(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				scan += res.Timings.ScanMS
			}
			b.ReportMetric(scan/float64(b.N), "fanout-ms/op")
		})
	}
}
